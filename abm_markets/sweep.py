"""Sweeps of seeds and parameters as Ray tasks.

``abm-markets sweep NAME --seeds 0-3 --grid beta=0.96,0.98 --out runs/sweep`` runs
one scenario run per (grid point, seed) as a Ray task — on a local Ray by default,
on a cluster with ``--address`` — each into its own run directory under ``out``,
then writes ``out/index.parquet`` with one row per run (settings, seed, run
directory, and the scalar summary figures). Runs already complete in ``out`` are
skipped, so a sweep resumes where it stopped.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from abm_markets.errors import UserError
from abm_markets.runner import resolve
from abm_markets.runs import atomic_write_parquet


def parse_seeds(text: str) -> list[int]:
    """``"0-3"`` -> [0, 1, 2, 3]; ``"1,5,9"`` -> [1, 5, 9]."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-", 1)
                seeds.extend(range(int(lo), int(hi) + 1))
            elif part:
                seeds.append(int(part))
    except ValueError:
        raise UserError(f"--seeds {text!r} is invalid; expected e.g. 0-3 or 1,5,9") from None
    if not seeds or min(seeds) < 0:
        raise UserError(f"--seeds {text!r} is invalid; expected nonnegative seeds such as 0-3")
    return seeds


def parse_grid(items: Sequence[str]) -> dict[str, list[str]]:
    """``["beta=0.96,0.98", "phi=0.5"]`` -> {"beta": ["0.96", "0.98"], "phi": ["0.5"]}."""
    grid: dict[str, list[str]] = {}
    for item in items:
        if "=" not in item:
            raise UserError(f"--grid {item!r} is invalid; expected key=v1,v2,...")
        key, values = item.split("=", 1)
        vals = [v for v in values.split(",") if v.strip()]
        if not key.strip() or not vals:
            raise UserError(f"--grid {item!r} is invalid; expected key=v1,v2,...")
        grid[key.strip()] = vals
    return grid


def plan(
    name: str,
    grid: Mapping[str, list[str]],
    sets: Mapping[str, str],
    seeds: Sequence[int],
    imports: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """Every (grid point, seed) as a task description; all configs validated before anything runs."""
    keys = list(grid)
    from abm_markets import scenarios

    for spec in imports:
        scenarios.load_module(spec)
    tasks = []
    for combo in itertools.product(*(grid[k] for k in keys)) if keys else [()]:
        overrides = {**sets, **dict(zip(keys, combo, strict=True))}
        _, cfg, _ = resolve(name, overrides, imports)  # raises UserError on a bad key or value
        for seed in seeds:
            tag = "-".join(f"{k}={v}" for k, v in zip(keys, combo, strict=True)) or "base"
            tasks.append(
                {"overrides": overrides, "seed": seed, "tag": f"{tag}-s{seed}", "config_hash": cfg.config_hash()}
            )
    return tasks


def _run_one(name: str, task: dict[str, Any], out: str, device: str, imports: tuple[str, ...] = ()) -> dict[str, Any]:
    from abm_markets.runner import run_scenario

    run_dir = Path(out) / task["tag"]
    summary_path = run_dir / "summary.json"
    if not summary_path.exists():
        if run_dir.exists():  # an interrupted run: start it again from scratch
            import shutil

            shutil.rmtree(run_dir)
        run_scenario(
            name,
            overrides=task["overrides"],
            seed=task["seed"],
            out=run_dir,
            device=device,
            progress=False,
            imports=imports,
        )
    summary = json.loads(summary_path.read_text())
    scalars = {f"summary.{k}": v for k, v in summary.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {
        "tag": task["tag"],
        "seed": task["seed"],
        "run_dir": str(run_dir),
        "config_hash": task["config_hash"],
        **{f"set.{k}": str(v) for k, v in task["overrides"].items()},
        **scalars,
    }


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
    absolute, so tasks on this machine find them).
    """
    imports = tuple(str(Path(i).resolve()) if i.endswith(".py") else i for i in imports)
    tasks = plan(name, grid, sets or {}, seeds, imports)
    out.mkdir(parents=True, exist_ok=True)
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if address:
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = num_cpus or os.cpu_count() or 1
        ray.init(**kwargs)
        started = True
    try:
        remote = ray.remote(num_cpus=1)(_run_one)
        rows = ray.get([remote.remote(name, t, str(out.resolve()), device, imports) for t in tasks])
    finally:
        if started:
            ray.shutdown()
    index = pl.DataFrame(rows)
    atomic_write_parquet(out / "index.parquet", index)
    return index
