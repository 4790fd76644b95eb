"""Sweeps of seeds and parameters as Ray tasks.

``abm-markets sweep NAME --seeds 0-3 --grid beta=0.96,0.98 --out runs/sweep`` runs
one scenario run per (grid point, seed) as a Ray task — on a local Ray by default,
on a cluster with ``--address`` — each into its own run directory under ``out``,
then writes ``out/index.parquet`` with one row per run (settings, seed, run
directory, status, error, and the scalar summary figures).

Guarantees:

* **Input is checked before anything is written or started**: seeds (nonnegative, no seed twice, ranges
  counted from their bounds), grid (no key twice, no value twice, no key both ``--set`` and ``--grid``), at
  most :data:`MAX_TASKS` tasks, every config resolved, ``--num-cpus >= 1``, ``--address`` well formed and
  reachable within :data:`CONNECT_TIMEOUT_S` seconds. Bad input raises :class:`~abm_markets.errors.UserError`
  (one line; the CLI exits 2).
* **A failing run does not sink the sweep**: each task catches its own exception, marks its run directory
  failed (``manifest.json`` ``status = "failed"`` and ``error``, written atomically) and returns a row with
  ``status = "failed"`` and a one-line ``error``; a worker that dies is recorded the same way by the driver.
  Every other task finishes and is indexed; the CLI exits 1 and prints one line per failed run.
* **Resume only what matches**: a run directory is reused (``status = "skipped"``) only when it is complete
  (``summary.json`` present, manifest ``status = "complete"``) *and* was made with the task's config hash.
  Incomplete or failed runs of the same config are started again from scratch. A run directory made with
  another config is never reused nor replaced: the sweep refuses before anything runs, telling the user
  to pass another ``--out``.

The config hash a task was started with is recorded in ``out/.sweep/TAG.json`` before its run starts (the
run's own ``manifest.json`` records the hash of the config as the scenario ran it, which differs when a
scenario prepares its run directory, e.g. a declared economy copied into it); for run directories without
that record (sweeps of older versions) the manifest's ``config_hash`` is compared.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import socket
import threading
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from abm_markets.errors import UserError
from abm_markets.runner import check_out_dir, check_seed, resolve
from abm_markets.runs import atomic_write_json, atomic_write_parquet

MAX_TASKS = 10_000
"""Most tasks (grid points x seeds) one sweep may hold; checked from the seed ranges' bounds."""

CONNECT_TIMEOUT_S = 20.0
"""Seconds to reach a Ray cluster given by ``--address`` (TCP probe, then ``ray.init``) before giving up."""

MARKERS = ".sweep"
"""Folder of ``out`` holding one ``TAG.json`` per task: the config hash it was started with, status, error."""

_ERROR_CHARS = 500


# ------------------------------------------------------------------ parsing


def parse_seeds(text: str) -> list[int]:
    """``"0-3"`` -> [0, 1, 2, 3]; ``"1,5,9"`` -> [1, 5, 9].

    Raises:
        UserError: Malformed, negative, an empty range (``5-3``), a seed given twice (``0,0``, ``0-3,2``), or
            more than :data:`MAX_TASKS` seeds (counted from the bounds, before any list is built).
    """
    ranges: list[tuple[int, int]] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if not part:
                continue
            if "-" in part:
                lo, hi = part.split("-", 1)
                ranges.append((int(lo), int(hi)))
            else:
                ranges.append((int(part), int(part)))
    except ValueError:
        raise UserError(f"--seeds {text!r} is invalid; expected e.g. 0-3 or 1,5,9") from None
    if not ranges or min(lo for lo, _ in ranges) < 0:
        raise UserError(f"--seeds {text!r} is invalid; expected nonnegative seeds such as 0-3")
    for lo, hi in ranges:
        check_seed(hi, "--seeds entry")  # the generators' range (lo <= hi, or the next check refuses)
        if hi < lo:
            raise UserError(f"--seeds {text!r}: the range {lo}-{hi} is empty; expected LO-HI with LO <= HI")
    count = sum(hi - lo + 1 for lo, hi in ranges)
    if count > MAX_TASKS:
        raise UserError(f"--seeds {text!r} asks for {count} seeds; a sweep holds at most {MAX_TASKS} tasks")
    ordered = sorted(ranges)
    for (_, a_hi), (b_lo, _) in itertools.pairwise(ordered):
        if b_lo <= a_hi:
            raise UserError(
                f"--seeds {text!r} gives seed {b_lo} twice; each seed may appear once (one run directory per seed)"
            )
    return [s for lo, hi in ranges for s in range(lo, hi + 1)]


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["beta=0.96,0.98", "phi=0.5"]`` -> {"beta": ["0.96", "0.98"], "phi": ["0.5"]}.

    Raises:
        UserError: Malformed, a key given twice, or a value given twice for one key.
    """
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid {item!r} is invalid; expected key=v1,v2,...")
        key, values = item.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        key = key.strip()
        if not key or not vals:
            raise UserError(f"--grid {item!r} is invalid; expected key=v1,v2,...")
        if key in grid:
            raise UserError(f"--grid {key!r} is given twice; expected one --grid per key")
        dup = next((v for i, v in enumerate(vals) if v in vals[:i]), None)
        if dup is not None:
            raise UserError(f"--grid {item!r} gives {dup!r} twice; expected each value once")
        grid[key] = vals
    return grid


def _tag(keys: Sequence[str], combo: Sequence[str], seed: int) -> str:
    point = "-".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True)) or "base"
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", f"{point}-s{seed}")  # a folder name: no separators, no spaces


def plan(
    name: str,
    grid: Mapping[str, list[str]],
    sets: Mapping[str, str],
    seeds: Sequence[int],
    imports: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Every (grid point, seed) as a task description; all configs validated before anything runs."""
    keys = list(grid)
    both = sorted(set(keys) & set(sets))
    if both:
        raise UserError(f"{both[0]!r} is both --set and --grid; expected each setting in one of them")
    n_tasks = len(seeds) * math.prod(len(v) for v in grid.values())
    if n_tasks > MAX_TASKS:
        raise UserError(f"the sweep has {n_tasks} tasks (grid points x seeds); at most {MAX_TASKS}")
    from abm_markets import scenarios

    for spec in imports:
        scenarios.load_module(spec)
    tasks = []
    tags: dict[str, str] = {}
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        overrides = {**sets, **dict(zip(keys, combo, strict=True))}
        _, cfg, _ = resolve(name, overrides, imports)  # raises UserError on a bad key or value
        for seed in seeds:
            tag = _tag(keys, combo, seed)
            if tag in tags:
                raise UserError(f"--grid values {tags[tag]!r} and {combo!r} both make run directory {tag!r}")
            if len(tag.encode()) > 200:
                raise UserError(f"run directory name {tag[:60]!r}... is too long; sweep fewer or shorter values")
            tags[tag] = repr(combo)
            tasks.append({"overrides": overrides, "seed": seed, "tag": tag, "config_hash": cfg.config_hash()})
    return tasks


# ------------------------------------------------------------ run folders


def _load_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _one_line(error: BaseException | str) -> str:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 3] + "..."


def existing_state(out: Path, task: Mapping[str, Any]) -> str:
    """What the sweep does with ``task``'s run directory: ``"skip"`` (complete, same config) or ``"run"``.

    Raises:
        UserError: The directory holds a run of another config (or one that cannot be told apart): the
            sweep neither reuses nor replaces it.
    """
    run_dir = out / task["tag"]
    if not run_dir.exists():
        return "run"
    marker = _load_json(out / MARKERS / f"{task['tag']}.json")
    manifest = _load_json(run_dir / "manifest.json")
    recorded = (marker or {}).get("config_hash") or (manifest or {}).get("config_hash")
    if recorded is None:
        if (run_dir / "summary.json").exists():
            raise UserError(
                f"{str(run_dir)!r} holds a run this sweep cannot check (no manifest.json); use another --out"
            )
        return "run"  # killed before its manifest was written: start it again
    if recorded != task["config_hash"]:
        raise UserError(
            f"{str(run_dir)!r} holds a run of another config (hash {recorded}, this sweep {task['config_hash']}); "
            "use another --out"
        )
    complete = (manifest or {}).get("status") == "complete" and _load_json(run_dir / "summary.json") is not None
    return "skip" if complete else "run"


def _mark_failed(out: Path, task: Mapping[str, Any], error: str) -> None:
    """Record a failed task: its manifest gets ``status = "failed"`` and ``error`` (atomically)."""
    run_dir = out / task["tag"]
    manifest = _load_json(run_dir / "manifest.json") or {"config_hash": task["config_hash"], "seed": task["seed"]}
    atomic_write_json(run_dir / "manifest.json", {**manifest, "status": "failed", "error": error})
    _write_marker(out, task, "failed", error)


def _write_marker(out: Path, task: Mapping[str, Any], status: str, error: str | None = None) -> None:
    record = {"tag": task["tag"], "seed": task["seed"], "config_hash": task["config_hash"], "status": status}
    atomic_write_json(out / MARKERS / f"{task['tag']}.json", {**record, "error": error})


def _row(out: Path, task: Mapping[str, Any], status: str, error: str | None = None) -> dict[str, Any]:
    run_dir = out / task["tag"]
    row: dict[str, Any] = {
        "tag": task["tag"],
        "seed": task["seed"],
        "status": status,
        "error": error,
        "run_dir": str(run_dir),
        "config_hash": task["config_hash"],
        **{f"set.{k}": _typed(v) for k, v in task["overrides"].items()},
    }
    if status != "failed":
        from abm_markets.reports import flatten_summary

        summary = _load_json(run_dir / "summary.json") or {}
        row.update({f"summary.{k}": v for k, v in flatten_summary(summary).items()})
    return row


def _typed(value: Any) -> Any:
    """A setting's value as TOML reads it (``0.5`` a float, ``true`` a bool, ``[1, 2]`` a list); text otherwise."""
    if not isinstance(value, str):
        return value
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _harmonise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One type per index column: ints become floats where a column also holds floats; a column of mixed kinds
    (or of lists and tables) becomes text (JSON for lists and tables)."""
    cols = {k for r in rows for k in r if k.startswith(("set.", "summary."))}
    for col in cols:
        kinds = {type(r[col]) for r in rows if r.get(col) is not None}
        if kinds <= {int, float} and float in kinds:
            for r in rows:
                if isinstance(r.get(col), int):
                    r[col] = float(r[col])
        elif len(kinds) > 1 or kinds & {list, dict}:
            for r in rows:
                v = r.get(col)
                if v is not None and not isinstance(v, str):
                    r[col] = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return rows


def _run_one(name: str, task: dict[str, Any], out: str, device: str, imports: tuple[str, ...] = ()) -> dict[str, Any]:
    """One Ray task: run ``task`` from scratch into ``out/TAG``. Never raises: a failure becomes a row."""
    out_path = Path(out)
    run_dir = out_path / task["tag"]
    try:
        from abm_markets.runner import run_scenario

        if run_dir.exists():  # an interrupted or failed run of this config: start it again from scratch
            shutil.rmtree(run_dir)
        _write_marker(out_path, task, "running")
        run_scenario(
            name,
            overrides=task["overrides"],
            seed=task["seed"],
            out=run_dir,
            device=device,
            progress=False,
            imports=imports,
        )
        _write_marker(out_path, task, "complete")
        return _row(out_path, task, "complete")
    except (Exception, SystemExit) as e:
        error = _one_line(e)
        try:
            _mark_failed(out_path, task, error)
        except Exception as mark_error:  # e.g. the disk is full: the index still says what happened
            error = _one_line(f"{error} (and marking the run failed: {_one_line(mark_error)})")
        return _row(out_path, task, "failed", error)


# -------------------------------------------------------------------- Ray


def _with_timeout(fn: Callable[[], Any], timeout: float) -> tuple[bool, Any, BaseException | None]:
    """Run ``fn`` in a daemon thread; (finished, result, error). A call still running is abandoned."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e

    thread = threading.Thread(target=target, name="abm-markets-ray-connect", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        return False, None, None
    return True, box.get("result"), box.get("error")


def parse_address(address: str) -> tuple[str, int] | None:
    """``host:port`` or ``ray://host[:port]`` -> (host, port); ``auto``/``local`` -> None (Ray resolves them).

    Raises:
        UserError: Anything else.
    """
    text = address.strip()
    if text in ("auto", "local"):
        return None
    bad = UserError(f"--address {address!r} is invalid; expected HOST:PORT, ray://HOST:PORT, auto or local")
    client = text.startswith("ray://")
    rest = text[len("ray://") :] if client else text
    if "://" in rest or "/" in rest or not rest:
        raise bad
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        if not client:
            raise bad
        host, port_text = rest, "10001"  # the Ray Client's default port
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        raise bad from None
    if not host or not 0 < port < 65536:
        raise bad
    return host, port


def _probe(address: str, host: str, port: int, timeout: float) -> None:
    def connect() -> None:
        with socket.create_connection((host, port), timeout=timeout):
            pass

    finished, _, error = _with_timeout(connect, timeout)
    if not finished or isinstance(error, TimeoutError):
        raise UserError(f"--address {address!r}: no answer from {host}:{port} within {timeout:g} s; is the cluster up?")
    if error is not None:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else _one_line(error)
        raise UserError(f"--address {address!r}: cannot reach {host}:{port} ({reason}); is the cluster up?")


def _connect(address: str | None, num_cpus: int | None) -> bool:
    """Start (no ``address``) or join a Ray cluster unless Ray is already up; True when this call started it."""
    import logging

    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if not address:
        ray.init(num_cpus=num_cpus or os.cpu_count() or 1, **kwargs)
        return True
    endpoint = parse_address(address)
    if endpoint is not None:
        _probe(address, *endpoint, CONNECT_TIMEOUT_S)
    # Ray retries an address that accepts but does not answer for minutes: bound it (the thread is abandoned).
    finished, _, error = _with_timeout(lambda: ray.init(address=address, **kwargs), CONNECT_TIMEOUT_S)
    if not finished:
        raise UserError(
            f"--address {address!r}: Ray did not connect within {CONNECT_TIMEOUT_S:g} s; is it a Ray cluster?"
        )
    if error is not None:
        raise UserError(f"--address {address!r}: cannot connect to Ray: {_one_line(error)}")
    return True


def failures(index: pl.DataFrame) -> list[str]:
    """One line per failed run of an index table: ``run TAG failed: ERROR``."""
    if "status" not in index.columns:
        return []
    failed = index.filter(pl.col("status") == "failed")
    return [f"run {row['tag']} failed: {row['error']}" for row in failed.iter_rows(named=True)]


def run_sweep(
    name: str,
    *,
    seeds: Sequence[int],
    grid: Mapping[str, list[str]],
    sets: Mapping[str, str] | None = None,
    out: Path,
    device: str = "cpu",
    address: str | None = None,
    num_cpus: int | None = None,
    imports: tuple[str, ...] = (),
) -> pl.DataFrame:
    """Run the sweep on Ray and return (and write) the index table.

    ``imports``: modules of scenarios outside the package; each Ray task imports them too (paths are passed
    absolute, so tasks on this machine find them). When Ray is already initialized in this process the sweep
    runs on it (``address`` and ``num_cpus`` are then not used) and leaves it up; when no task needs to run
    (all complete), Ray is not started at all.

    Returns:
        The index: one row per task, ``status`` ``"complete"`` (ran now), ``"skipped"`` (complete from an
        earlier call with the same config hash) or ``"failed"`` (``error`` says why, one line).

    Raises:
        UserError: Bad input, a run directory of another config in ``out``, or a cluster that cannot be
            reached; nothing is written then.
    """
    if num_cpus is not None and num_cpus < 1:
        raise UserError(f"--num-cpus {num_cpus} is invalid; expected an int >= 1")
    if address:
        parse_address(address)
    imports = tuple(str(Path(i).resolve()) if i.endswith(".py") else i for i in imports)
    tasks = plan(name, grid, sets or {}, seeds, imports)
    out = Path(out)
    check_out_dir(out, existing="any")
    todo = [t for t in tasks if existing_state(out, t) == "run"]  # raises before anything runs
    todo_tags = {t["tag"] for t in todo}
    rows = {t["tag"]: _row(out, t, "skipped") for t in tasks if t["tag"] not in todo_tags}
    if todo:
        started = _connect(address, num_cpus)
        out.mkdir(parents=True, exist_ok=True)
        import ray

        try:
            remote = ray.remote(num_cpus=1, max_retries=0)(_run_one)
            refs = [remote.remote(name, t, str(out.resolve()), device, imports) for t in todo]
            for task, ref in zip(todo, refs, strict=True):
                try:
                    rows[task["tag"]] = ray.get(ref)
                except ray.exceptions.RayError as e:  # the worker died (or the cluster went away)
                    error = _one_line(f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}")
                    try:
                        _mark_failed(out, task, error)
                    except Exception as mark_error:
                        error = _one_line(f"{error} (and marking the run failed: {_one_line(mark_error)})")
                    rows[task["tag"]] = _row(out, task, "failed", error)
        finally:
            if started:
                ray.shutdown()
    out.mkdir(parents=True, exist_ok=True)
    index = pl.from_dicts(_harmonise([rows[t["tag"]] for t in tasks]), infer_schema_length=None)
    index = index.with_columns(pl.col("status").cast(pl.String), pl.col("error").cast(pl.String))
    atomic_write_parquet(out / "index.parquet", index)
    return index
