"""Exercise (c) of docs/markets_learning.md: what observing everybody's capital is worth to a household.

For each run directory of the information sweep (households[:H/2] observe every household's capital and TFP, the
rest their own state and aggregate capital), the learned shared policy is evaluated twice on the same shocks
(64 economies x 600 periods, starting at the competitive steady state): as trained, and with the two halves'
information swapped (the same observation layout, so the same network reads it). For every household the
difference of its discounted utility between being informed and not is free of the luck of its own shocks;
reported in consumption-equivalent percent, mean and 95% interval over the runs (each run averaged over its
households), with the long-run capital of each half.

Usage: ``python docs/scripts/markets_information.py runs/ml-c/*``.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import torch
from scipy import stats

from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.learn import evaluate as ev
from abm_markets.scenarios.market_learning import learned_market, long_run


def swapped(information: tuple[str, ...]) -> tuple[str, ...]:
    """Give the first subgroup's blocks to the second's members and vice versa; the block lists keep their
    declaration order, so the observation layout (the union of the blocks in that order) is unchanged."""
    (a_sl, a_bl), (b_sl, b_bl) = (e.split("=") for e in information)
    return (f"{b_sl}={a_bl}", f"{a_sl}={b_bl}")


def main() -> None:
    gains, caps_in, caps_out = [], [], []
    for run in sys.argv[1:]:
        econ, policies = learned_market(run)
        h = econ.n_households
        half = h // 2
        eco = InvestmentEconomy(econ)
        path = ev.make_eval_path(eco, 64, 600, torch.Generator().manual_seed(7))
        as_trained = long_run(eco, path, lambda s, p=policies["households"]: {"households": p(s)})
        econ_swap, policies_swap = learned_market(run, information=swapped(econ.information))
        eco_swap = InvestmentEconomy(econ_swap)
        assert eco_swap.obs_dim("households") == eco.obs_dim("households")
        flipped = long_run(eco_swap, path, lambda s, p=policies_swap["households"]: {"households": p(s)})
        w_in = np.r_[as_trained["welfare_by_household"][:half], flipped["welfare_by_household"][half:]]
        w_out = np.r_[flipped["welfare_by_household"][:half], as_trained["welfare_by_household"][half:]]
        periods_weight = (1 - econ.beta**path.periods) / (1 - econ.beta)
        gains.append(100 * (math.exp(float((w_in - w_out).mean()) / periods_weight) - 1))
        k_in = np.r_[as_trained["capital_by_household"][:half], flipped["capital_by_household"][half:]]
        k_out = np.r_[flipped["capital_by_household"][:half], as_trained["capital_by_household"][half:]]
        caps_in.append(float(k_in.mean()))
        caps_out.append(float(k_out.mean()))
        print(f"{run}: informed vs not {gains[-1]:+.4f}% CE, capital {caps_in[-1]:.4f} vs {caps_out[-1]:.4f}")
    g = np.asarray(gains)
    ci = stats.t.ppf(0.975, g.size - 1) * g.std(ddof=1) / math.sqrt(g.size) if g.size > 1 else math.nan
    ratio = np.mean(caps_in) / np.mean(caps_out)
    print(f"mean {g.mean():+.4f}% CE +- {ci:.4f}; capital informed / uninformed {ratio:.4f}")


if __name__ == "__main__":
    main()
