"""Sweeps survive failing tasks, dying workers, kill -9 and changed configs; bad input is one line.

Before this work one failing task sank the whole sweep (a Ray traceback, no ``index.parquet``, the healthy
runs left ``running``), a re-run with another ``--set`` reused the finished runs of the old config,
``--seeds 0,0`` sent two tasks into one folder, ``--num-cpus 0`` was accepted, an unreachable ``--address``
retried for minutes and ``--seeds 0-99999999999999`` built the whole list in memory.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from abm_markets.cli import main

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

FLAKY = '''
"""A scenario that fails on purpose: mode=raise raises, mode=die kills its worker, while FLAG exists."""
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import polars as pl

from abm_markets.config import Config, param
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class FlakyConfig(Config):
    mode: str = param("ok", "ok, raise or die.", choices=("ok", "raise", "die"))
    flag: str = param("", "Fail only while this file exists (empty: always).")
    sleep: float = param(0.0, "Seconds each run sleeps.", ge=0)
    x: int = param(0, "A setting that only changes the config hash.")


@register("flaky-study", config=FlakyConfig, description="fails on purpose")
def run(cfg: FlakyConfig, ctx: Any) -> dict[str, Any]:
    time.sleep(cfg.sleep)
    failing = not cfg.flag or Path(cfg.flag).exists()
    if failing and cfg.mode == "raise":
        raise RuntimeError("boom in the model\\nsecond line of the message")
    if failing and cfg.mode == "die":
        os._exit(3)
    ctx.write_table("values", pl.DataFrame({"t": [0, 1], "v": [float(ctx.seed), float(cfg.x)]}))
    return {"value": float(ctx.seed + cfg.x)}
'''

TINY = ["--set", "n_economies=2", "--set", "periods=40", "--set", "burn_in=20", "--set", "n_households=4"]
TINY += ["--set", "mechanisms=bilateral"]


@pytest.fixture(scope="module")
def flaky(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("study") / "flaky_study.py"
    path.write_text(FLAKY)
    return str(path)


@pytest.fixture(scope="module")
def shared_ray() -> object:
    """One local Ray for the in-process sweeps of this file (a sweep joins a Ray that is already up): each
    sweep would otherwise start its own (~5-8 s). The subprocess of the kill test starts its own, as the CLI does."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield ray
    ray.shutdown()


@pytest.fixture
def no_ray() -> None:
    """A sweep joins a Ray that is already up in its process (ignoring --address): these tests need none."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def _ours(err: str) -> list[str]:
    """The lines the command itself wrote (Ray's own log lines from its processes are not ours)."""
    return [line for line in err.splitlines() if line.startswith("abm-markets:")]


def _complete_runs(out: Path) -> list[str]:
    done = []
    for manifest in out.glob("*/manifest.json"):
        try:
            if json.loads(manifest.read_text())["status"] == "complete":
                done.append(manifest.parent.name)
        except (OSError, ValueError, KeyError):
            pass
    return done


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session ``sid`` (one we started with ``start_new_session``), until none is left."""
    for _ in range(10):
        pids = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.getsid(int(entry)) == sid:
                        pids.append(int(entry))
                except OSError:
                    pass
        alive = []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                alive.append(pid)
            except OSError:
                pass
        if not alive:
            return
        time.sleep(0.2)


def _every_file_loads(folder: Path) -> int:
    n = 0
    for path in folder.rglob("*"):
        if path.suffix == ".parquet":
            pl.read_parquet(path)
            n += 1
        elif path.suffix == ".json":
            json.loads(path.read_text())
            n += 1
    return n


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--seeds", "0,0"], "gives seed 0 twice"),
        (["--seeds", "0-3,2"], "gives seed 2 twice"),
        (["--seeds", "5-3"], "is empty"),
        (["--seeds", "0-99999999999999"], "at most 10000 tasks"),
        (
            ["--seeds", "0-99", "--grid", "bargaining_power=" + ",".join(str(i / 100) for i in range(101))],
            "10100 tasks",
        ),
        (["--grid", "n_households=4,4"], "gives '4' twice"),
        (["--grid", "n_households=4", "--grid", "n_households=5"], "given twice"),
        (["--grid", "n_households=4,5", "--set", "n_households=4"], "both --set and --grid"),
        (["--num-cpus", "0"], "--num-cpus 0 is invalid"),
        (["--num-cpus", "-2"], "--num-cpus -2 is invalid"),
        (["--address", "127.0.0.1:1"], "cannot reach 127.0.0.1:1"),
        (["--address", "127.0.0.1:notaport"], "--address '127.0.0.1:notaport' is invalid"),
        (["--address", "http://127.0.0.1:6379"], "is invalid"),
        (["--address", "ray://"], "is invalid"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    extra: list[str], needle: str, no_ray: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    t0 = time.perf_counter()
    assert main(["sweep", "investment-markets", *TINY, "--out", str(out), *extra]) == 2
    assert time.perf_counter() - t0 < 20
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("abm-markets: error: ") and needle in lines[0], lines
    assert not out.exists()


def test_an_address_that_accepts_but_never_answers_times_out(tmp_path: Path) -> None:
    """A port that accepts TCP but is no Ray cluster: Ray alone retries for minutes; the sweep gives up."""
    out = tmp_path / "sweep"
    code = (
        "import socket, sys\n"
        "import abm_markets.sweep as sweep\n"
        "from abm_markets.cli import main\n"
        "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
        "sweep.CONNECT_TIMEOUT_S = 3.0\n"
        "address = f'127.0.0.1:{srv.getsockname()[1]}'\n"
        "argv = ['sweep', 'investment-markets', '--out', sys.argv[1], '--address', address]\n"
        "raise SystemExit(main(argv))\n"
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"},
    )
    wall = time.perf_counter() - t0
    assert proc.returncode == 2, proc.stderr
    lines = _ours(proc.stderr)
    assert len(lines) == 1 and "did not connect within 3 s" in lines[0], proc.stderr
    assert wall < 60 and not out.exists()


def test_failing_tasks_are_recorded_and_the_others_finish(
    flaky: str, shared_ray: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    flag = tmp_path / "fail-now"
    flag.write_text("")
    argv = ["sweep", "--import", flaky, "flaky-study", "--seeds", "0", "--grid", "mode=ok,raise,die"]
    argv += ["--set", f"flag={flag}", "--out", str(out), "--num-cpus", "2"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = _ours(err)
    assert len(lines) == 2, err
    assert (
        lines[0] == "abm-markets: run mode=raise-s0 failed: RuntimeError: boom in the model second line of the message"
    )
    assert lines[1].startswith("abm-markets: run mode=die-s0 failed: ") and "Worker" in lines[1]
    index = pl.read_parquet(out / "index.parquet")
    assert index["tag"].to_list() == ["mode=ok-s0", "mode=raise-s0", "mode=die-s0"]
    assert index["status"].to_list() == ["complete", "failed", "failed"]
    assert index["error"][0] is None and "boom" in index["error"][1]
    assert index["summary.value"].to_list() == [0.0, None, None]
    for tag in ("mode=raise-s0", "mode=die-s0"):
        manifest = json.loads((out / tag / "manifest.json").read_text())
        assert manifest["status"] == "failed" and manifest["error"]
    assert json.loads((out / "mode=ok-s0" / "manifest.json").read_text())["status"] == "complete"

    # the cause is gone: the same command re-runs the failed runs only
    flag.unlink()
    done = out / "mode=ok-s0" / "summary.json"
    mtime = done.stat().st_mtime_ns
    assert main(argv) == 0
    assert _ours(capsys.readouterr().err) == []
    index = pl.read_parquet(out / "index.parquet")
    assert index["status"].to_list() == ["skipped", "complete", "complete"]
    assert index["error"].null_count() == 3
    assert done.stat().st_mtime_ns == mtime
    assert all(json.loads((out / t / "manifest.json").read_text())["status"] == "complete" for t in index["tag"])
    assert _every_file_loads(out) >= 3 * 4 + 1

    # another config into the same folder: refused, nothing touched (not silently reused, not replaced)
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert main([*argv, "--set", "x=1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "holds a run of another config" in lines[0] and "another --out" in lines[0]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_kill_9_mid_sweep_then_the_same_command_completes(shared_ray: object, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    argv = ["sweep", "investment-markets", "--seeds", "0-3", *TINY, "--out", str(out), "--num-cpus", "1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "abm_markets", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own session: Ray's services and workers join it, so all can be killed
        env={**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled"},
    )
    try:
        deadline = time.monotonic() + 240
        while not _complete_runs(out):  # the first run is complete (summary.json, manifest "complete")
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep ended before any run finished"
            time.sleep(0.02)
    finally:
        _kill_session(proc.pid)  # the driver, Ray's services and its workers (workers have their own groups)
        proc.wait(timeout=60)
    finished = {tag: (out / tag / "summary.json").stat().st_mtime_ns for tag in _complete_runs(out)}
    assert 1 <= len(finished) < 4 and not (out / "index.parquet").exists()

    assert main(argv) == 0
    index = pl.read_parquet(out / "index.parquet")
    assert sorted(index["seed"].to_list()) == [0, 1, 2, 3]
    assert set(index["status"]) <= {"complete", "skipped"} and index["error"].null_count() == 4
    assert {t for t, s in zip(index["tag"], index["status"], strict=True) if s == "skipped"} >= set(finished)
    for tag, mtime in finished.items():
        assert (out / tag / "summary.json").stat().st_mtime_ns == mtime  # not run again
    for run_dir in index["run_dir"]:
        assert json.loads((Path(run_dir) / "manifest.json").read_text())["status"] == "complete"
    assert _every_file_loads(out) >= 4 * 5 + 1


def test_which_run_directories_are_reused_replaced_or_refused(tmp_path: Path) -> None:
    """The resume rules without Ray: reuse only complete runs of the same config hash; refuse other configs."""
    from abm_markets.errors import UserError
    from abm_markets.sweep import existing_state

    task = {"tag": "base-s0", "seed": 0, "config_hash": "aaaa", "overrides": {}}
    run_dir = tmp_path / "base-s0"
    assert existing_state(tmp_path, task) == "run"  # nothing there
    run_dir.mkdir()
    assert existing_state(tmp_path, task) == "run"  # killed before its manifest: start again
    manifest = run_dir / "manifest.json"
    manifest.write_text(json.dumps({"config_hash": "aaaa", "status": "running"}))
    assert existing_state(tmp_path, task) == "run"  # interrupted
    manifest.write_text(json.dumps({"config_hash": "aaaa", "status": "failed", "error": "x"}))
    assert existing_state(tmp_path, task) == "run"  # failed: run again
    (run_dir / "summary.json").write_text("{}")
    manifest.write_text(json.dumps({"config_hash": "aaaa", "status": "complete"}))
    assert existing_state(tmp_path, task) == "skip"  # a sweep of an older version (no marker): the manifest's hash
    manifest.write_text(json.dumps({"config_hash": "bbbb", "status": "complete"}))
    with pytest.raises(UserError, match=r"another config .*use another --out"):
        existing_state(tmp_path, task)
    (tmp_path / ".sweep").mkdir()
    (tmp_path / ".sweep" / "base-s0.json").write_text(json.dumps({"config_hash": "aaaa", "status": "complete"}))
    assert existing_state(tmp_path, task) == "skip"  # the hash the sweep started it with wins (prepared configs)
    with pytest.raises(UserError, match="another config"):
        existing_state(tmp_path, {**task, "config_hash": "cccc"})
    manifest.unlink()
    (tmp_path / ".sweep" / "base-s0.json").unlink()
    with pytest.raises(UserError, match="cannot check"):
        existing_state(tmp_path, task)  # a summary without a manifest: not ours to replace
