"""Scenario market-learning: a small run end to end (summary keys against the benchmarks), Mesa driving its
agents with the run's learned policies on the engine's trajectory, and bad input."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from abm_markets.cli import main
from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.errors import UserError
from abm_markets.model import InvestmentModel
from abm_markets.scenarios.market_learning import learned_market
from abm_markets.solvers.market_power import market_benchmarks

SMALL = [
    "--set", "n_households=2", "--set", "firms=learning", "--set", "firms_per_good=2", "--set", "train_iterations=4",
    "--set", "exploit_iterations=2", "--set", "exploit_economies=8", "--set", "eval_paths=4",
    "--set", "eval_periods=40", "--set", "train_economies=64", "--no-progress",
]  # fmt: skip


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ml") / "run"
    assert main(["run", "market-learning", "--out", str(out), "--seed", "1", *SMALL]) == 0
    return out


def test_summary_reports_the_learned_market_against_the_benchmarks(run_dir: Path) -> None:
    s = json.loads((run_dir / "summary.json").read_text())
    econ, _ = learned_market(run_dir)
    bm = market_benchmarks(econ)
    assert s["capital_competitive"] == pytest.approx(bm.capital_competitive)
    assert s["capital_strategic"] == pytest.approx(bm.capital_strategic)
    assert s["markup_nash"] == pytest.approx(1 / (1 - 0.7 / 2)) and s["markup_joint"] == pytest.approx(1 / 0.3)
    for key in ("capital_learned", "price_learned", "markup_learned", "profit_gain", "train_wall_s"):
        assert math.isfinite(s[key]), key
    assert s["profit_gain"] == pytest.approx(
        (s["profit_learned"] - bm.profit_nash) / (bm.profit_joint - bm.profit_nash)
    )
    assert s["exploitability_households_ce_pct"] >= 0 and s["exploitability_firms_pct"] >= 0
    # learning firms and learning households (N^h = 2): the firms' benchmarks against strategic buyers
    assert s["buyer_factor_fixed_capacity"] == pytest.approx(0.5)
    assert s["capital_nash_strategic_buyers"] == pytest.approx(bm.capital_nash * 0.5 ** (1 / 1.7))
    assert math.isfinite(s["profit_gain_strategic_buyers"])
    assert isinstance(s["converged"], bool) and s["train_iterations"] == 4
    (sub,) = s["subgroups"]  # one information subgroup: every household
    assert sub["households"] == "0-1" and sub["welfare_per_household"] == pytest.approx(s["welfare_per_household"])


@pytest.mark.parametrize("mode", ["engine", "agents"])
def test_mesa_runs_the_learned_market_on_the_engines_trajectory(run_dir: Path, mode: str) -> None:
    econ, policies = learned_market(run_dir)
    assert set(policies) == {"households", "firms"}
    model = InvestmentModel(econ, policies=policies, seed=11, mode=mode)
    eco = InvestmentEconomy(econ)
    gen = torch.Generator().manual_seed(11)
    state = eco.initial_state(1, gen)
    for _ in range(15):
        acts = {key: pol(state) for key, pol in policies.items()}
        state, _ = eco.step(state, acts, gen)
        model.step()
        mine = model.to_state()
        torch.testing.assert_close(mine.capital, state.capital, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(mine.last_price, state.last_price, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(state.capital, eco.initial_state(1, torch.Generator().manual_seed(11)).capital)


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, needle in (
        (["--set", "households=rule"], "no learners"),
        (["--set", "information=households[:1]=own_capital+nonsense"], "nonsense"),
        (["--set", "information=households[:1]=own_capital"], "households"),
        (["--set", "market=barter"], "barter"),
        (["--set", "information=households[:1]=own_capital+nbr_capital", "--set", "n_households=2"], "nbr_capital"),
        (["--set", 'household_obs=["own_capital", "nbr_capital"]'], "bilateral"),
    ):
        out = tmp_path / "bad"
        assert main(["run", "market-learning", "--out", str(out), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, err
        assert not out.exists()
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.toml").write_text('[run]\nscenario = "investment-planner"\nseed = 0\n\n[scenario]\n')
    with pytest.raises(UserError, match="expected a market-learning run directory"):
        learned_market(other)


def test_households_learn_their_price_impact_from_the_competitive_start() -> None:
    """Two households under Walrasian clearing start at the competitive saving share (long-run K = K_competitive,
    16% above the buyer-side Nash steady state) and learn, with their own-return credit, to within 2.5% of the
    buyer-side Nash (measured: 1.1% after 10 iterations, seed 0)."""
    from abm_markets.engine.config import InvestmentConfig
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.train import TrainConfig, Trainer, train

    econ = InvestmentConfig(formulation="market", n_households=2)
    eco = InvestmentEconomy(econ)
    bm = market_benchmarks(econ)
    path = ev.make_eval_path(eco, 8, 300, torch.Generator().manual_seed(1))
    cfg = TrainConfig(
        groups=("households",),
        n_economies=64,
        iterations=15,
        lr_schedule="linear",
        std_end=0.1,
        init_log_std=-1.2,
        k_spread_common=0.3,
        vf_coef=8.0,
        gamma=econ.beta,
        policy_average=0.2,
        minibatch=64 * 2 * 64,
        credit="own",
        credit_path="mean",
        credit_horizon=128,
        checkpoint_every=0,
    )
    tr = Trainer(eco, cfg, seed=0)

    def vs_strategic() -> float:
        return ev.welfare(eco, path, tr.decide())["mean_capital_ratio"] * eco.k_ss / bm.capital_strategic

    before = vs_strategic()
    assert before > 1.1
    train(tr)
    assert abs(vs_strategic() - 1.0) < 0.025


def test_neighbour_capital_block_follows_the_bilateral_network() -> None:
    """``nbr_capital``: household i's mean capital of good j over the households that share a seller of j with it
    (itself included), read off the networkx graph of the bilateral market."""
    from abm_markets.engine.config import InvestmentConfig

    econ = InvestmentConfig(
        formulation="market",
        market="bilateral",
        network="random",
        network_p=0.3,
        n_households=6,
        n_capital_goods=2,
        firms_per_good=3,
        network_seed=4,
        household_obs=("own_capital", "nbr_capital"),
    )
    eco = InvestmentEconomy(econ)
    state = eco.initial_state(3, torch.Generator().manual_seed(0))
    k = state.capital * torch.linspace(0.5, 1.5, 6, dtype=state.capital.dtype).reshape(1, 6, 1)
    state = dataclasses.replace(state, capital=k)
    got = eco.observation_block(state, "households", "nbr_capital")
    g = eco.graph
    sparse = False
    for i in range(6):
        for j in range(2):
            sellers = {f for f in g[("h", i)] if f[1] == j}
            near = sorted({i} | {b[1] for f in sellers for b in g[f]})
            sparse |= len(near) < 6
            want = k[:, near, j].mean(1) / eco.k_ss
            torch.testing.assert_close(got[:, i, j], want)
    assert sparse  # the network is not complete, so the block differs from agg_capital
    assert eco.observe(state, "households").shape[-1] == 4
