"""Training time to convergence of market-learning exercise (a) against N^h (Walrasian clearing, competitive firms).

For N^h in {1, 5, 100, 1000}: households learn with the scenario's preset settings (one shared PPO policy, own-return
credit along the mean path continued 128 periods, averaged actor, 256 / N^h economies but at least 64, the update
on at most 1600 (economy, household) streams), started at about twice the competitive saving share. Evaluated every
5 iterations on a fixed path (16 economies x 400 periods): training seconds to the first evaluation within 2% of the
buyer-side Nash steady state and to the scenario's convergence criterion (4 evaluations in a row within a 0.2%
band); it stops there or at 300 iterations / ``--max-wall`` seconds. The baseline is the bare engine stepping the
same economies with the competitive steady-state rule, in the same run; the ratio is the cost of learning per
simulated agent step.

Usage: ``python benchmarks/market_learning_time.py [--households 1 5 100 1000] [--max-wall 600]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.learn import evaluate as ev
from abm_markets.learn.sources import as_decide, steady_state_share_source
from abm_markets.learn.train import Trainer
from abm_markets.scenarios.learning import bands_settled
from abm_markets.scenarios.market_learning import MarketLearningConfig, long_run
from abm_markets.solvers.market_power import market_benchmarks


def engine_agent_rate(eco: InvestmentEconomy, batch: int, periods: int) -> float:
    gen = torch.Generator().manual_seed(0)
    state = eco.initial_state(batch, gen)
    decide = as_decide(steady_state_share_source(eco))
    t0 = time.perf_counter()
    for _ in range(periods):
        state, _ = eco.step(state, decide(state), gen)
    return batch * periods * eco.n_households / (time.perf_counter() - t0)


def time_to_converge(h: int, max_wall_s: float) -> dict[str, float]:
    sc = MarketLearningConfig(n_households=h)
    econ = sc.economy()
    eco = InvestmentEconomy(econ)
    bm = market_benchmarks(econ)
    path = ev.make_eval_path(eco, sc.eval_paths, sc.eval_periods, torch.Generator().manual_seed(1))
    cfg = sc.train_config()
    tr = Trainer(eco, cfg, seed=0)
    k0 = long_run(eco, path, tr.decide())["capital"] / bm.capital_strategic
    k = k0
    reached = settled = math.nan
    rows: list[dict[str, float]] = []
    for it in range(cfg.iterations):
        tr.iteration()
        if (it + 1) % sc.eval_every == 0:
            k = long_run(eco, path, tr.decide())["capital"] / bm.capital_strategic
            rows.append({"eval_capital_ratio": k})
            if abs(k - 1.0) <= 0.02 and math.isnan(reached):
                reached = tr.train_wall_s
            if bands_settled(rows, ("eval_capital_ratio",), sc.converge_window, sc.converge_tol):
                settled = tr.train_wall_s
                break
        if tr.train_wall_s > max_wall_s:
            break
    return {
        "households": h,
        "economies": cfg.n_economies,
        "k_start": k0,
        "k_end": k,
        "iterations": tr.iteration_done,
        "to_2pct": reached,
        "to_settled": settled,
        "agent_steps": tr.agent_steps,
        "agent_steps_per_s": tr.agent_steps / tr.train_wall_s,
        "engine_agent_steps_per_s": engine_agent_rate(eco, cfg.n_economies, 128),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--households", type=int, nargs="+", default=[1, 5, 100, 1000])
    ap.add_argument("--max-wall", type=float, default=600.0, help="training seconds per N^h at most")
    args = ap.parse_args()
    torch.set_num_threads(1)
    print("market-learning (a), Walrasian, own-return credit; K relative to the buyer-side Nash steady state")
    print(
        f"{'N^h':>5} {'B':>4} {'K start':>8} {'K end':>7} {'its':>4} {'s to 2%':>8} {'s settled':>10} "
        f"{'agent-steps':>12} {'PPO agent-steps/s':>18} {'engine agent-steps/s':>21} {'ratio':>7}"
    )
    for h in args.households:
        r = time_to_converge(h, args.max_wall)
        print(
            f"{h:>5} {r['economies']:>4} {r['k_start']:>8.3f} {r['k_end']:>7.3f} {r['iterations']:>4} "
            f"{r['to_2pct']:>8.1f} {r['to_settled']:>10.1f} {r['agent_steps']:>12,} {r['agent_steps_per_s']:>18,.0f} "
            f"{r['engine_agent_steps_per_s']:>21,.0f} {r['engine_agent_steps_per_s'] / r['agent_steps_per_s']:>6.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
