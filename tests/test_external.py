"""Economies and scenarios defined outside the package are found by run, resume, sweep, list and viz: by
--import and by entry points.

A user declares an economy (``UserGrowth-v1``, from blocks) and registers a scenario training it in their own
file (``tests/data/external_study.py``). Before the protocol work, ``run_scenario`` ran such a scenario but
``abm-markets run --resume`` on its run directory answered ``unknown scenario``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import polars as pl
import pytest

from abm_markets.cli import main

STUDY = str(Path(__file__).parent / "data" / "external_study.py")


def test_run_and_resume_a_scenario_from_a_users_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", "--import", STUDY, "my-external-study", "--out", str(out), "--no-progress"]) == 0
    saved = tomllib.loads((out / "config.toml").read_text())
    assert saved["run"]["imports"] == [str(Path(STUDY).resolve())]
    assert json.loads((out / "summary.json").read_text())["iterations_done"] == 2
    # a fresh process: nothing imported yet; --resume finds the scenario through the run directory alone
    code = subprocess.run(
        [sys.executable, "-m", "abm_markets", "run", "--resume", str(out), "--set", "iterations=3", "--no-progress"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    assert code.returncode == 0, code.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["iterations_done"] == 3 and summary["rows_this_call"] == 1  # continued from iteration 2
    assert pl.read_parquet(out / "metrics.parquet").height == 3


def test_unknown_module_is_one_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "x"
    assert main(["run", "--import", "no_such_module_xyz", "my-external-study", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "module not found" in err[0] and not out.exists()
    assert main(["run", "--import", str(tmp_path / "missing.py"), "x", "--out", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err and not out.exists()
    bad = tmp_path / "broken.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert main(["list", "--import", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "RuntimeError: boom" in err[0]


def test_entry_point_makes_the_scenario_visible_everywhere(tmp_path: Path) -> None:
    """An installed distribution declaring an ``abm_markets.scenarios`` entry point: listed and runnable."""
    site = tmp_path / "site"
    (site / "userstudy-0.1.dist-info").mkdir(parents=True)
    (site / "userstudy-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: userstudy\nVersion: 0.1\n")
    (site / "userstudy-0.1.dist-info" / "entry_points.txt").write_text(
        "[abm_markets.scenarios]\nmy_study = userstudy_mod\n"
    )
    (site / "userstudy_mod.py").write_text(Path(STUDY).read_text())
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    listed = subprocess.run(
        [sys.executable, "-m", "abm_markets", "list"], capture_output=True, text=True, env=env, timeout=120
    )
    assert listed.returncode == 0 and "my-external-study" in listed.stdout
    out = tmp_path / "run"
    ran = subprocess.run(
        [sys.executable, "-m", "abm_markets", "run", "my-external-study", "--out", str(out), "--no-progress"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    assert tomllib.loads((out / "config.toml").read_text())["run"]["imports"] == ["userstudy_mod"]


def test_sweep_imports_the_users_module_in_every_task(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "--import", STUDY, "my-external-study", "--seeds", "0-1", "--grid", "iterations=1,2"]
    assert main([*argv, "--out", str(out), "--num-cpus", "2"]) == 0
    index = pl.read_parquet(out / "index.parquet").sort("tag")
    assert index.height == 4
    assert sorted(index["summary.iterations_done"].to_list()) == [1, 1, 2, 2]


def test_viz_finds_the_users_economy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["viz", "UserGrowth-v1", "--import", STUDY, "--check"]) == 0
    assert "UserGrowth-v1: 1 agents" in capsys.readouterr().out
    assert main(["viz", "UserGrowth-v2", "--import", STUDY, "--check"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'UserGrowth-v1'" in err[0]
