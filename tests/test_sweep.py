"""Ray sweeps: one run per (grid point, seed), index table, resume, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from abm_markets.cli import main

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


def test_sweep_runs_grid_and_seeds_on_ray(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = [
        "sweep",
        "investment-markets",
        "--seeds",
        "0-1",
        "--grid",
        "bargaining_power=0.0,1.0",
        "--set",
        "n_economies=2",
        "--set",
        "periods=40",
        "--set",
        "burn_in=20",
        "--set",
        "n_households=4",
        "--set",
        "mechanisms=bilateral",
        "--out",
        str(out),
        "--num-cpus",
        "2",
    ]
    assert main(argv) == 0
    index = pl.read_parquet(out / "index.parquet")
    assert index.height == 4
    assert sorted(index["set.bargaining_power"].unique().to_list()) == [0.0, 1.0]  # typed as TOML reads them
    # each task wrote a full run directory; same settings + seed reproduce the same numbers
    for run_dir in index["run_dir"]:
        assert (Path(run_dir) / "summary.json").exists()
    # economics: with average-cost pricing (theta = 0) firms earn zero profit
    s0 = json.loads((out / "bargaining_power=0.0-s0" / "summary.json").read_text())
    s1 = json.loads((out / "bargaining_power=1.0-s0" / "summary.json").read_text())
    assert abs(s0["mechanisms"]["bilateral"]["firm_profit_mean"]) < 1e-9
    assert s1["mechanisms"]["bilateral"]["firm_profit_mean"] > 0
    # the index flattens nested summaries into columns and keeps the settings typed
    row = index.filter(pl.col("tag") == "bargaining_power=1.0-s0").row(0, named=True)
    assert row["summary.mechanisms.bilateral.firm_profit_mean"] == s1["mechanisms"]["bilateral"]["firm_profit_mean"]
    assert index.schema["set.n_households"] == pl.Int64 and row["set.n_households"] == 4
    # a second call finds every run complete and only rebuilds the index
    mtime = (out / "bargaining_power=0.0-s0" / "summary.json").stat().st_mtime
    assert main(argv) == 0
    assert (out / "bargaining_power=0.0-s0" / "summary.json").stat().st_mtime == mtime


@pytest.mark.parametrize(
    ("extra", "needle"),
    [(["--seeds", "a-b"], "--seeds"), (["--grid", "betta=0.9"], "did you mean 'beta'"), (["--grid", "beta"], "--grid")],
)
def test_sweep_bad_input(extra: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sweep"
    assert main(["sweep", "investment-markets", "--out", str(out), *extra]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()
