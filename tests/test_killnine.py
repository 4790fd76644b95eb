"""kill -9 in the middle of a run, then ``run --resume``: no corrupt file, and the same result as no kill.

Each test starts a run in its own process group, waits until a few checkpoints exist, sends SIGKILL to the
group (no cleanup handler runs), checks that every file left in the run directory loads, resumes the run
from the command line (without ``--set``: a resume takes the run's own settings) and compares it with an
uninterrupted run of the same seed and settings, started alongside:

* training (PPO, ``train-economy`` on ``scenarios/brock-mirman.toml``): every metric of every iteration and
  every summary number other than wall times equal bit for bit;
* SRL (``huggett-pe-srl``, coarse grids): every metric of every epoch and every summary number other than
  wall times equal bit for bit (the checkpoint holds tables, Adam state, the generator, the paths' state and
  the convergence counter, so the resumed solve is the same computation).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import polars as pl
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
BM = ROOT / "scenarios" / "brock-mirman.toml"

TRAIN_SETS = {
    "iterations": 30,
    "checkpoint_every": 3,
    "n_economies": 32,
    "eval_economies": 16,
    "eval_periods": 20,
}
SRL_SETS = {
    "n_assets": 40,
    "asset_max": 12.0,
    "n_income": 2,
    "n_r": 3,
    "n_paths": 8,
    "horizon": 40,
    "tail": 10,
    "max_epochs": 120,
    "warmup_epochs": 5,
    "min_epochs": 1000,  # no early convergence: the run lasts all its epochs
    "checkpoint_every": 10,
    "eval_paths": 4,
    "eval_periods": 20,
    "eval_burn_in": 10,
}
WALL = ("wall_s", "train_wall_s", "srl_wall_s", "epoch_s", "solver_wall_s", "egm_s")


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "abm_markets", "run", *args, "--no-progress"]


def _start(target: str, out: Path, sets: dict[str, object]) -> subprocess.Popen[bytes]:
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    return subprocess.Popen(
        _cmd(target, "--out", str(out), *args),
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def _kill_after(proc: subprocess.Popen[bytes], out: Path, checkpoints: int, timeout: float = 120.0) -> str:
    """SIGKILL the run's process group as soon as ``checkpoints`` checkpoints exist; return what latest named."""
    deadline = time.monotonic() + timeout
    folder = out / "checkpoints"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc {proc.returncode}) before it was killed: {proc.stderr.read().decode()}")
        if folder.exists() and len(list(folder.glob("*.pt"))) >= checkpoints and (folder / "latest").exists():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            return (folder / "latest").read_text().strip()
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"no {checkpoints} checkpoints after {timeout} s")


def _assert_every_file_loads(out: Path) -> None:
    """Every .json/.parquet/.toml/.pt left by the killed run loads; latest names a checkpoint that loads."""
    seen = 0
    for path in sorted(out.rglob("*")):
        if path.name.startswith("."):  # a temporary file of an interrupted atomic write, never read
            continue
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".parquet":
            pl.read_parquet(path)
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
        elif path.suffix == ".pt":
            torch.load(path, weights_only=True)
        else:
            continue
        seen += 1
    latest = (out / "checkpoints" / "latest").read_text().strip()
    assert (out / "checkpoints" / f"{latest}.pt").exists()
    assert seen >= 4  # config, manifest, metrics, checkpoints at least
    assert json.loads((out / "manifest.json").read_text())["status"] == "running"
    assert not (out / "summary.json").exists()  # killed before the end


def _resume(out: Path) -> None:
    res = subprocess.run(_cmd("--resume", str(out)), cwd=ROOT, env=_env(), capture_output=True, timeout=300)
    assert res.returncode == 0, res.stderr.decode()[-2000:]


def _finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


def _assert_same_result(a: Path, b: Path, key: str) -> None:
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert set(sa) == set(sb)
    differ = {k: (sa[k], sb[k]) for k in sa if k not in WALL and sa[k] != sb[k]}
    assert differ == {}
    ma, mb = (pl.read_parquet(d / "metrics.parquet") for d in (a, b))
    cols = [c for c in ma.columns if c not in WALL]
    assert ma.height == mb.height and ma[key].to_list() == list(range(1, ma.height + 1))
    assert ma.select(cols).equals(mb.select(cols))  # bit for bit, every row
    assert json.loads((a / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.slow
def test_kill9_during_training_then_resume_is_bit_exact(tmp_path) -> None:
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    ref = _start(str(BM), straight, TRAIN_SETS)
    victim = _start(str(BM), killed, TRAIN_SETS)
    try:
        latest = _kill_after(victim, killed, checkpoints=3)
        assert latest.startswith("iter")
        _assert_every_file_loads(killed)
        _resume(killed)
    finally:
        _finish(ref)
    _assert_same_result(killed, straight, "iteration")


@pytest.mark.slow
def test_kill9_during_srl_then_resume_is_bit_exact(tmp_path) -> None:
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    ref = _start("huggett-pe-srl", straight, SRL_SETS)
    victim = _start("huggett-pe-srl", killed, SRL_SETS)
    try:
        latest = _kill_after(victim, killed, checkpoints=3)
        assert latest.startswith("epoch")
        _assert_every_file_loads(killed)
        _resume(killed)
    finally:
        _finish(ref)
    _assert_same_result(killed, straight, "epoch")
