"""Registry of named scenarios.

A scenario is a function ``run(cfg, ctx) -> summary`` with a config class and a
one-line description, registered under a plain, stable name::

    @register("investment-planner", config=PlannerScenarioConfig,
              description="Stochastic planner economy under the DP-optimal policy",
              expected_wall_s=62.1, expected_wall_source="one default run, 1 thread, 2026-11-29")
    def run(cfg: PlannerScenarioConfig, ctx: RunContext) -> dict[str, Any]:
        ...

``expected_wall_s`` is the measured wall time of a default run on the reference machine (2 CPU cores) and
``expected_wall_source`` says where the figure comes from (``abm-markets show NAME`` prints both): the
``wall_s`` of a run's ``manifest.json``, or a figure in docs/ for runs too long to repeat. "1 thread" means
torch and numba on one thread (``OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1``): the two cores were shared with
other jobs, and there the default two threads oversubscribe them and ran up to 6x slower (``huggett-pe-srl``:
200 s with two threads against 33 s with one, the same day).

Every module in this package is imported on first lookup, so adding a scenario
is adding a module. Modules must import heavy dependencies (tianshou, ray, mesa)
inside ``run``, not at import time, so ``abm-markets list`` stays fast.

Scenarios (and economies) outside the package are found two ways:

* **entry points**: an installed distribution that declares
  ``[project.entry-points."abm_markets.scenarios"] my_study = "mypkg.studies"``
  has that module imported on first lookup;
* **an explicit module**: ``abm-markets run --import mypkg.studies my-scenario`` or
  ``--import path/to/study.py`` (:func:`load_module`). A run directory records the
  module its scenario came from, so ``--resume`` and sweeps find it again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from abm_markets.config import Config
from abm_markets.errors import UserError, unknown

__all__ = ["Scenario", "all_scenarios", "get", "load_module", "register"]

ENTRY_POINT_GROUPS = ("abm_markets.scenarios", "abm_markets.economies")
"""Entry-point groups whose modules are imported on first lookup (scenarios and economies of other packages)."""


@dataclass(frozen=True)
class Scenario:
    """A registered scenario.

    Attributes:
        source: The module it came from when it is not part of this package (a module name or an absolute
            ``.py`` path, as :func:`load_module` takes it), else None.
        expected_wall_s: Measured wall time (seconds) of a run with the default settings on 2 CPU cores, or
            None when not measured.
        expected_wall_source: Where ``expected_wall_s`` comes from (which runs, how many, under what load).
    """

    name: str
    description: str
    config: type[Config]
    run: Callable[..., dict[str, Any]]
    default_seed: int = 0
    source: str | None = None
    expected_wall_s: float | None = None
    expected_wall_source: str = ""

    def expected_time(self) -> str:
        """``~N s``, ``~N min`` or ``~N h`` with its source, or ``not measured``."""
        s = self.expected_wall_s
        if s is None:
            return "not measured"
        if s < 90:
            text = f"~{max(1, round(s, -1 if s >= 20 else 0)):.0f} s"
        elif s < 90 * 60:
            text = f"~{round(s / 60):.0f} min"
        else:
            text = f"~{s / 3600:.1f} h"
        return f"{text} ({self.expected_wall_source})" if self.expected_wall_source else text


_REGISTRY: dict[str, Scenario] = {}
_LOADED = False
_LOADING: list[str] = []  # the external module being imported (its scenarios record it as their source)
_MODULES: dict[str, Any] = {}


def register(
    name: str,
    *,
    config: type[Config],
    description: str,
    default_seed: int = 0,
    expected_wall_s: float | None = None,
    expected_wall_source: str = "",
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Decorator registering ``run(cfg, ctx) -> summary`` under ``name`` (fields: :class:`Scenario`)."""

    def deco(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        old = _REGISTRY.get(name)
        if old is not None and (old.run.__module__, old.run.__qualname__) != (fn.__module__, fn.__qualname__):
            raise UserError(
                f"scenario {name!r} is registered twice ({old.run.__module__} and {fn.__module__}); "
                "expected one definition per name"
            )
        source = _LOADING[-1] if _LOADING else None
        _REGISTRY[name] = Scenario(
            name=name,
            description=description,
            config=config,
            run=fn,
            default_seed=default_seed,
            source=source,
            expected_wall_s=expected_wall_s,
            expected_wall_source=expected_wall_source,
        )
        return fn

    return deco


def load_module(spec: str) -> Any:
    """Import a module of scenarios or economies from outside the package.

    Args:
        spec: A module name (``mypkg.studies``) or a path to a ``.py`` file (relative paths are taken from the
            working directory and recorded absolute).

    Returns:
        The module. Importing the same spec twice returns the first import.

    Raises:
        UserError: The module cannot be found or fails to import (one line naming it and the error).
    """
    key = str(Path(spec).resolve()) if spec.endswith(".py") else spec
    if key in _MODULES:
        return _MODULES[key]
    _load_all()
    _LOADING.append(key)
    try:
        if spec.endswith(".py"):
            path = Path(key)
            if not path.is_file():
                raise UserError(f"--import {spec!r}: no such file; expected a .py file or a module name")
            name = "abm_markets_user_" + hashlib.sha1(key.encode()).hexdigest()[:12]
            mod_spec = importlib.util.spec_from_file_location(name, path)
            if mod_spec is None or mod_spec.loader is None:
                raise UserError(f"--import {spec!r}: cannot load this file as a Python module")
            module = importlib.util.module_from_spec(mod_spec)
            sys.modules[name] = module
            mod_spec.loader.exec_module(module)
        else:
            module = importlib.import_module(spec)
    except UserError:
        raise
    except ModuleNotFoundError as e:
        raise UserError(
            f"--import {spec!r}: module not found ({e.name}); expected an importable module or a .py file"
        ) from None
    except Exception as e:  # the user's module failed: one line, not its traceback
        raise UserError(f"--import {spec!r} failed: {type(e).__name__}: {e}") from None
    finally:
        _LOADING.pop()
    _MODULES[key] = module
    return module


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    for group in ENTRY_POINT_GROUPS:
        for ep in entry_points(group=group):
            load_module(ep.value.split(":")[0])


def all_scenarios() -> list[Scenario]:
    """All registered scenarios, sorted by name."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get(name: str) -> Scenario:
    """Look a scenario up by name; unknown names raise a :class:`UserError` with suggestions."""
    _load_all()
    if name not in _REGISTRY:
        raise unknown("scenario", name, _REGISTRY)
    return _REGISTRY[name]
