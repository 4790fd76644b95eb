"""Command line and run directories: errors are one line, exit 2, nothing written."""

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
from abm_markets.engine.config import InvestmentConfig
from abm_markets.runs import atomic_write_bytes

SMALL = [
    "--set",
    "learner=dp",
    "--set",
    "n_economies=16",
    "--set",
    "periods=60",
    "--set",
    "burn_in=10",
    "--set",
    "vfi_grid=60",
    "--no-progress",
]


def _err(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    code = main(argv) if argv[0] != "--help" else 0
    err = capsys.readouterr().err
    assert code == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_list_names_the_default_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "investment-planner" in out


def test_show_states_every_scenarios_expected_time(capsys: pytest.CaptureFixture[str]) -> None:
    """Every registered scenario carries a measured wall time of its default run and where it comes from."""
    from abm_markets.scenarios import all_scenarios

    for scen in (s for s in all_scenarios() if s.source is None):  # the package's own (not --import'ed ones)
        assert scen.expected_wall_s is not None and scen.expected_wall_s > 0, scen.name
        assert len(scen.expected_wall_source) > 10, scen.name
        assert main(["show", scen.name]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[1].startswith("expected time (default, 2 cores): ~"), lines[:2]
        assert scen.expected_wall_source in lines[1]


def test_expected_time_is_rounded_to_a_readable_unit() -> None:
    from abm_markets.scenarios import Scenario

    def shown(seconds: float | None) -> str:
        return Scenario("x", "", InvestmentConfig, lambda: {}, expected_wall_s=seconds).expected_time()

    assert [shown(s) for s in (3.4, 77.0, 95.0, 572.0, 7200.0, None)] == [
        "~3 s", "~80 s", "~2 min", "~10 min", "~2.0 h", "not measured",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "investment-planer"], "did you mean 'investment-planner'"),
        (["run", "investment-planner", "--set", "alpah=0.3"], "did you mean 'alpha'"),
        (["run", "investment-planner", "--set", "alpha=1.5"], "alpha = 1.5 is invalid"),
        (["run", "investment-planner", "--set", "alpha=abc"], "expected float"),
        (["run", "investment-planner", "--set", "alpha"], "expected key=value"),
        (["run", "investment-planner", "--set", "n_households=2"], "n_households"),
        (["run", "investment-planner", "--set", "formulation=plan"], "did you mean 'planner'"),
        (["run", "investment-planner", "--device", "tpu"], "unknown device 'tpu'"),
        (["run", "investment-planner", "--seed", "-3"], "--seed -3"),
        (["steady-state", "investmant"], "did you mean 'investment'"),
        (["steady-state", "investment", "--set", "beta=1.2"], "beta = 1.2 is invalid"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    if argv[0] == "run":
        argv = [*argv, "--out", str(out)]
    line = _err(capsys, argv)
    assert needle in line
    assert not out.exists()


def test_argparse_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["run", "investment-planner", "--seed", "x"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("abm-markets: error:")


def test_steady_state_json_matches_closed_form(capsys: pytest.CaptureFixture[str]) -> None:
    for form in ("planner", "market"):
        assert (
            main(["steady-state", "investment", "--set", f"formulation={form}", "--set", "n_households=4", "--json"])
            == 0
        )
        data = json.loads(capsys.readouterr().out)
        for key in ("capital", "price", "saving_share", "output", "consumption"):
            assert key in data
        cfg = InvestmentConfig(formulation=form, n_households=4)
        k = (cfg.alpha * cfg.beta / (4 * cfg.phi * cfg.delta * (1 - cfg.beta * (1 - cfg.delta)))) ** (
            1 / (2 - cfg.alpha)
        )
        capital = data["capital"]
        flat = (
            capital
            if isinstance(capital, float)
            else [x for row in capital for x in (row if isinstance(row, list) else [row])]
        )
        for x in flat if isinstance(flat, list) else [flat]:
            assert x == pytest.approx(k, rel=1e-8)


def test_run_directory_complete_and_loadable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["run", "investment-planner", "--out", str(out), "--seed", "3", *SMALL]) == 0
    for name in ("config.toml", "manifest.json", "summary.json", "metrics.parquet", "steps.parquet", "markets.parquet"):
        assert (out / name).exists(), name
    for name in ("capital", "consumption", "investment", "policy"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    cfg = tomllib.loads((out / "config.toml").read_text())
    assert cfg["run"]["seed"] == 3 and cfg["scenario"]["n_economies"] == 16
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["wall_s"] > 0 and len(manifest["config_hash"]) == 16
    assert "torch" in manifest["versions"]
    steps = pl.read_parquet(out / "steps.parquet")
    assert set(steps.columns) == {"t", "economy", "agent", "variable", "value", "policy"}
    assert steps.filter((pl.col("variable") == "capital") & (pl.col("policy") == "dp")).height == 60 * 8
    summary = json.loads((out / "summary.json").read_text())
    # the engine reproduces the DP policy's next capital; the steady state agrees with the closed form
    assert summary["engine_vs_dp_max_rel_gap"] < 1e-10
    assert summary["steady_state_gap"] < 1e-8
    # an existing run directory is not overwritten
    assert main(["run", "investment-planner", "--out", str(out), *SMALL]) == 2
    assert "exists" in capsys.readouterr().err


def test_same_seed_same_run(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert main(["run", "investment-planner", "--out", str(out), "--seed", "5", *SMALL]) == 0
    assert pl.read_parquet(a / "steps.parquet").equals(pl.read_parquet(b / "steps.parquet"))


def test_preset_file(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text(
        'scenario = "investment-planner"\nseed = 4\n[settings]\nlearner = "dp"\n'
        "n_economies = 8\nperiods = 30\nburn_in = 5\nvfi_grid = 50\n"
    )
    out = tmp_path / "run"
    assert main(["run", str(preset), "--out", str(out), "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 4
    bad = tmp_path / "bad.toml"
    bad.write_text('scenario = "investment-planner"\n[settings]\nperiodz = 3\n')
    assert main(["run", str(bad), "--out", str(tmp_path / "r2")]) == 2
    assert not (tmp_path / "r2").exists()


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.json"
    atomic_write_bytes(target, b"old")

    def boom(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"


def test_console_script_runs() -> None:
    res = subprocess.run([sys.executable, "-m", "abm_markets", "list"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "investment-planner" in res.stdout


@pytest.mark.parametrize(
    "preset", sorted((Path(__file__).resolve().parent.parent / "scenarios").glob("*.toml")), ids=lambda p: p.name
)
def test_every_preset_resolves(preset: Path) -> None:
    """Each shipped preset names a registered scenario and only valid settings."""
    from abm_markets.runner import resolve

    scen, cfg, _ = resolve(str(preset), {})
    assert scen.name in preset.read_text()
    assert len(cfg.config_hash()) == 16


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        *([c, "--help"] for c in ("list", "show", "run", "sweep", "viz", "compare", "report", "steady-state")),
    ],
)
def test_help_prints_for_every_command(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """`--help` formats every help string (a bare % in one once broke the top-level help)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    assert "usage: abm-markets" in capsys.readouterr().out
