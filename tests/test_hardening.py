"""Hardening: every bad input is one line on stderr, exit status 2, no traceback, and nothing written.

Property-based (hypothesis) over every registered scenario and every config field: wrong-typed, out-of-range,
empty and over-long values as ``--set`` strings and as preset TOML values; malformed preset files; bad CLI
arguments (seed, output folder, device, ports, sweep options). Plus resume (conflicting options, corrupt
config.toml, bad ``checkpoints/latest``, unreadable checkpoints with a named fallback, completed runs), the run
lock, the memory estimate and ``viz --host``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from abm_markets import scenarios
from abm_markets.cli import main
from abm_markets.config import _base_type, _elem_type
from abm_markets.runs import RunLock

ROOT = Path(__file__).resolve().parents[1]
BM = ROOT / "scenarios" / "brock-mirman.toml"
STUDY = str(Path(__file__).parent / "data" / "external_study.py")
FAST = settings(  # each example uses a fresh --out under the per-test working directory
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

# ----------------------------------------------------------------------------------------------- helpers


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as e:  # argparse
        code = int(e.code) if isinstance(e.code, int) else 2
    res = capsys.readouterr()
    return code, res.out, res.err


def _assert_contract(argv: list[str], capsys: pytest.CaptureFixture[str], out: Path | None = None) -> str:
    """Exit 2, exactly one stderr line ``abm-markets: error: ...``, no traceback, ``out`` not created."""
    code, _, err = _cli(argv, capsys)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1, (argv, err)
    assert lines[0].startswith("abm-markets: error: "), lines
    assert "Traceback" not in err
    if out is not None:
        assert not out.exists(), (argv, sorted(p.name for p in out.iterdir()) if out.is_dir() else "file")
    return lines[0]


def _target(name: str) -> str:
    """What to pass to ``run`` for scenario ``name`` (train-economy needs a declared economy: Brock-Mirman)."""
    return str(BM) if name == "train-economy" else name


SCENARIOS = scenarios.all_scenarios()
FIELDS: list[tuple[str, dataclasses.Field[Any], Any]] = []
for _scen in SCENARIOS:
    _hints = typing.get_type_hints(_scen.config)
    for _f in dataclasses.fields(_scen.config):
        FIELDS.append((_scen.name, _f, _hints[_f.name]))

_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12)


def _bad_values(f: dataclasses.Field[Any], tp: Any) -> st.SearchStrategy[str] | None:
    """``--set`` strings that are invalid for field ``f`` of annotation ``tp``, or None when any string is valid."""
    meta = f.metadata
    accepted = _base_type(tp)
    optional = type(None) in accepted
    options: list[st.SearchStrategy[str]] = []
    if tuple in accepted:
        elem = _elem_type(tp)
        if (meta.get("min_len") or 0) >= 1:
            options.append(st.sampled_from(["", " ", "[]", ","]))
        if elem in (int, float):
            options.append(_WORDS.map(lambda w: f"1,{w}"))
            bad = _out_of_range(meta, elem)
            if bad is not None:
                options.append(bad)
        if elem is int:
            options.append(st.sampled_from(["1.5", "2,0.25"]))
            options.append(st.integers(2**63, 2**80).map(str))
        return st.one_of(options) if options else None
    if bool in accepted:
        return _WORDS.filter(lambda w: w.lower() not in ("true", "false", "yes", "no", "on", "off", "none", "null"))
    if int in accepted and float not in accepted:
        options += [
            st.sampled_from(["1.5", "nan", "inf", "-inf", "1e400", "x1", "0x10"]),
            st.integers(2**63, 2**100).map(str),
        ]
        bad = _out_of_range(meta, int)
        if bad is not None:
            options.append(bad)
        if not optional:
            options.append(st.just(""))
    elif float in accepted:
        options += [st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e999", "1.0.0"]), _WORDS.filter(_not_float)]
        bad = _out_of_range(meta, float)
        if bad is not None:
            options.append(bad)
        if not optional:
            options.append(st.just(""))
    elif str in accepted and meta.get("choices") is not None:
        choices = {str(c) for c in meta["choices"]}
        options.append(_WORDS.filter(lambda w: w not in choices and w.lower() not in ("none", "null")))
    return st.one_of(options) if options else None


def _not_float(w: str) -> bool:
    try:
        float(w)
    except ValueError:
        return True
    return False


def _out_of_range(meta: Any, kind: type) -> st.SearchStrategy[str] | None:
    """Values beyond the field's bounds (``ge``/``gt`` below, ``le``/``lt`` above)."""
    opts: list[st.SearchStrategy[str]] = []
    step: st.SearchStrategy[Any] = (
        st.integers(1, 10**6) if kind is int else st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False)
    )
    if meta.get("ge") is not None:
        opts.append(step.map(lambda d, b=meta["ge"]: str(kind(b) - d)))
    if meta.get("gt") is not None:
        opts.append(step.map(lambda d, b=meta["gt"]: str(kind(b) - d)) | st.just(str(kind(meta["gt"]))))
    if meta.get("le") is not None:
        opts.append(step.map(lambda d, b=meta["le"]: str(kind(b) + d)))
    if meta.get("lt") is not None:
        opts.append(step.map(lambda d, b=meta["lt"]: str(kind(b) + d)) | st.just(str(kind(meta["lt"]))))
    return st.one_of(opts) if opts else None


BAD_SETS = [(name, f.name, strat) for name, f, tp in FIELDS if (strat := _bad_values(f, tp)) is not None]


@pytest.fixture
def workdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary working directory (a default ``runs/`` folder would land here)."""
    with tempfile.TemporaryDirectory() as d:
        monkeypatch.chdir(d)
        yield Path(d)


def _fresh(root: Path) -> Path:
    """A not-yet-existing output folder under ``root``."""
    return Path(tempfile.mkdtemp(dir=root)) / "out"


# ----------------------------------------------------------------------------------- invalid settings


def test_every_scenario_has_fields_to_fuzz() -> None:
    names = {name for name, _, _ in BAD_SETS}
    assert names == {s.name for s in SCENARIOS}, {s.name for s in SCENARIOS} - names
    assert len(BAD_SETS) > 100


@settings(FAST, max_examples=100)  # ~150 fields: more examples, still in-process and fast
@given(data=st.data())
def test_invalid_setting_of_any_scenario(
    data: st.DataObject, workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, key, strat = data.draw(st.sampled_from(BAD_SETS), label="field")
    value = data.draw(strat, label="value")
    out = _fresh(workdir)
    line = _assert_contract(["run", _target(name), "--set", f"{key}={value}", "--out", str(out)], capsys, out)
    assert key in line or "economy" in line, line


@FAST
@given(data=st.data())
def test_invalid_sweep_setting(data: st.DataObject, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name, key, strat = data.draw(st.sampled_from(BAD_SETS), label="field")
    value = data.draw(strat.filter(lambda v: "," not in v), label="value")
    out = _fresh(workdir)
    _assert_contract(["sweep", _target(name), "--grid", f"{key}={value}", "--out", str(out)], capsys, out)


_TOML_BAD = st.one_of(
    st.just({"a": 1}),
    st.just([[1, 2]]),
    st.just("not-a-value"),
    st.just(True),
    st.just([]),
    st.just(2**63 - 1),
    st.just(-(2**63)),
)


@settings(FAST, max_examples=100)
@given(data=st.data())
def test_invalid_preset_setting(data: st.DataObject, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A preset whose [settings] holds a wrong-typed, empty or extreme TOML value for some field."""
    import tomli_w

    name, f, _ = data.draw(st.sampled_from([x for x in FIELDS if x[0] != "train-economy"]), label="field")
    value = data.draw(_TOML_BAD, label="value")
    cfg = next(s.config for s in SCENARIOS if s.name == name)
    try:  # keep only values the field must reject
        cfg.from_overrides({f.name: value})
        rejected = False
    except Exception:
        rejected = True
    assume(rejected)
    preset = workdir / f"p{data.draw(st.integers(0, 10**9))}.toml"
    preset.write_text(tomli_w.dumps({"scenario": name, "settings": {f.name: value}}))
    out = _fresh(workdir)
    _assert_contract(["run", str(preset), "--out", str(out)], capsys, out)


_PRESET_TEXTS = st.one_of(
    st.sampled_from(
        [
            'scenario = "investment-planner"\nsettings = 5\n',
            'scenario = "investment-planner"\nsettings = "x"\n',
            'scenario = "investment-planner"\nsettings = [1, 2]\n',
            'scenario = "investment-planner"\nseed = true\n',
            'scenario = "investment-planner"\nseed = 1.5\n',
            'scenario = "investment-planner"\nseed = -1\n',
            'scenario = "investment-planner"\nseed = -9223372036854775808\n',
            'scenario = "investment-planner"\nseed = "7"\n',
            "scenario = 5\n",
            "seed = 3\n",
            'scenario = "no-such-scenario"\n',
            'scenario = "investment-planner"\nextra = 1\n',
            'scenario = "investment-planner"\n[settings\n',
            'scenario = "investment-planner"\n[settings]\nalpha = 0.3\nalpha = 0.4\n',
            'scenario = "investment-planner"\n[settings]\nperiods = 10\nburn_in = 10\n',
            'scenario = "investment-planner"\n[settings]\nagg_tfp_values = []\n',
            'scenario = "investment-planner"\n[settings]\nn_economies = 100000000000\nperiods = 1000000\n',
            "economy = 5\n",
            "[economy]\n",
            "",
        ]
    ),
    st.binary(min_size=1, max_size=40).map(lambda b: b"\xff\xfe" + b),  # not UTF-8
    st.text(max_size=40).map(lambda t: "scenario = [" + t),  # not TOML
)


@FAST
@given(text=_PRESET_TEXTS)
def test_malformed_preset_file(text: str | bytes, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preset = workdir / "preset.toml"
    if isinstance(text, bytes):
        preset.write_bytes(text)
    else:
        preset.write_text(text)
    out = _fresh(workdir)
    _assert_contract(["run", str(preset), "--out", str(out)], capsys, out)


def test_preset_that_is_a_folder_or_missing(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "dir.toml").mkdir()
    for target in ("dir.toml", "missing.toml"):
        out = _fresh(workdir)
        _assert_contract(["run", str(workdir / target), "--out", str(out)], capsys, out)


# ------------------------------------------------------------------------------------ CLI arguments


def _unusable_out(kind: str, root: Path) -> tuple[Path, Path | None]:
    """(an --out that cannot be used, the path that must not appear)."""
    (root / "afile").write_text("x")
    if kind == "file":
        return root / "afile", None
    if kind == "under-file":
        return root / "afile" / "sub" / "run", root / "afile" / "sub"
    if kind == "dev-null":
        return Path("/dev/null"), None
    if kind == "long-name":  # (the name cannot even be looked up: the snapshot below shows nothing appeared)
        return root / ("x" * 300), None
    if kind == "long-path":
        deep = root.joinpath(*(["d" * 200] * 25))
        return deep, root / ("d" * 200)
    if kind == "non-empty":
        (root / "full").mkdir(exist_ok=True)
        (root / "full" / "keep.txt").write_text("x")
        return root / "full", None
    raise AssertionError(kind)


OUT_KINDS = ["file", "under-file", "dev-null", "long-name", "long-path", "non-empty"]


@pytest.mark.parametrize("command", ["run", "sweep"])
@pytest.mark.parametrize("kind", OUT_KINDS)
def test_unusable_out_folder(command: str, kind: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if command == "sweep" and kind == "non-empty":
        pytest.skip("a sweep folder may hold runs (sweeps resume)")
    out, absent = _unusable_out(kind, workdir)
    before = sorted(p.name for p in workdir.rglob("*"))
    argv = [command, "investment-planner", "--set", "learner=dp", "--out", str(out)]
    line = _assert_contract(argv, capsys, absent)
    assert "folder" in line or "directory" in line, line
    assert sorted(p.name for p in workdir.rglob("*")) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_unwritable_out_folder(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ro = workdir / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        _assert_contract(["run", "investment-planner", "--out", str(ro / "run")], capsys, ro / "run")
    finally:
        ro.chmod(0o755)


_CLI_BAD = st.one_of(
    st.integers(2**63, 2**70).map(lambda s: ["run", "investment-planner", "--seed", str(s)]),
    st.integers(-(2**70), -1).map(lambda s: ["run", "investment-planner", "--seed", str(s)]),
    _WORDS.map(lambda w: ["run", "investment-planner", "--seed", w]),
    _WORDS.filter(lambda w: w not in ("cpu", "auto", "cuda")).map(
        lambda w: ["run", "investment-planner", "--device", w]
    ),
    _WORDS.map(lambda w: ["run", "investment-planner", "--set", w]),
    _WORDS.map(lambda w: ["run", "investment-planner", "--set", f"={w}"]),
    _WORDS.map(lambda w: ["run", "investment-planner", "--set", f"{w}=1"]),
    _WORDS.filter(lambda w: w not in {s.name for s in SCENARIOS}).map(lambda w: ["run", w]),
    _WORDS.map(lambda w: ["show", w]),
    _WORDS.map(lambda w: ["run", "investment-planner", "--import", f"{w}_no_such_module"]),
    _WORDS.map(lambda w: ["list", "--import", f"/nonexistent/{w}.py"]),
    st.sampled_from(["-1", "a-b", "3-x", ",", "0-", "-"]).map(lambda s: ["sweep", "investment-planner", "--seeds", s]),
    st.integers(2**63, 2**70).map(lambda s: ["sweep", "investment-planner", "--seeds", str(s)]),
    st.integers(-5, 0).map(lambda n: ["sweep", "investment-planner", "--num-cpus", str(n)]),
    _WORDS.map(lambda w: ["sweep", "investment-planner", "--grid", w]),
    st.one_of(st.integers(-(10**6), 0), st.integers(65536, 10**9)).map(lambda p: ["viz", "--port", str(p), "--check"]),
    _WORDS.map(lambda w: ["viz", f"{w}-v9", "--check"]),
    _WORDS.map(lambda w: ["steady-state", "investment", "--set", f"{w}_x=1"]),
    st.sampled_from(["n_households=1e300", "n_households=0", "crra=1e300", "delta=1e-300", "beta=1", "phi=-1"]).map(
        lambda s: ["steady-state", "investment", "--set", s]
    ),
    _WORDS.filter(lambda w: w != "investment").map(lambda w: ["steady-state", w]),
    st.just(["run"]),
    st.just(["run", "--resume", "/nonexistent/run"]),
    st.just([]),
)


@FAST
@given(argv=_CLI_BAD)
def test_invalid_cli_arguments(argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = _fresh(workdir)
    if argv and (argv[0] == "sweep" or (argv[0] == "run" and "--resume" not in argv)):
        argv = [*argv, "--out", str(out)]
    _assert_contract(argv, capsys, out)
    assert not (workdir / "runs").exists()


# ------------------------------------------------------------------------------------- memory estimate


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "investment-planner", "--set", "n_economies=100000000", "--set", "periods=100000"],
        ["run", "investment-markets", "--set", "n_households=10000000"],
        ["run", "investment-scaling", "--set", "households_list=1,100000000"],
        ["run", "investment-ablation", "--set", "train_economies=1000000000"],
        ["run", "huggett-srl", "--set", "n_income=100000000"],
        ["steady-state", "investment", "--set", "n_households=100000000"],
        ["sweep", "investment-markets", "--grid", "n_households=2,10000000"],
    ],
)
def test_memory_estimate_refuses_with_figure_and_fix(
    argv: list[str], workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _fresh(workdir)
    if argv[0] != "steady-state":
        argv = [*argv, "--out", str(out)]
    line = _assert_contract(argv, capsys, out)
    assert "needs about" in line and "available" in line and "lower" in line, line


def test_memory_estimate_uses_available_memory(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default planner fits a normal machine but not 1 MiB."""
    monkeypatch.setenv("ABM_MARKETS_MEMORY_BYTES", str(2**20))
    out = _fresh(workdir)
    line = _assert_contract(["run", "investment-planner", "--out", str(out)], capsys, out)
    assert "1.0 MiB is available" in line


# ---------------------------------------------------------------------------------------------- viz


@pytest.mark.parametrize(("extra", "host"), [([], "127.0.0.1"), (["--host", "0.0.0.0"], "0.0.0.0")])
def test_viz_binds_localhost_unless_told(
    extra: list[str], host: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[list[str], dict[str, str]]] = []

    def fake_execve(path: str, cmd: list[str], env: dict[str, str]) -> None:  # the server would replace the process
        calls.append((list(cmd), dict(env)))

    monkeypatch.setattr(os, "execve", fake_execve)
    assert main(["viz", *extra]) == 0
    ((cmd, env),) = calls
    assert cmd[cmd.index("--host") + 1] == host
    assert "solara" in cmd and "run" in cmd
    assert env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False"  # nothing leaves the machine


# ------------------------------------------------------------------------------------------- resume


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run of the external study: 3 iterations, a checkpoint after each, seed 7."""
    out = tmp_path_factory.mktemp("base") / "run"
    argv = ["run", "--import", STUDY, "my-external-study", "--set", "iterations=3", "--seed", "7"]
    assert main([*argv, "--out", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in (out / "checkpoints").glob("iter*.pt")) == [
        "iter000001.pt",
        "iter000002.pt",
        "iter000003.pt",
    ]
    return out


@pytest.fixture
def run_copy(finished_run: Path, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    return out


def _snapshot(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _status(run: Path) -> str:
    return json.loads((run / "manifest.json").read_text())["status"]


def _corrupt_config(run: Path, how: str) -> None:
    cfg = run / "config.toml"
    text = cfg.read_text()
    if how == "garbage":
        cfg.write_text("[run\nscenario = ")
    elif how == "no-run-table":
        cfg.write_text(text.split("[scenario]")[1].join(["[scenario]", ""]) if "[scenario]" in text else "")
    elif how == "seed-string":
        cfg.write_text(text.replace("seed = 7", 'seed = "7"'))
    elif how == "seed-bool":
        cfg.write_text(text.replace("seed = 7", "seed = true"))
    elif how == "seed-huge":
        cfg.write_text(text.replace("seed = 7", "seed = 9223372036854775807").replace("[run]", "[run]"))
    elif how == "not-utf8":
        cfg.write_bytes(b"\xff\xfe\x00" + text.encode("utf-16"))
    elif how == "folder":
        cfg.unlink()
        cfg.mkdir()
    elif how == "missing":
        cfg.unlink()
    elif how == "scenario-not-table":
        cfg.write_text(text.split("[scenario]")[0] + "scenario = 5\n")
    elif how == "bad-setting":
        cfg.write_text(text.replace("n_economies = 4", "n_economies = -4"))
    elif how == "imports-mistyped":
        cfg.write_text(text.replace("imports = [", "imports = 5\nx = ["))
    else:
        raise AssertionError(how)


CONFIG_DAMAGE = [
    "garbage",
    "no-run-table",
    "seed-string",
    "seed-bool",
    "not-utf8",
    "folder",
    "missing",
    "scenario-not-table",
    "bad-setting",
    "imports-mistyped",
]


@pytest.mark.parametrize("how", CONFIG_DAMAGE)
def test_resume_with_damaged_config(how: str, run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _corrupt_config(run_copy, how)
    before = _snapshot(run_copy)
    line = _assert_contract(["run", "--resume", str(run_copy), "--set", "iterations=4"], capsys)
    assert "config.toml" in line or "run directory" in line or "invalid" in line, line
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--seed", "8"], "--seed 8 conflicts with the run's seed 7"),
        (["--set", "n_economies=8"], "would change what the run"),
        (["--set", "iterations=2"], "below the run's iterations = 3"),
        (["--out", "elsewhere"], "cannot be combined with --resume"),
        (["--set", "no_such_key=1"], "unknown key"),
        (["my-other-study"], "holds a 'my-external-study' run"),
    ],
)
def test_resume_refuses_options_that_change_the_run(
    extra: list[str], needle: str, run_copy: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    before = _snapshot(run_copy)
    argv = ["run", "--resume", str(run_copy), *extra]
    if extra == ["my-other-study"]:
        argv = ["run", "my-other-study", "--resume", str(run_copy)]
    line = _assert_contract(argv, capsys)
    assert needle in line, line
    assert _snapshot(run_copy) == before
    assert not (tmp_path / "elsewhere").exists() and not Path("elsewhere").exists()


def test_resume_of_a_complete_run_does_nothing(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = _snapshot(run_copy)
    for extra in ([], ["--seed", "7"], ["--set", "iterations=3"]):
        code, out, err = _cli(["run", "--resume", str(run_copy), *extra], capsys)
        assert code == 0 and err == ""
        assert [ln for ln in out.splitlines() if ln.strip()] == [
            f"run directory {run_copy} is complete with these settings; nothing to do"
        ]
    assert _snapshot(run_copy) == before


@pytest.mark.parametrize(
    "pointer", ["../../other/checkpoints/iter000002", "/etc/passwd", "sub/iter000001", "..", "", "iter000001\x00"]
)
def test_latest_pointing_outside_the_run(pointer: str, run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_copy / "checkpoints" / "latest").write_text(pointer + "\n")
    before = _snapshot(run_copy)
    line = _assert_contract(["run", "--resume", str(run_copy), "--set", "iterations=5"], capsys)
    assert "checkpoints" in line, line
    assert _snapshot(run_copy) == before and _status(run_copy) == "complete"


@pytest.mark.parametrize("damage", ["deleted", "truncated", "empty", "garbage", "folder"])
def test_bad_checkpoint_names_the_fallback(damage: str, run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = run_copy / "checkpoints" / "iter000003.pt"
    if damage == "deleted":
        ckpt.unlink()
    elif damage == "truncated":
        ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    elif damage == "empty":
        ckpt.write_bytes(b"")
    elif damage == "garbage":
        ckpt.write_bytes(os.urandom(512))
    else:
        ckpt.unlink()
        ckpt.mkdir()
    before = _snapshot(run_copy)
    line = _assert_contract(["run", "--resume", str(run_copy), "--set", "iterations=5"], capsys)
    assert "iter000003.pt" in line and "last good checkpoint is iter000002" in line, line
    assert _snapshot(run_copy) == before and _status(run_copy) == "complete"
    # following the advice resumes from the fallback
    if damage == "folder":
        ckpt.rmdir()
    (run_copy / "checkpoints" / "latest").write_text("iter000002\n")
    assert main(["run", "--resume", str(run_copy), "--set", "iterations=4", "--no-progress"]) == 0
    summary = json.loads((run_copy / "summary.json").read_text())
    assert summary["iterations_done"] == 4 and summary["rows_this_call"] == 2
    assert _status(run_copy) == "complete"


def test_no_good_checkpoint_at_all(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for p in (run_copy / "checkpoints").glob("iter*.pt"):
        p.write_bytes(b"")
    line = _assert_contract(["run", "--resume", str(run_copy), "--set", "iterations=5"], capsys)
    assert "no other checkpoint of this run loads" in line
    assert _status(run_copy) == "complete"


def test_extending_a_complete_run_keeps_it_complete(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--resume", str(run_copy), "--set", "iterations=4", "--no-progress"]) == 0
    assert _status(run_copy) == "complete"
    assert json.loads((run_copy / "summary.json").read_text())["iterations_done"] == 4
    code, out, _ = _cli(["run", "--resume", str(run_copy)], capsys)
    assert code == 0 and "nothing to do" in out


# --------------------------------------------------------------------------------------------- lock


def test_second_process_on_a_run_folder_fails(run_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (run_copy / "manifest.json").write_text((run_copy / "manifest.json").read_text().replace('"complete"', '"running"'))
    before = _snapshot(run_copy)
    with RunLock(run_copy):  # another owner (flock conflicts across open files, even in one process)
        before = _snapshot(run_copy)
        line = _assert_contract(["run", "--resume", str(run_copy), "--set", "iterations=4"], capsys)
        assert "in use by another process" in line and f"pid {os.getpid()}" in line
        assert _snapshot(run_copy) == before


def test_new_run_into_a_locked_empty_folder_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    with RunLock(out):
        _assert_contract(["run", "investment-planner", "--set", "learner=dp", "--out", str(out)], capsys)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_lock_of_a_killed_owner_is_stale(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from abm_markets.runs import RunLock; "
        "RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        with pytest.raises(Exception, match="in use by another process"):
            RunLock(tmp_path).acquire()
    finally:
        proc.kill()  # SIGKILL: no cleanup code runs
        proc.wait()
    lock = RunLock(tmp_path).acquire()
    assert (tmp_path / ".lock").read_text().strip() == str(os.getpid())
    lock.release()


# ------------------------------------------------------------------------------------ config unit checks


def test_empty_lists_rejected_unless_documented() -> None:
    from abm_markets.errors import ConfigError
    from abm_markets.scenarios.declared import DeclaredEconomyConfig
    from abm_markets.scenarios.learning import ScalingScenarioConfig
    from abm_markets.scenarios.markets import MarketsScenarioConfig

    with pytest.raises(ConfigError, match="at least 1 entry"):
        MarketsScenarioConfig(mechanisms=())
    assert ScalingScenarioConfig(households_list=()).households_list == ()  # "empty = skip"
    assert DeclaredEconomyConfig(groups=()).groups == ()  # default empty
    with pytest.raises(ConfigError, match="list of float"):
        MarketsScenarioConfig(tfp_values=("a",))
    with pytest.raises(ConfigError, match="list of int"):
        ScalingScenarioConfig(households_list=(True,))
    assert MarketsScenarioConfig(tfp_values=(1, 2)).tfp_values == (1.0, 2.0)


def test_seed_limits_match_the_generators() -> None:
    import numpy as np
    import torch

    from abm_markets.runner import SEED_LIMIT

    top = SEED_LIMIT - 1
    torch.Generator().manual_seed(top + 10_000)  # offsets scenarios add stay accepted
    np.random.default_rng(top + 10_000)
    with pytest.raises((RuntimeError, ValueError)):
        torch.Generator().manual_seed(2**64)
    assert math.log2(SEED_LIMIT) == 63


def test_learning_scenarios_check_their_calibration_before_writing(tmp_path, capsys) -> None:
    """The learning scenarios build their economy's config when validated: an overflowing calibration is one line."""
    from abm_markets.cli import main

    for name in ("investment-scaling", "investment-ablation"):
        out = tmp_path / name
        assert main(["run", name, "--set", "tfp_values=1e300,1e300", "--out", str(out)]) == 2
        err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
        assert len(err) == 1 and "beyond float64" in err[0] and not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["collusion-calvano", "--set", "n_sessions=100000000"],
        ["equilibrium-selection", "--set", "sessions_per_cell=1000000000"],
        ["collusion-deeprl", "--set", "n_economies=1000000000"],
        ["monopolist-q", "--set", "n_sessions=1000000000000"],
        ["ks-srl", "--set", "n_agents=100000000000"],
        ["hank-srl", "--set", "n_paths=100000000000"],
        [str(Path(__file__).resolve().parents[1] / "scenarios" / "brock-mirman.toml"), "--set", "n_economies=10**11"],
    ],
)
def test_every_scenario_estimates_its_memory(argv: list[str], tmp_path, capsys) -> None:
    """Sizes the machine cannot hold are refused with the figure, in one line, before the run folder exists."""
    from abm_markets.cli import main

    argv = [a.replace("10**11", "100000000000") for a in argv]
    out = tmp_path / "run"
    assert main(["run", *argv, "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "of memory but" in err[0] and "lower" in err[0], err
    assert not out.exists()
