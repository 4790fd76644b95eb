"""The economy protocol: one batched multi-agent interface that every learner and front end consumes.

An economy is a set of **decision groups** (households, firms, a planner acting for all households, ...) and
two pure functions over a frozen state of tensors with a leading batch dimension ``B``:

* ``initial_state(batch_size, generator) -> state``;
* ``step(state, actions, generator) -> (next_state, outcome)``, with ``actions = {key: [B, n, *shape]}`` for
  each action key the economy needs (:attr:`BatchedEconomy.action_keys`).

Around them the protocol fixes what learners and front ends read, so none of them imports a concrete economy:

* ``groups``: the :class:`DecisionGroup` declarations (slots per economy, the action key a slot fills, the
  agents one slot decides for, observation blocks with sizes and bounds, the action space in the economy's
  units, the size of an unbounded policy output, or a number of discrete actions);
* ``observe(state, group) -> [B, n, D]``: the group's observation under the economy's
  :class:`InformationStructure` (blocks per group and per subgroup: "half the households fully informed" is
  one line);
* ``decode(group, raw, state, center=..., shift=...)``: the economy's own parametrisation from an unbounded
  policy output ``u [B, n, raw_dim]`` (or a discrete index) to its action in economy units;
* ``rewards(outcome) -> {group: [B, n]}``; ``global_state(state) -> [B, G]`` (centralised critics);
* ``logged(state, outcome) -> {name: [B, ...]}``: the logged quantities declared in ``spec.logged``;
* ``training_state(batch_size, generator, spread)``: initial states for training (by default
  ``initial_state``; an economy may spread its states around a reference point);
* ``agent_names(group)``: names of the agents of a group in the front ends (``household_0`` ...).

Helpers for any state: :func:`state_fields`, :func:`state_from_fields`, :func:`where_state`,
:func:`index_state`. The investment economy, the logit duopoly and every economy the constructor builds
(:mod:`abm_markets.engine.constructor`) implement this protocol.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import Tensor

from abm_markets.errors import ConfigError, UserError, unknown

__all__ = [
    "ActionLayout",
    "BatchedEconomy",
    "Block",
    "DecisionGroup",
    "InformationStructure",
    "LoggedVariable",
    "Subgroup",
    "action_layout",
    "index_state",
    "parse_information",
    "state_fields",
    "state_from_fields",
    "where_state",
]


# ----------------------------------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Block:
    """One observation block a group can observe: ``size`` features per agent, within ``[low, high]``."""

    name: str
    size: int
    low: float = -float("inf")
    high: float = float("inf")
    doc: str = ""


@dataclass(frozen=True)
class DecisionGroup:
    """A group of decision slots of an economy, as learners and front ends see it.

    Attributes:
        name: ``households``, ``planner``, ``firms``, ...
        count: Decision slots per economy ``n``.
        acts_for: Key of ``step``'s actions this group fills (the planner fills ``households``).
        units: Agents one slot decides for (the planner: ``N^h``; otherwise 1). A slot's observation is
            ``units`` equal per-agent parts, its raw action ``units`` equal parts (factorised networks).
        blocks: Observation blocks available to the group (per agent, i.e. per unit).
        observes: Blocks observed by default (the information structure when nothing else is declared).
        action_space: One agent's action in the economy's units (the front ends' action space).
        raw_dim: Size of an unbounded policy output per slot (continuous learners).
        n_discrete: ``> 0``: the group's actions are indices ``0..n_discrete-1`` (DQN acts on them directly).
        reward: What the slot maximises (documentation).
        agent: ``True`` when each slot is an agent of the front ends (not a coalition like the planner).
    """

    name: str
    count: int
    acts_for: str
    blocks: tuple[Block, ...]
    observes: tuple[str, ...]
    action_space: gymnasium.spaces.Space
    raw_dim: int
    units: int = 1
    n_discrete: int = 0
    reward: str = ""
    agent: bool = True

    def block(self, name: str) -> Block:
        for b in self.blocks:
            if b.name == name:
                return b
        raise unknown(f"observation block of group {self.name!r}", name, [b.name for b in self.blocks])


@dataclass(frozen=True)
class LoggedVariable:
    """A logged quantity: ``over`` is ``economy`` (``[B]``), a group name (``[B, n]``), or ``good`` (``[B, J]``)."""

    name: str
    over: str
    doc: str = ""


@dataclass(frozen=True)
class Subgroup:
    """Agents ``members`` (indices within their group) observe ``observes``."""

    members: tuple[int, ...]
    observes: tuple[str, ...]


@dataclass(frozen=True)
class InformationStructure:
    """Who observes what: per group, a partition of its agents into subgroups with their blocks.

    Groups not listed observe their declared default blocks. Within a group the observation has the same
    layout for every agent (so one shared policy serves all of them): the union of the subgroups' blocks in
    declaration order; a block an agent does not observe is zero, and for each block some agents lack a flag
    feature (1 observed, 0 not) follows the blocks.
    """

    groups: Mapping[str, tuple[Subgroup, ...]] = field(default_factory=dict)

    def subgroups(self, group: DecisionGroup) -> tuple[Subgroup, ...]:
        if group.name in self.groups:
            return self.groups[group.name]
        return (Subgroup(tuple(range(group.count)), group.observes),)

    def layout(self, group: DecisionGroup) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(blocks, flagged)``: the group's observed blocks in order, and those not every agent observes."""
        subs = self.subgroups(group)
        blocks: list[str] = []
        for s in subs:
            blocks += [b for b in s.observes if b not in blocks]
        flagged = tuple(b for b in blocks if not all(b in s.observes for s in subs))
        return tuple(blocks), flagged

    def obs_dim(self, group: DecisionGroup) -> int:
        """Observation size of one slot ``D`` (``units`` parts)."""
        blocks, flagged = self.layout(group)
        return group.units * (sum(group.block(b).size for b in blocks) + len(flagged))


_SUB = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(?:\[\s*(-?\d*)\s*:\s*(-?\d*)\s*\])?\s*=\s*(.*)$")


def parse_information(entries: Sequence[str], groups: Sequence[DecisionGroup]) -> InformationStructure:
    """Parse an information structure from lines ``group[start:stop]=block+block`` (slice optional).

    Example: ``("households[:50]=own_capital+own_tfp+all_capital", "households[50:]=own_capital+own_tfp")``
    makes the first 50 households see everybody's capital. Every agent of a listed group must be in exactly
    one subgroup; unknown groups or blocks are rejected with a one-line error naming them.
    """
    by_name = {g.name: g for g in groups}
    subs: dict[str, list[Subgroup]] = {}
    for entry in entries:
        m = _SUB.match(entry)
        if m is None:
            raise ConfigError(
                f"information entry {entry!r} is invalid; expected group=block+block or group[start:stop]=block+..."
            )
        name, start, stop, rhs = m.groups()
        if name not in by_name:
            raise ConfigError(str(unknown("agent group in the information structure", name, by_name)))
        g = by_name[name]
        members = tuple(range(g.count))[slice(int(start) if start else None, int(stop) if stop else None)]
        if not members:
            raise ConfigError(f"information entry {entry!r} selects no agent of {name!r} (it has {g.count})")
        blocks = tuple(b.strip() for b in rhs.split("+") if b.strip())
        if not blocks:
            raise ConfigError(f"information entry {entry!r} names no block; expected block+block")
        valid = [b.name for b in g.blocks]
        for b in blocks:
            if b not in valid:
                raise ConfigError(str(unknown(f"observation block of group {name!r}", b, valid)))
        subs.setdefault(name, []).append(Subgroup(members, blocks))
    for name, lst in subs.items():
        seen = [i for s in lst for i in s.members]
        if sorted(seen) != list(range(by_name[name].count)):
            dup = sorted({i for i in seen if seen.count(i) > 1})
            missing = sorted(set(range(by_name[name].count)) - set(seen))
            what = f"agents {dup} are in two subgroups" if dup else f"agents {missing[:5]} are in none"
            raise ConfigError(f"information structure of {name!r}: {what}; expected each agent in exactly one")
    return InformationStructure({k: tuple(v) for k, v in subs.items()})


# ------------------------------------------------------------------------------------------------ state
def state_fields(state: Any) -> dict[str, Tensor]:
    """The tensors of a frozen-dataclass state, by field name."""
    return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}


def state_from_fields(cls: type, fields: Mapping[str, Tensor], device: torch.device | None = None) -> Any:
    """Rebuild a state of class ``cls`` from :func:`state_fields` (e.g. a checkpoint)."""
    names = [f.name for f in dataclasses.fields(cls)]
    missing = [n for n in names if n not in fields]
    if missing:
        raise KeyError(f"state of {cls.__name__} lacks {missing}")
    return cls(**{n: fields[n] if device is None else fields[n].to(device) for n in names})


def where_state(mask: Tensor, a: Any, b: Any) -> Any:
    """Per economy, ``a`` where ``mask [B]`` is true and ``b`` elsewhere (resetting finished economies)."""
    out = {}
    for name, x in state_fields(b).items():
        y = getattr(a, name)
        out[name] = torch.where(mask.reshape(-1, *([1] * (x.dim() - 1))), y, x)
    return type(b)(**out)


def index_state(state: Any, idx: Tensor | slice | int) -> Any:
    """Select economies along the batch dimension."""
    if isinstance(idx, int):
        idx = slice(idx, idx + 1)
    return type(state)(**{k: v[idx] for k, v in state_fields(state).items()})


# ---------------------------------------------------------------------------------------------- economy
class BatchedEconomy:
    """Base class of protocol economies: observation assembly under an information structure, lookups.

    A subclass sets ``self.groups`` (tuple of :class:`DecisionGroup`), ``self.spec``
    (:class:`~abm_markets.engine.economy.EconomySpec`), ``self.information``, ``self.device``, ``self.dtype``
    and implements ``initial_state``, ``step``, ``observation_block``, ``decode``, ``rewards``,
    ``global_state`` and ``logged``.

    Optional: ``draw_noise(batch_size, generator) -> [B, D]`` (every random draw of one period, one generator
    call) with ``step(state, actions, noise=...)`` consuming it instead of the generator. Economies that have the
    pair (the investment economy, the constructor's) let evaluations replay fixed shocks and let the trainer's
    difference credit replay only the economies its update uses.
    """

    groups: tuple[DecisionGroup, ...]
    information: InformationStructure
    device: torch.device
    dtype: torch.dtype
    spec: Any
    default_group: str = ""

    # ----------------------------------------------------------------------------------- to implement
    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> Any:
        raise NotImplementedError

    def step(
        self, state: Any, actions: Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> tuple[Any, Any]:
        raise NotImplementedError

    def observation_block(self, state: Any, group: str, block: str) -> Tensor:
        """Block ``block`` for every agent (unit) of ``group``: ``[B, count * units, size]``."""
        raise NotImplementedError

    def decode(self, group: str, raw: Tensor, state: Any, *, center: str = "reference", shift: float = 0.0) -> Tensor:
        """Map raw policy outputs ``[B, n, raw_dim]`` (or indices ``[B, n, 1]``) to actions in economy units."""
        raise NotImplementedError

    def rewards(self, outcome: Any) -> Mapping[str, Tensor]:
        raise NotImplementedError

    def global_state(self, state: Any) -> Tensor:
        raise NotImplementedError

    def logged(self, state: Any, outcome: Any) -> dict[str, Tensor]:
        """The quantities declared in ``spec.logged`` after a period (``state`` is the state after it)."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ defaults
    def training_state(
        self, batch_size: int, generator: torch.Generator | None, spread: float = 0.0, common: float = 0.0
    ) -> Any:
        """Initial states for training; by default :meth:`initial_state` (``spread``, the spread of each agent's
        states, and ``common``, the spread of a factor shared by all agents of an economy, are economy-specific)."""
        return self.initial_state(batch_size, generator)

    def agent_names(self, group: str) -> list[str]:
        return [f"{group}_{i}" for i in range(self.group(group).count)]

    @property
    def env_id(self) -> str:
        return str(self.spec.id)

    @property
    def action_keys(self) -> tuple[str, ...]:
        """Action keys ``step`` needs (one per group of agents that decide)."""
        keys: list[str] = []
        for g in self.groups:
            if g.acts_for not in keys:
                keys.append(g.acts_for)
        return tuple(keys)

    def group(self, name: str) -> DecisionGroup:
        for g in self.groups:
            if g.name == name:
                return g
        raise unknown("decision group", name, [g.name for g in self.groups])

    def agent_groups(self) -> tuple[DecisionGroup, ...]:
        """Groups whose slots are agents (front ends), one per action key."""
        return tuple(g for g in self.groups if g.agent)

    def obs_dim(self, group: str | None = None) -> int:
        return self.information.obs_dim(self.group(group or self.default_group))

    def observe(self, state: Any, group: str | None = None) -> Tensor:
        """Observations ``[B, n, D]`` of ``group`` (default :attr:`default_group`) under the information
        structure."""
        group = group or self.default_group
        g = self.group(group)
        blocks, flagged = self.information.layout(g)
        subs = self.information.subgroups(g)
        parts = [self.observation_block(state, group, b) for b in blocks]
        n_agents = g.count * g.units
        if len(subs) > 1:
            masked, flags = [], []
            for name, part in zip(blocks, parts, strict=True):
                seen = self._seen(g, subs, name, part)
                masked.append(part * seen.unsqueeze(-1))
                if name in flagged:
                    flags.append(seen.unsqueeze(-1).expand(part.shape[0], n_agents, 1))
            parts = masked + flags
        obs = torch.cat(parts, dim=-1)
        return obs.reshape(obs.shape[0], g.count, -1)

    def _seen(self, g: DecisionGroup, subs: tuple[Subgroup, ...], block: str, like: Tensor) -> Tensor:
        mask = torch.zeros(g.count, dtype=like.dtype, device=like.device)
        for s in subs:
            if block in s.observes:
                mask[list(s.members)] = 1.0
        return mask.repeat_interleave(g.units)

    def observation_space(self, group: str) -> gymnasium.spaces.Box:
        """One agent's observation space (float32 ``Box``) from the blocks' bounds."""
        import numpy as np

        g = self.group(group)
        blocks, flagged = self.information.layout(g)
        low = [np.full(g.block(b).size, g.block(b).low) for b in blocks] + [np.zeros(len(flagged))]
        high = [np.full(g.block(b).size, g.block(b).high) for b in blocks] + [np.ones(len(flagged))]
        lo, hi = np.concatenate(low), np.concatenate(high)
        lo, hi = np.tile(lo, g.units), np.tile(hi, g.units)
        if len(self.information.subgroups(g)) > 1:
            lo = np.minimum(lo, 0.0)
            hi = np.maximum(hi, 0.0)
        return gymnasium.spaces.Box(lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32)


# ------------------------------------------------------------------------------------------ front ends
@dataclass(frozen=True)
class ActionLayout:
    """What ``economy.step`` expects under one action key: ``[1, n, *shape]`` of ``dtype``.

    Attributes:
        key: The action key.
        n: Agents the key covers (``count * units`` of the group that fills it).
        shape: One agent's action shape ``S`` (``()`` for a ``Discrete`` space).
        discrete: Integer actions (``Discrete``, ``MultiDiscrete``, ``MultiBinary``): ``torch.long``.
        dtype: Torch dtype of the tensor.
        device: Torch device of the economy.
        group: The agent group filling the key (its slots are Mesa agents), or ``None`` when only a group
            that is no front-end agent fills it (a planner): then only a batched function can decide.
    """

    key: str
    n: int
    shape: tuple[int, ...]
    discrete: bool
    dtype: torch.dtype
    device: torch.device
    group: DecisionGroup | None

    @property
    def full_shape(self) -> tuple[int, ...]:
        return (1, self.n, *self.shape)

    def tensor(self, value: Any, what: str) -> Tensor:
        """``value`` (``[1, n, *S]`` or ``[n, *S]``, array-like) as the key's tensor; ``what`` names it in errors.

        Raises:
            UserError: Wrong number of entries, or non-integer values for integer actions.
        """
        t = value.detach() if isinstance(value, Tensor) else torch.as_tensor(np.asarray(value))
        t = t.to(self.device)
        if t.numel() != math.prod(self.full_shape):
            raise UserError(
                f"{what} has shape {tuple(t.shape)}; expected {self.full_shape} (actions under key {self.key!r})"
            )
        if self.discrete:
            if t.is_floating_point() and not bool(torch.all(t == torch.round(t))):
                raise UserError(f"{what} has non-integer values; expected action indices under key {self.key!r}")
            t = t.long()
        else:
            t = t.to(self.dtype)
        return t.reshape(self.full_shape)


_DISCRETE = (gymnasium.spaces.Discrete, gymnasium.spaces.MultiDiscrete, gymnasium.spaces.MultiBinary)


def action_layout(economy: BatchedEconomy, key: str) -> ActionLayout:
    """Layout of action key ``key``, from the agent group that fills it (else any group that does).

    Raises:
        ConfigError: No group fills ``key``, or its action space is not a Box or a discrete space.
    """
    agent = [g for g in economy.agent_groups() if g.acts_for == key]
    fills = agent or [g for g in economy.groups if g.acts_for == key]
    if not fills:
        raise ConfigError(f"no decision group fills action key {key!r}; expected one of {list(economy.action_keys)}")
    if len(agent) > 1:
        raise ConfigError(
            f"agent groups {[g.name for g in agent]} all fill action key {key!r}; expected one agent group per key"
        )
    g = fills[0]
    space = g.action_space
    if not isinstance(space, (gymnasium.spaces.Box, *_DISCRETE)):
        raise ConfigError(f"group {g.name!r} has action space {space}; expected a Box or a discrete space")
    discrete = isinstance(space, _DISCRETE)
    return ActionLayout(
        key=key,
        n=g.count * g.units,
        shape=tuple(space.shape or ()),
        discrete=discrete,
        dtype=torch.long if discrete else economy.dtype,
        device=torch.device(economy.device),
        group=agent[0] if agent else None,
    )
