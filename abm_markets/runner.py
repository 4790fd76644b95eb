"""Run a registered scenario into a run directory.

All user input (scenario name, ``--set`` overrides, preset file, seed, device,
output folder, memory the settings need, and on ``--resume`` the run directory's
config and checkpoint) is validated before anything is written. A run directory
has one owner at a time (:class:`~abm_markets.runs.RunLock`).
"""

from __future__ import annotations

import json
import os
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from abm_markets import scenarios
from abm_markets.config import Config
from abm_markets.errors import ConfigError, TrainingDiverged, UserError
from abm_markets.runs import (
    RunContext,
    RunLock,
    atomic_write_json,
    atomic_write_toml,
    latest_checkpoint_path,
    load_checkpoint,
    resolve_device,
    write_manifest,
)

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


def read_toml(path: Path, what: str, expected: str) -> dict[str, Any]:
    """Parse a TOML file; every failure is one :class:`UserError` naming ``what`` and what is ``expected``."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"cannot read {what}: {e.strerror or type(e).__name__}; expected {expected}") from None
    except UnicodeDecodeError:
        raise UserError(f"{what} is not UTF-8 text; expected {expected}") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{what} is not valid TOML ({e}); expected {expected}") from None


def load_preset(path: Path) -> Preset:
    """Read a preset TOML file; errors name the file and what is wrong."""
    data = read_toml(path, f"preset {str(path)!r}", "a TOML preset file")
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
    if seed is not None:
        check_seed(seed, f"preset {str(path)!r}: seed")
    return Preset(scenario=scenario, settings=dict(settings), seed=seed, economy=economy, path=path)


SEED_LIMIT = 2**63
"""Seeds are ints in ``[0, 2**63)``: torch generators take < 2**64 and scenarios add small offsets to the seed."""

RESUME_ALLOWED = frozenset(
    {"iterations", "train_iterations", "max_wall_s", "train_max_wall_s", "checkpoint_every", "torch_threads", "threads"}
)
"""Settings ``--resume`` may change: they extend or pace a run without changing what it computes."""

RESUME_EXTEND_ONLY = frozenset({"iterations", "train_iterations"})
"""Of :data:`RESUME_ALLOWED`, the ones that may only grow (a run cannot be un-trained)."""

_PATH_MAX_MARGIN = 64  # room for the longest file a run writes under its directory (checkpoints/iter000001.pt ...)


def check_seed(seed: Any, what: str = "--seed") -> int:
    """Return ``seed`` if it is an int in ``[0, 2**63)``, else raise a one-line :class:`UserError`."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        sep = " " if what.startswith("--") else " = "
        raise UserError(f"{what}{sep}{seed!r} is invalid; expected an int with 0 <= seed < 2**63")
    return seed


def check_out_dir(out: Path, *, existing: str = "empty") -> None:
    """Check that ``out`` can be (or is) a run directory this process can write, without creating anything.

    Args:
        out: The folder.
        existing: ``"empty"``: an existing folder must be empty (a new run); ``"run"``: it must exist (resume);
            ``"any"``: it may exist with contents (a sweep folder).

    Raises:
        UserError: ``out`` is a file or device, lies under a file, is not writable, is too long for the file
            system, or (``existing="empty"``) is a non-empty folder.
    """
    text = str(out)
    if not text or "\x00" in text:
        raise UserError(f"output folder {text!r} is invalid; expected a folder path")
    path = Path(os.path.abspath(out))
    raw = os.fsencode(path)
    try:
        name_max = os.pathconf("/", "PC_NAME_MAX")
        path_max = os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError, AttributeError):
        name_max, path_max = 255, 4096
    long_part = next((part for part in path.parts if len(os.fsencode(part)) > name_max), None)
    if long_part is not None or len(raw) + _PATH_MAX_MARGIN > path_max:
        what = f"has a name of {len(os.fsencode(long_part))} bytes" if long_part is not None else "is too long"
        raise UserError(
            f"output folder {text[:80]!r}... {what}; expected names <= {name_max} bytes and a path below "
            f"{path_max - _PATH_MAX_MARGIN} bytes"
            if len(text) > 80
            else f"output folder {text!r} {what}; expected names <= {name_max} bytes"
        )
    if path.exists():
        if not path.is_dir():
            kind = "a file" if path.is_file() else "not a folder (a device or special file)"
            raise UserError(f"output folder {text!r} is {kind}; expected a folder (new or empty) or another --out")
        if existing == "empty":
            try:
                nonempty = any(path.iterdir())
            except OSError as e:
                raise UserError(
                    f"cannot read output folder {text!r}: {e.strerror}; expected a readable folder"
                ) from None
            if nonempty:
                raise UserError(
                    f"run directory {text!r} exists and is not empty; pass --resume to continue it or another --out"
                )
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"output folder {text!r} is not writable; expected a folder you can write to")
        return
    if path.is_symlink():
        raise UserError(f"output folder {text!r} is a broken symbolic link; expected a folder or a new path")
    if existing == "run":
        raise UserError(f"run directory {text!r} does not exist; expected a run directory (with config.toml)")
    parent = path.parent
    while not parent.exists():
        if parent.is_symlink():
            raise UserError(f"output folder {text!r} lies under a broken symbolic link {str(parent)!r}")
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(
            f"output folder {text!r} lies under {str(parent)!r}, which is not a folder; expected a path of folders"
        )
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"output folder {text!r} cannot be created: {str(parent)!r} is not writable")


@dataclass(frozen=True)
class SavedRun:
    """What a run directory's ``config.toml`` records: scenario, seed, settings and imports."""

    out: Path
    scenario: str
    seed: int
    settings: dict[str, Any]
    imports: tuple[str, ...]
    device: str | None = None
    manifest: dict[str, Any] = field(default_factory=dict)


def read_run_dir(out: Path, flag: str = "--resume") -> SavedRun:
    """Read a run directory's ``config.toml`` (and ``manifest.json`` if readable); one-line errors naming ``flag``
    (the argument the folder came from).

    Raises:
        UserError: ``out`` is not a run directory, or its config.toml is missing, a folder, unreadable, not
            UTF-8, not TOML, lacks ``[run]``, or records a mistyped scenario, seed, settings or imports.
    """
    where = f"{flag} {str(out)!r}"
    if not out.is_dir():
        raise UserError(f"{where} is not a run directory ({'not a folder' if out.exists() else 'no such folder'})")
    cfg_path = out / "config.toml"
    if not cfg_path.exists():
        raise UserError(f"{where} is not a run directory (no config.toml)")
    if not cfg_path.is_file():
        raise UserError(f"{where}: config.toml is not a file; expected the run's TOML config")
    saved = read_toml(cfg_path, f"{where}: config.toml", "the run's TOML config")
    run = saved.get("run")
    if not isinstance(run, dict):
        raise UserError(f"{where}: config.toml has no [run] table; expected [run] with scenario and seed")
    name = run.get("scenario")
    if not isinstance(name, str) or not name:
        raise UserError(f"{where}: config.toml [run] scenario = {name!r} is invalid; expected a scenario name")
    seed = run.get("seed")
    check_seed(seed, f"{where}: config.toml [run] seed")
    settings = saved.get("scenario", {})
    if not isinstance(settings, dict):
        raise UserError(f"{where}: config.toml [scenario] is {settings!r}; expected a table of settings")
    imports = run.get("imports", [])
    if not isinstance(imports, list) or not all(isinstance(i, str) and i for i in imports):
        raise UserError(f"{where}: config.toml [run] imports = {imports!r} is invalid; expected a list of modules")
    device = run.get("device")
    manifest: dict[str, Any] = {}
    try:
        loaded = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        manifest = loaded if isinstance(loaded, dict) else {}
    except (OSError, ValueError):
        pass
    return SavedRun(
        out=out,
        scenario=name,
        seed=seed,
        settings=dict(settings),
        imports=tuple(imports),
        device=device if isinstance(device, str) else None,
        manifest=manifest,
    )


@dataclass(frozen=True)
class ResumePlan:
    """What ``run --resume`` will do: the resolved arguments of :func:`run_scenario`, or nothing (complete)."""

    name: str
    overrides: dict[str, Any]
    seed: int
    imports: tuple[str, ...]
    complete: bool


def plan_resume(
    out: Path,
    *,
    sets: Mapping[str, Any] | None = None,
    seed: int | None = None,
    name: str | None = None,
    imports: tuple[str, ...] = (),
) -> ResumePlan:
    """Validate a resume of run directory ``out`` and say what it will do; nothing is written.

    ``--seed`` must equal the saved seed and ``--set`` may only change :data:`RESUME_ALLOWED` settings
    (``iterations``/``train_iterations`` only upwards). ``complete`` is True when the run is complete and the
    settings are unchanged (nothing to do).

    Raises:
        UserError: a bad run directory, a conflicting option, or a bad checkpoint (one line).
    """
    saved = read_run_dir(out)
    if name is not None and name != saved.scenario:
        raise UserError(f"--resume {str(out)!r} holds a {saved.scenario!r} run, not {name!r}")
    if seed is not None and seed != saved.seed:
        raise UserError(
            f"--seed {seed} conflicts with the run's seed {saved.seed} ({str(out)!r}); expected no --seed or "
            f"--seed {saved.seed} with --resume (start a new run for another seed)"
        )
    imports = saved.imports + tuple(i for i in imports if i not in saved.imports)
    base: dict[str, Any] = dict(saved.settings)
    economy = base.get("economy")
    if isinstance(economy, str) and economy and not Path(economy).is_absolute():
        base["economy"] = str(out / economy)  # a declared economy copied into the run directory
    for spec in imports:
        scenarios.load_module(spec)
    scen = scenarios.get(saved.scenario)
    try:
        old = scen.config.from_overrides(base)
    except ConfigError as e:
        raise UserError(f"--resume {str(out)!r}: config.toml [scenario] is invalid: {e}") from None
    new = scen.config.from_overrides(dict(sets or {}), base=old)
    for f in type(old).__dataclass_fields__:
        a, b = getattr(old, f), getattr(new, f)
        if a == b:
            continue
        if f not in RESUME_ALLOWED:
            allowed = ", ".join(sorted(RESUME_ALLOWED & set(type(old).__dataclass_fields__))) or "none"
            raise UserError(
                f"--set {f}={b!r} would change what the run in {str(out)!r} is ({f} = {a!r}); "
                f"expected only settings that extend it ({allowed}); start a new run instead"
            )
        if f in RESUME_EXTEND_ONLY and isinstance(a, int) and isinstance(b, int) and b < a:
            raise UserError(f"--set {f}={b} is below the run's {f} = {a}; expected {f} >= {a} with --resume")
    check = getattr(new, "check", None)
    if callable(check):
        check()
    complete = saved.manifest.get("status") == "complete" and new == old and (out / "summary.json").is_file()
    if not complete:
        ckpt = latest_checkpoint_path(out)
        if ckpt is not None:
            load_checkpoint(ckpt, out)
    return ResumePlan(
        name=saved.scenario,
        overrides={**base, **dict(sets or {})},
        seed=saved.seed,
        imports=imports,
        complete=complete,
    )


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
    check_seed(seed)
    dev = resolve_device(device)
    if out is None:
        out = Path("runs") / f"{scen.name}-{time.strftime('%Y%m%d-%H%M%S')}-s{seed}"
    out = Path(out)
    check_out_dir(out, existing="run" if resume else "empty")
    was_complete = False
    if resume:
        saved = read_run_dir(out)
        was_complete = saved.manifest.get("status") == "complete"
        ckpt = latest_checkpoint_path(out)
        if ckpt is not None:
            load_checkpoint(ckpt, out)  # a bad checkpoint: one line naming the one to fall back on

    out.mkdir(parents=True, exist_ok=True)
    with RunLock(out):
        if not resume and any(p.name != ".lock" for p in out.iterdir()):  # another process got here first
            raise UserError(
                f"run directory {str(out)!r} exists and is not empty; pass --resume to continue it or another --out"
            )
        ctx = RunContext(out=out, seed=seed, device=dev, resume=resume, progress_enabled=progress)
        run_table: dict[str, Any] = {"scenario": scen.name, "seed": seed, "device": str(dev)}
        if scen.source is not None:
            run_table["imports"] = [scen.source]
        prepare = getattr(cfg, "prepare_run", None)
        if callable(prepare) and not resume:  # e.g. copy a declared economy into the run directory
            cfg = prepare(out)

        def manifest(status: str, wall_s: float | None) -> None:
            write_manifest(
                out,
                scenario=scen.name,
                config_hash=cfg.config_hash(),
                seed=seed,
                device=dev,
                wall_s=wall_s,
                status=status,
            )

        if not was_complete:  # a resumed complete run keeps its config and manifest until the extension completes
            atomic_write_toml(out / "config.toml", {"run": run_table, "scenario": cfg.to_dict()})
            manifest("running", None)
        torch.manual_seed(seed)  # belt and braces: scenarios use explicit generators from ctx
        t0 = time.perf_counter()
        try:
            summary = scen.run(cfg, ctx)
        except TrainingDiverged:
            ctx.flush_metrics()
            if not was_complete:  # the run stops at its last good checkpoint; the manifest says why
                manifest("diverged", time.perf_counter() - t0)
            raise
        wall = time.perf_counter() - t0
        ctx.flush_metrics()
        summary = {"scenario": scen.name, "seed": seed, **summary, "wall_s": summary.get("wall_s", wall)}
        atomic_write_json(out / "summary.json", summary)
        if was_complete:
            atomic_write_toml(out / "config.toml", {"run": run_table, "scenario": cfg.to_dict()})
        manifest("complete", wall)
    return out
