"""Run a registered scenario into a run directory.

All user input (scenario name, ``--set`` overrides, preset file, seed, device,
output folder) is validated before anything is written.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from abm_markets import scenarios
from abm_markets.config import Config
from abm_markets.errors import UserError
from abm_markets.runs import RunContext, atomic_write_json, atomic_write_toml, resolve_device, write_manifest

DECLARED_SCENARIO = "train-economy"
"""The scenario that runs a TOML file holding an ``[economy]`` declaration."""


@dataclass(frozen=True)
class Preset:
    """A scenario preset file: ``scenario = "name"``, optional ``seed``, a ``[settings]`` table, and, for a
    declared economy, an ``[economy]`` table (then ``scenario`` defaults to ``train-economy``)."""

    scenario: str
    settings: dict[str, Any]
    seed: int | None
    economy: dict[str, Any] | None = None
    path: Path | None = None


def load_preset(path: Path) -> Preset:
    """Read a preset TOML file; errors name the file and what is wrong."""
    try:
        data = tomllib.loads(path.read_text())
    except OSError as e:
        raise UserError(f"cannot read preset {str(path)!r}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"preset {str(path)!r} is not valid TOML: {e}") from None
    economy = data.get("economy")
    if economy is not None and not isinstance(economy, dict):
        raise UserError(f"preset {str(path)!r}: economy must be a table ([economy]); got {economy!r}")
    scenario = data.get("scenario", DECLARED_SCENARIO if economy is not None else None)
    if not isinstance(scenario, str):
        raise UserError(f'preset {str(path)!r} needs a top-level key scenario = "NAME" or an [economy] table')
    extra = set(data) - {"scenario", "settings", "seed", "description", "economy"}
    if extra:
        raise UserError(
            f"preset {str(path)!r} has unknown top-level keys {sorted(extra)}; "
            "valid: scenario, seed, settings, description, economy"
        )
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise UserError(f"preset {str(path)!r}: settings must be a table ([settings]); got {settings!r}")
    seed = data.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise UserError(f"preset {str(path)!r}: seed = {seed!r} is invalid; expected an int >= 0")
    return Preset(scenario=scenario, settings=dict(settings), seed=seed, economy=economy, path=path)


def resolve(
    name: str, overrides: Mapping[str, Any], imports: tuple[str, ...] = ()
) -> tuple[scenarios.Scenario, Config, int | None]:
    """Resolve a scenario name or preset path plus overrides into (scenario, config, preset seed).

    Args:
        name: A scenario name, or a ``.toml`` preset (which may declare an economy).
        overrides: ``--set`` values.
        imports: Modules of scenarios/economies outside the package (:func:`abm_markets.scenarios.load_module`).
    """
    for spec in imports:
        scenarios.load_module(spec)
    preset_seed = None
    settings: dict[str, Any] = {}
    if name.endswith(".toml"):
        path = Path(name)
        preset = load_preset(path)
        name, settings, preset_seed = preset.scenario, preset.settings, preset.seed
        if preset.economy is not None:  # the declared-economy scenario reads the [economy] table of this file
            settings = {**settings, "economy": str(path.resolve())}
    scen = scenarios.get(name)
    cfg = scen.config.from_overrides(settings)
    cfg = scen.config.from_overrides(dict(overrides), base=cfg)
    check = getattr(cfg, "check", None)
    if callable(check):  # validation that needs more than the config's own fields (e.g. build the economy)
        check()
    return scen, cfg, preset_seed


def run_scenario(
    name: str,
    *,
    overrides: Mapping[str, Any] | None = None,
    seed: int | None = None,
    out: Path | None = None,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    imports: tuple[str, ...] = (),
) -> Path:
    """Run scenario ``name`` (or a preset ``.toml``) and return its run directory.

    ``imports`` are modules of scenarios or economies outside the package; the run records the module its
    scenario came from in ``config.toml`` (``[run] imports``), so ``--resume`` and sweeps import it again.
    """
    scen, cfg, preset_seed = resolve(name, overrides or {}, imports)
    if seed is None:
        seed = preset_seed if preset_seed is not None else scen.default_seed
    if seed < 0:
        raise UserError(f"--seed {seed} is invalid; expected an int >= 0")
    dev = resolve_device(device)
    if out is None:
        out = Path("runs") / f"{scen.name}-{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
    out = Path(out)
    if resume:
        if not (out / "config.toml").exists():
            raise UserError(f"--resume: {str(out)!r} is not a run directory (no config.toml)")
    elif out.exists() and any(out.iterdir()):
        raise UserError(
            f"run directory {str(out)!r} exists and is not empty; pass --resume to continue it or another --out"
        )

    out.mkdir(parents=True, exist_ok=True)
    ctx = RunContext(out=out, seed=seed, device=dev, resume=resume, progress_enabled=progress)
    run_table: dict[str, Any] = {"scenario": scen.name, "seed": seed, "device": str(dev)}
    if scen.source is not None:
        run_table["imports"] = [scen.source]
    prepare = getattr(cfg, "prepare_run", None)
    if callable(prepare) and not resume:  # e.g. copy a declared economy into the run directory
        cfg = prepare(out)
    atomic_write_toml(out / "config.toml", {"run": run_table, "scenario": cfg.to_dict()})
    write_manifest(
        out, scenario=scen.name, config_hash=cfg.config_hash(), seed=seed, device=dev, wall_s=None, status="running"
    )
    torch.manual_seed(seed)  # belt and braces: scenarios use explicit generators from ctx
    t0 = time.perf_counter()
    summary = scen.run(cfg, ctx)
    wall = time.perf_counter() - t0
    ctx.flush_metrics()
    summary = {"scenario": scen.name, "seed": seed, **summary, "wall_s": summary.get("wall_s", wall)}
    atomic_write_json(out / "summary.json", summary)
    write_manifest(
        out, scenario=scen.name, config_hash=cfg.config_hash(), seed=seed, device=dev, wall_s=wall, status="complete"
    )
    return out
