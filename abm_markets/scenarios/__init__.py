"""Registry of named scenarios.

A scenario is a function ``run(cfg, ctx) -> summary`` with a config class and a
one-line description, registered under a plain, stable name::

    @register("investment-planner", config=PlannerScenarioConfig,
              description="Stochastic planner economy under the DP-optimal policy")
    def run(cfg: PlannerScenarioConfig, ctx: RunContext) -> dict[str, Any]:
        ...

Every module in this package is imported on first lookup, so adding a scenario
is adding a module. Modules must import heavy dependencies (tianshou, ray, mesa)
inside ``run``, not at import time, so ``abm-markets list`` stays fast.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from abm_markets.config import Config
from abm_markets.errors import unknown

__all__ = ["Scenario", "all_scenarios", "get", "register"]


@dataclass(frozen=True)
class Scenario:
    """A registered scenario."""

    name: str
    description: str
    config: type[Config]
    run: Callable[..., dict[str, Any]]
    default_seed: int = 0


_REGISTRY: dict[str, Scenario] = {}
_LOADED = False


def register(
    name: str, *, config: type[Config], description: str, default_seed: int = 0
) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Decorator registering ``run(cfg, ctx) -> summary`` under ``name``."""

    def deco(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        if name in _REGISTRY and _REGISTRY[name].run is not fn:
            raise RuntimeError(f"scenario {name!r} registered twice")
        _REGISTRY[name] = Scenario(name=name, description=description, config=config, run=fn, default_seed=default_seed)
        return fn

    return deco


def _load_all() -> None:
    global _LOADED
    if _LOADED:
        return
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")
    _LOADED = True


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
