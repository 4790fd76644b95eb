"""Scenario investment-markets: every mechanism reaches the analytic steady state without shocks."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from abm_markets.runner import run_scenario


def test_mechanisms_converge_to_steady_state_without_shocks(tmp_path: Path) -> None:
    out = run_scenario(
        "investment-markets",
        overrides={
            "tfp_values": "1.0",
            "n_households": "6",
            "n_economies": "4",
            "periods": "400",
            "burn_in": "350",
            "k_init_spread": "0.0",
            "network": "complete",
            "firms_per_good": "2",
        },
        seed=1,
        out=tmp_path / "run",
        progress=False,
    )
    summary = json.loads((out / "summary.json").read_text())
    mech = summary["mechanisms"]
    # deterministic economy, steady-state shares: capital and price converge to the analytic steady state
    for name in ("walrasian", "posted"):
        assert abs(mech[name]["capital_gap_to_steady_state"]) < 2e-3, name
        assert abs(mech[name]["price_gap_to_steady_state"]) < 2e-3, name
    # random matching splits buyers unevenly across the two sellers of a good; with convex costs that
    # produces less capital for the same spending (sum_f sqrt(b_f) <= sqrt(M sum_f b_f)): a matching friction
    assert -0.2 < mech["bilateral"]["capital_gap_to_steady_state"] < -5e-3
    # along the way the posted-price market leaves output unsold or demand rationed; Walrasian never does
    markets = pl.read_parquet(out / "markets.parquet")
    unsold = markets.filter(pl.col("variable") == "unsold_share").group_by("mechanism").agg(pl.col("value").max())
    by = dict(zip(unsold["mechanism"], unsold["value"], strict=True))
    assert by["walrasian"] == 0.0
    assert mech["posted"]["periods_to_90pct_of_steady_state"] >= mech["walrasian"]["periods_to_90pct_of_steady_state"]
