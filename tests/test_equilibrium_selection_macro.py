"""Scenario ``equilibrium-selection-macro``: learning households select a steady state of the investment economy
with a production externality; checked against the perfect-foresight reach of each steady state.

The learning test starts from initial policies that select the *other* steady state than perfect foresight from the
same capital (pessimists above the divide, optimists below it) and shows tabular Q-learning households end in the
basin perfect foresight predicts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import torch

from abm_markets.runner import run_scenario


def test_tabular_households_learn_the_perfect_foresight_selection_from_the_wrong_start(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    run_scenario(
        "equilibrium-selection-macro",
        overrides={
            "learners": "tabular-q",
            "k0_list": "7.4,9.5",
            "init_shifts": "-0.4,0.4",
            "tabular_periods": "2000",
            "tabular_sessions": "8",
            "eval_periods": "600",
        },
        out=out,
    )
    table = pl.read_parquet(out / "basins.parquet")
    rows = {(r["k0"], r["init_shift"]): r for r in table.iter_rows(named=True)}
    summary = json.loads((out / "summary.json").read_text())
    k_mid = summary["steady_states_strategic"][1]["capital"]
    assert 7.4 < k_mid < 9.5
    # optimists below the divide: their initial policy goes high; learned, they go low (what perfect foresight says)
    opt_low = rows[(7.4, 0.4)]
    assert opt_low["selected_initial_policy"] == "high" and opt_low["perfect_foresight_reachable"] == "low"
    assert opt_low["share_low"] >= 0.75
    # pessimists above the divide: their initial policy goes low; learned, they go high
    pess_high = rows[(9.5, -0.4)]
    assert pess_high["selected_initial_policy"] == "low" and pess_high["perfect_foresight_reachable"] == "high"
    assert pess_high["share_high"] == 1.0
    assert abs(pess_high["capital_end_over_selected"] - 1.0) < 0.03
    assert summary["by_learner"]["tabular-q"]["share_agrees_with_perfect_foresight"] >= 0.85
    assert (out / "plots" / "basins.png").stat().st_size > 10_000
    steps = pl.read_parquet(out / "steps.parquet")
    assert set(steps["policy"].unique()) == {"initial", "learned"}


def test_ppo_case_runs_and_bad_settings_are_one_line(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "ppo"
    run_scenario(
        "equilibrium-selection-macro",
        overrides={
            "learners": "ppo",
            "k0_list": "9.5",
            "init_shifts": "0.0",
            "train_iterations": "2",
            "train_economies": "128",
            "eval_periods": "200",
        },
        out=out,
    )
    row = pl.read_parquet(out / "basins.parquet").row(0, named=True)
    assert row["learner"] == "ppo" and row["train_iterations"] == 2 and row["sessions"] == 1
    bad = tmp_path / "bad"
    for setting in ("externality_high=1.0", "init_shifts=0.7", "firms=learning", "k0_list="):
        r = subprocess.run(
            [sys.executable, "-m", "abm_markets", "run", "equilibrium-selection-macro", "--set", setting, "--out", bad],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2, (setting, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not bad.exists()


def test_tabular_households_are_deterministic_per_seed() -> None:
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.learn.tabular_macro import TabularMacroConfig, initial_table, run_tabular_households
    from abm_markets.solvers.externality import default_config

    eco = InvestmentEconomy(default_config(k_init=9.0))
    tc = TabularMacroConfig(k_lo=4.0, k_hi=14.0, k_bins=8, sessions=3, periods=60, episode=25)
    a, b, c = (run_tabular_households(eco, tc, k0=9.0, k_spread=0.05, seed=s, q_base=0.0) for s in (1, 1, 2))
    assert torch.equal(a.q, b.q) and not torch.equal(a.q, c.q)
    assert int((a.q != initial_table(tc, 0.0, a.q.dtype)).sum()) > 10  # cells were updated
