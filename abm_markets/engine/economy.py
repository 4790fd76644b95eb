"""Declaring economies: agent groups, goods, markets, shocks and information structure.

An economy is declared, not coded: :class:`EconomySpec` lists who acts, what is
traded where, which shocks move, and what each group observes. The spec is
checked when built (a good with no producer, a market nobody trades in, or an
observation block the economy does not produce is rejected), and registered
under a versioned id (``InvestmentPlanner-v1``); changing dynamics, observations
or rewards bumps the version and adds a line to ``history``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from abm_markets.errors import ConfigError, unknown

OBSERVATION_BLOCKS = (
    "own_capital",
    "own_tfp",
    "agg_capital",
    "agg_tfp",
    "all_capital",
    "all_tfp",
    "prices",
    "time",
    "nbr_capital",
)
"""Observation blocks the investment economy produces (its information-structure vocabulary); ``nbr_capital``
only in the bilateral market, whose network defines the neighbours."""


@dataclass(frozen=True)
class AgentGroup:
    """A group of agents that share a role (and, by default, a policy).

    Attributes:
        name: ``households``, ``firms``, ``planner``, ...
        count: Number of agents in the group (per economy).
        action: Description of one agent's action (shape and meaning).
        observes: Observation blocks (information structure).
        reward: What the agent maximises.
    """

    name: str
    count: int
    action: str
    observes: tuple[str, ...]
    reward: str


@dataclass(frozen=True)
class Good:
    """A traded good: who produces it, who buys it, in which market."""

    name: str
    producer: str
    buyer: str
    market: str


@dataclass(frozen=True)
class EconomySpec:
    """Declaration of an economy; validated at construction."""

    id: str
    groups: tuple[AgentGroup, ...]
    goods: tuple[Good, ...]
    markets: tuple[str, ...]
    shocks: tuple[str, ...]
    observation_blocks: tuple[str, ...] = OBSERVATION_BLOCKS
    history: tuple[str, ...] = field(default=())
    logged: tuple[Any, ...] = field(default=())
    """Logged quantities (:class:`~abm_markets.engine.protocol.LoggedVariable`)."""

    def __post_init__(self) -> None:
        names = {g.name for g in self.groups}
        producers = names | {"pool"}
        for good in self.goods:
            if good.producer not in producers:
                raise ConfigError(
                    f"economy {self.id}: good {good.name!r} is produced by {good.producer!r}, which is not a group"
                )
            if good.buyer not in names:
                raise ConfigError(
                    f"economy {self.id}: good {good.name!r} is bought by {good.buyer!r}, which is not a group"
                )
            if good.market not in self.markets:
                raise ConfigError(
                    f"economy {self.id}: good {good.name!r} trades in {good.market!r}, not one of {self.markets}"
                )
        for m in self.markets:
            if not any(g.market == m for g in self.goods):
                raise ConfigError(f"economy {self.id}: market {m!r} trades no good")
        for g in self.groups:
            for block in g.observes:
                if block not in self.observation_blocks:
                    raise ConfigError(f"economy {self.id}: group {g.name!r} observes {block!r}, which nothing produces")

    def group(self, name: str) -> AgentGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise unknown("agent group", name, [g.name for g in self.groups])


_ECONOMIES: dict[str, Callable[..., Any]] = {}

BUILTIN_ECONOMIES = {
    "InvestmentPlanner-v1": "abm_markets.engine.investment",
    "InvestmentMarket-v1": "abm_markets.engine.investment",
    "LogitDuopoly-v1": "abm_markets.engine.pricing",
}
"""Built-in ids and the module that registers each (imported on first use, like Gymnasium's entry points)."""


def register_economy(env_id: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register an economy factory ``factory(cfg, **kwargs)`` under a versioned id."""

    def deco(factory: Callable[..., Any]) -> Callable[..., Any]:
        _ECONOMIES[env_id] = factory
        return factory

    return deco


def _load_economies() -> None:
    """Import the modules that register the built-in economies."""
    import importlib

    for module in sorted(set(BUILTIN_ECONOMIES.values())):
        importlib.import_module(module)
    from importlib.metadata import entry_points

    for ep in entry_points(group="abm_markets.economies"):  # economies of other installed packages
        importlib.import_module(ep.value.split(":")[0])


def make_economy(env_id: str, cfg: Any = None, **kwargs: Any) -> Any:
    """Build a registered economy by id (unknown ids suggest close ones); ``cfg = None`` takes its defaults."""
    _load_economies()

    if env_id not in _ECONOMIES:
        raise unknown("economy", env_id, _ECONOMIES)
    return _ECONOMIES[env_id](cfg, **kwargs)


def economy_ids() -> list[str]:
    _load_economies()

    return sorted(_ECONOMIES)
