"""The economy constructor: an economy declared as named blocks, checked by name, run through the protocol.

An economy is a list of economic blocks (:mod:`abm_markets.engine.blocks`) whose argument and output names are
economic variables, plus what the blocks cannot say themselves: who decides what (groups and their actions),
what is random (Markov shocks), what carries over between periods (states and the variable holding next period's
value), and what is traded where (goods and market blocks). It is declared in Python
(:class:`EconomyDeclaration`) or in the ``[economy]`` table of a TOML file (:func:`declaration_from_toml`,
:func:`load_declaration`), checked when declared, and built into a :class:`DeclaredEconomy`, a
:class:`~abm_markets.engine.protocol.BatchedEconomy` that learners and front ends use like the hand-written ones.

Timing of one period ``t`` (every economy of the batch at once):

1. the state holds the states ``s_t`` and the shock indices of ``z_t``; each group observes its states and
   shocks (:meth:`DeclaredEconomy.observe`) and acts: ``actions[group] [B, n]`` (or ``[B, n, A]``);
2. actions are clipped to their bounds and the blocks run in dependency order (sorted by the names they need
   and produce, not by their order in the declaration); every variable of the period is in the outcome;
3. each state takes the value of its ``next`` variable, each shock moves along its chain (uniform draws of the
   period in one ``torch.rand`` call), ``t`` advances; rewards are period-``t`` variables.

A declaration may also give a reference policy (closed-form decision rules, ``reference = {"s": "alpha *
beta"}``); the economy then has ``reference_decide()`` for evaluation.

Checks (each a one-line :class:`~abm_markets.errors.ConfigError` naming the culprit and what is expected): a
block input nothing supplies, two blocks producing one variable, a cycle, a variable declared twice, a good nobody
produces or buys or no market clears, an observation that is not a state or shock, a state whose ``next``
variable nothing produces, a reward nothing produces, a block mixing variables of two groups (each variable's
index set, the economy or one group, is inferred), an unknown library block or block parameter, bad action
bounds, a shock that is not a Markov chain, and unknown keys in TOML.

Example (Brock and Mirman 1972; ``scenarios/brock-mirman.toml`` declares the same economy in TOML)::

    decl = EconomyDeclaration(
        id="BrockMirman-v1",
        parameters={"alpha": 0.36, "beta": 0.96},
        groups=(Group(name="households", actions=(Action(name="s", low=0.0, high=1.0, start=0.6),),
                      observes=("K", "Z"), reward="u"),),
        shocks=(Shock(name="Z", values=(0.9, 1.1), persistence=0.9),),
        states=(StateVariable(name="K", over="households", init=(0.1, 0.3), next="K_next"),),
        blocks=(use("cobb_douglas"), use("spend_share"), use("accumulate", params={"delta": 1.0}),
                expression("utility", u="log(C)")),
    )
    economy = build_economy(decl)  # also registered: make_economy("BrockMirman-v1", None)
"""

from __future__ import annotations

import dataclasses
import keyword
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from torch import Tensor

from abm_markets.engine.blocks import ECONOMY, EconomicBlock, _expression_blocks, expression, use
from abm_markets.engine.economy import AgentGroup, EconomySpec, Good, economy_ids, register_economy
from abm_markets.engine.protocol import (
    BatchedEconomy,
    Block,
    DecisionGroup,
    LoggedVariable,
    parse_information,
    state_fields,
)
from abm_markets.engine.shocks import MarkovChain, persistent_chain
from abm_markets.errors import ConfigError, suggest, unknown

__all__ = [
    "Action",
    "DeclaredEconomy",
    "EconomyDeclaration",
    "Good",
    "Group",
    "Shock",
    "StateVariable",
    "build_economy",
    "declaration_from_toml",
    "expression",
    "load_declaration",
    "use",
]

COMPETITIVE = "competitive"
"""Producer of a good sold by competitive (price-taking, non-deciding) firms."""

VERSIONED_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.]*-v[0-9]+$")
RESERVED = ("t", ECONOMY, COMPETITIVE)
CENTERS = ("reference", "none")

Outcome = dict[str, Tensor]
"""What a period produced: every variable (states and shocks of the period, actions, block outputs) by name,
``[B]`` when economy-wide and ``[B, n]`` over a group of ``n`` agents."""


# ------------------------------------------------------------------------------------------ declarations
@dataclass(frozen=True, kw_only=True)
class Action:
    """One action variable of a group, in the economy's units.

    Attributes:
        name: The variable the action fills (``s``), over the group's agents.
        low: Lower bound (``-inf`` for none).
        high: Upper bound (``inf`` for none); ``step`` clips actions into ``[low, high]``.
        start: The action a raw policy output of 0 plays (``decode(center="reference")``); strictly inside the
            bounds. Default: the midpoint of ``[low, high]``, ``low + 1`` / ``high - 1`` when half-bounded, 0.
        doc: What the action means.
    """

    name: str
    low: float = -math.inf
    high: float = math.inf
    start: float | None = None
    doc: str = ""

    @property
    def reference(self) -> float:
        """``start``, or its default."""
        if self.start is not None:
            return float(self.start)
        lo, hi = float(self.low), float(self.high)
        if math.isfinite(lo) and math.isfinite(hi):
            return 0.5 * (lo + hi)
        if math.isfinite(lo):
            return lo + 1.0
        return hi - 1.0 if math.isfinite(hi) else 0.0


@dataclass(frozen=True, kw_only=True)
class Group:
    """A group of agents of one economy: an index set for variables and, with actions, a decision group.

    Attributes:
        name: ``households``, ``firms``, ...
        count: Agents per economy ``n``.
        actions: The group's action variables (none: a passive group, only an index set).
        observes: States and shocks each agent observes (one feature each; default: every state and shock of the
            economy or of the group).
        reward: The variable each agent maximises (over the group or economy-wide).
        doc: Who the agents are.
    """

    name: str
    count: int = 1
    actions: tuple[Action, ...] = ()
    observes: tuple[str, ...] = ()
    reward: str = ""
    doc: str = ""

    def __post_init__(self) -> None:
        _tuples(self, "actions", "observes")


@dataclass(frozen=True, kw_only=True)
class Shock:
    """A finite Markov chain, one per economy or one per agent of a group (independent draws).

    Attributes:
        name: The variable holding the shock's value (``Z``).
        values: State values ``[S]``.
        persistence: Probability of staying; otherwise moves uniformly to another state (like
            :func:`~abm_markets.engine.shocks.persistent_chain`). Give this or ``transition``.
        transition: Full row-stochastic matrix ``P[s, s']`` ``[S, S]``.
        over: ``economy`` or a group name.
        doc: What the shock is.
    """

    name: str
    values: tuple[float, ...]
    persistence: float | None = None
    transition: tuple[tuple[float, ...], ...] | None = None
    over: str = ECONOMY
    doc: str = ""

    def __post_init__(self) -> None:
        _tuples(self, "values")
        if isinstance(self.transition, list | tuple):
            rows = tuple(tuple(r) if isinstance(r, list | tuple) else r for r in self.transition)
            object.__setattr__(self, "transition", rows)

    def chain(self) -> MarkovChain:
        """The chain in float64 (values ``[S]``, transition ``[S, S]``)."""
        if self.transition is not None:
            return MarkovChain(
                torch.tensor(self.values, dtype=torch.float64), torch.tensor(self.transition, dtype=torch.float64)
            )
        return persistent_chain(tuple(float(v) for v in self.values), float(self.persistence or 0.0))


@dataclass(frozen=True, kw_only=True)
class StateVariable:
    """A variable carried from one period to the next.

    Attributes:
        name: The variable (``K``).
        next: The variable holding next period's value (a block output or an action, e.g. ``K_next``).
        init: Initial value, or ``(low, high)``: drawn uniformly per economy (and agent).
        over: ``economy`` or a group name.
        doc: What the state is.
    """

    name: str
    next: str
    init: float | tuple[float, float] = 1.0
    over: str = ECONOMY
    doc: str = ""

    def __post_init__(self) -> None:
        _tuples(self, "init")


@dataclass(frozen=True, kw_only=True)
class EconomyDeclaration:
    """An economy declared from blocks; every check runs at construction (one-line :class:`ConfigError`).

    Attributes:
        id: Versioned id (``BrockMirman-v1``): :func:`build_economy` registers it for ``make_economy``.
        description: One paragraph: the economy and its source.
        parameters: Parameter name -> number, visible to every block.
        groups: The groups of agents (:class:`Group`).
        shocks: Markov shocks (:class:`Shock`).
        states: States (:class:`StateVariable`).
        blocks: Blocks in any order (:func:`~abm_markets.engine.blocks.block` functions, :func:`use`,
            :func:`expression`; nested tuples are flattened); the constructor sorts them by name.
        goods: Traded goods (:class:`~abm_markets.engine.economy.Good`: name, producer group or ``competitive``,
            buyer group, market), each cleared by one market block with ``good = name``.
        log: Variables to log (default: every variable).
        horizon: Periods of an episode (for learners and front ends).
        information: Information structure entries ``group[start:stop]=K+Z`` (see
            :func:`~abm_markets.engine.protocol.parse_information`); default: each group's ``observes``.
        history: Version history, one line per version.
        reference: A reference policy, action variable -> expression of states, shocks and parameters (a
            closed-form decision rule, ``{"s": "alpha * beta"}``); it must give every action. The economy then
            has ``reference_decide()``, the policy as ``state -> actions`` (evaluation, action gaps).
    """

    id: str
    description: str = ""
    parameters: Mapping[str, float] = field(default_factory=dict)
    groups: tuple[Group, ...] = ()
    shocks: tuple[Shock, ...] = ()
    states: tuple[StateVariable, ...] = ()
    blocks: tuple[EconomicBlock, ...] = ()
    goods: tuple[Good, ...] = ()
    log: tuple[str, ...] = ()
    horizon: int = 200
    information: tuple[str, ...] = ()
    history: tuple[str, ...] = ()
    reference: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _tuples(self, "groups", "shocks", "states", "goods", "log", "information", "history")
        flat: list[Any] = []
        for b in self.blocks if isinstance(self.blocks, list | tuple) else (self.blocks,):
            flat.extend(b if isinstance(b, list | tuple) else (b,))
        object.__setattr__(self, "blocks", tuple(flat))
        for name in ("parameters", "reference"):
            if isinstance(getattr(self, name), Mapping):
                object.__setattr__(self, name, dict(getattr(self, name)))
        _analyse(self)


def _tuples(obj: Any, *names: str) -> None:
    """Lists become tuples (and a lone name a 1-tuple), so declarations compare and print alike."""
    for n in names:
        v = getattr(obj, n)
        if isinstance(v, list):
            object.__setattr__(obj, n, tuple(v))
        elif isinstance(v, str) and n in ("observes", "log", "information", "history"):
            object.__setattr__(obj, n, (v,))


# ---------------------------------------------------------------------------------------------- checks
@dataclass(frozen=True, kw_only=True)
class _Plan:
    """What the checks found: index sets, evaluation order, decision groups."""

    over: dict[str, str]
    kind: dict[str, str]
    order: tuple[EconomicBlock, ...]
    variables: tuple[str, ...]
    log: tuple[str, ...]
    observes: dict[str, tuple[str, ...]]
    decision_groups: tuple[DecisionGroup, ...]
    reference: tuple[EconomicBlock, ...]


_ARTICLE = {
    "parameter": "a parameter",
    "state": "a state",
    "shock": "a shock",
    "action": "an action",
    "output": "a block output",
}


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _analyse(d: EconomyDeclaration) -> _Plan:
    if not isinstance(d.id, str) or not VERSIONED_ID.match(d.id):
        raise ConfigError(f"economy id {d.id!r} is invalid; expected a versioned id such as 'BrockMirman-v1'")

    def fail(msg: str) -> ConfigError:
        return ConfigError(f"economy {d.id}: {msg}")

    if isinstance(d.horizon, bool) or not isinstance(d.horizon, int) or d.horizon < 1:
        raise fail(f"horizon = {d.horizon!r} is invalid; expected an int >= 1")
    if not isinstance(d.parameters, Mapping):
        raise fail(f"parameters = {d.parameters!r} is invalid; expected a table name -> number")

    # groups: the index sets
    sizes: dict[str, int] = {ECONOMY: 1}
    for g in d.groups:
        if not isinstance(g, Group):
            raise fail(f"groups: {g!r} is not a Group")
        if not isinstance(g.name, str) or not g.name.isidentifier() or g.name in RESERVED:
            raise fail(f"group name {g.name!r} is invalid; expected a name other than {', '.join(RESERVED)}")
        if g.name in sizes:
            raise fail(f"group {g.name!r} is declared twice; expected one declaration per group")
        if isinstance(g.count, bool) or not isinstance(g.count, int) or g.count < 1:
            raise fail(f"group {g.name!r}: count = {g.count!r} is invalid; expected an int >= 1")
        sizes[g.name] = g.count

    kind: dict[str, str] = {}
    over: dict[str, str] = {}

    def declare(name: Any, what: str, index_set: str) -> None:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise fail(f"{what} name {name!r} is invalid; expected a variable name such as 'K'")
        if name in RESERVED:
            raise fail(f"{what} {name!r}: the name is reserved ({', '.join(RESERVED)}); expected another name")
        if name in kind:
            raise fail(f"{name!r} is declared twice ({_ARTICLE[kind[name]]} and {_ARTICLE[what]}); expected one")
        kind[name], over[name] = what, index_set

    def index_set(value: Any, where: str) -> str:
        if value not in sizes:
            raise fail(f"{where}: {unknown('index set', str(value), sizes)}")
        return str(value)

    for name, value in d.parameters.items():
        if not _is_number(value):
            raise fail(f"parameter {name} = {value!r} is invalid; expected a finite number")
        declare(name, "parameter", ECONOMY)

    for s in d.shocks:
        if not isinstance(s, Shock):
            raise fail(f"shocks: {s!r} is not a Shock")
        where = f"shock {s.name!r}"
        o = index_set(s.over, f"{where} over")
        _check_chain(s, where, fail)
        declare(s.name, "shock", o)

    for st in d.states:
        if not isinstance(st, StateVariable):
            raise fail(f"states: {st!r} is not a StateVariable")
        where = f"state {st.name!r}"
        o = index_set(st.over, f"{where} over")
        init = st.init
        ok = _is_number(init) or (
            isinstance(init, tuple) and len(init) == 2 and all(map(_is_number, init)) and init[0] <= init[1]
        )
        if not ok:
            raise fail(f"{where}: init = {init!r} is invalid; expected a number or [low, high] with low <= high")
        if not isinstance(st.next, str) or not st.next:
            raise fail(f"{where} has no next; expected next = the variable holding next period's value")
        declare(st.name, "state", o)
    fields = [st.name for st in d.states] + [f"{s.name}_idx" for s in d.shocks]
    for f in fields:
        if fields.count(f) > 1:
            raise fail(f"state field {f!r} is used twice (a state is named like a shock's index); rename the state")

    for g in d.groups:
        for a in g.actions:
            if not isinstance(a, Action):
                raise fail(f"group {g.name!r}: {a!r} is not an Action")
            _check_bounds(a, f"group {g.name!r} action {a.name!r}", fail)
            declare(a.name, "action", g.name)
        if not g.actions and (g.reward or g.observes):
            raise fail(f"group {g.name!r} has a reward or observations but no action; expected actions = ...")
    acting = [g for g in d.groups if g.actions]
    if not acting:
        raise fail("no group has an action; expected at least one group with actions")

    # goods
    goods: dict[str, Good] = {}
    for good in d.goods:
        if not isinstance(good, Good):
            raise fail(f"goods: {good!r} is not a Good")
        where = f"good {good.name!r}"
        if good.name in goods:
            raise fail(f"{where} is declared twice")
        if not good.producer:
            raise fail(f"{where} has no producer; expected producer = a group or '{COMPETITIVE}'")
        if good.producer not in (*sizes, COMPETITIVE) or good.producer == ECONOMY:
            options = [*_group_names(d), COMPETITIVE]
            raise fail(
                f"{where} is produced by {good.producer!r}, which is neither a group nor '{COMPETITIVE}'"
                f"{suggest(good.producer, options)}; expected one of {', '.join(options)}"
            )
        if not good.buyer:
            raise fail(f"{where} has no buyer; expected buyer = a group")
        if good.buyer not in _group_names(d):
            raise fail(f"{where}: {unknown('buyer group', good.buyer, _group_names(d))}")
        if not good.market:
            raise fail(f"{where} has no market; expected market = 'walrasian'")
        goods[good.name] = good

    # blocks: producers, inputs, order
    producers: dict[str, int] = {}
    for i, b in enumerate(d.blocks):
        if not isinstance(b, EconomicBlock):
            raise fail(f"blocks: {b!r} is not a block; expected @block functions, use(...) or expression(...)")
        for o in b.outputs:
            if o in kind:
                raise fail(f"block {b.label} produces {o!r}, which is already {_ARTICLE[kind[o]]}; expected a new name")
            if o in producers:
                other = d.blocks[producers[o]].label
                raise fail(f"blocks {other} and {b.label} both produce {o!r}; expected one block per variable")
            if not o.isidentifier() or keyword.iskeyword(o) or o in RESERVED:
                raise fail(f"block {b.label} output {o!r} is invalid; expected a variable name")
            producers[o] = i
    known = [*kind, *producers]
    for b in d.blocks:
        for name in b.inputs:
            if name not in kind and name not in producers:
                raise fail(
                    f"block {b.label} needs {name!r}, which nothing supplies (not a state, shock, action, parameter "
                    f"or block output){suggest(name, known)}"
                )
    order = _toposort(d.blocks, producers, fail)

    # index sets, in order; market blocks against their goods
    cleared: dict[str, EconomicBlock] = {}
    for b in order:
        ins = {n: over[n] for n in (*b.inputs, *b.optional_inputs) if n in over}
        try:
            outs = b.infer(ins)
        except ConfigError as e:
            raise fail(str(e)) from None
        if b.kind == "market":
            _check_market(b, goods, over, d.parameters, cleared, fail)
        for o, ov in outs.items():
            kind[o], over[o] = "output", ov
    for name in goods:
        if name not in cleared:
            raise fail(f"good {name!r} is traded in no market block; expected a market block with good = {name!r}")

    # states advance, groups observe and are rewarded
    for st in d.states:
        if st.next not in over:
            raise fail(
                f"state {st.name!r} has next = {st.next!r}, which nothing produces{suggest(st.next, known)}; "
                "expected a block output or action holding next period's value"
            )
        if over[st.next] not in (ECONOMY, st.over):
            raise fail(
                f"state {st.name!r} (over {st.over}) has next = {st.next!r} over {over[st.next]}; "
                f"expected a variable over {st.over} or the economy"
            )
    observable = [n for k in ("state", "shock") for n in kind if kind[n] == k]
    observes: dict[str, tuple[str, ...]] = {}
    for g in acting:
        mine = tuple(n for n in observable if over[n] in (ECONOMY, g.name))
        for name in g.observes:
            if name not in kind:
                raise fail(
                    f"group {g.name!r} observes {name!r}, which nothing provides{suggest(name, observable)}; "
                    f"expected a state or shock ({', '.join(mine)})"
                )
            if kind[name] not in ("state", "shock"):
                raise fail(
                    f"group {g.name!r} observes {name!r}, {_ARTICLE[kind[name]]}, which is not computable from the "
                    "state; expected a state or shock"
                )
            if over[name] not in (ECONOMY, g.name):
                raise fail(
                    f"group {g.name!r} observes {name!r} over {over[name]}; expected a state or shock of the economy "
                    f"or of {g.name}"
                )
        observes[g.name] = g.observes or mine
        if not observes[g.name]:
            raise fail(f"group {g.name!r} observes nothing; expected observes = states or shocks")
        if not g.reward:
            raise fail(f"group {g.name!r} has no reward; expected reward = a variable such as 'u'")
        if g.reward not in kind or kind[g.reward] == "parameter":
            raise fail(
                f"group {g.name!r} has reward {g.reward!r}, which nothing produces{suggest(g.reward, known)}; "
                "expected a block output"
            )
        if over[g.reward] not in (ECONOMY, g.name):
            raise fail(
                f"group {g.name!r} has reward {g.reward!r} over {over[g.reward]}; expected a variable over "
                f"{g.name} or the economy"
            )

    variables = tuple(n for k in ("state", "shock", "action", "output") for n in kind if kind[n] == k)
    for name in d.log:
        if name not in variables:
            raise fail(str(unknown("variable to log", str(name), variables)))
    plan = _Plan(
        over=over,
        kind=kind,
        order=order,
        variables=variables,
        log=d.log or variables,
        observes=observes,
        decision_groups=(),
        reference=_check_reference(d, kind, over, fail),
    )
    groups = tuple(_decision_group(d, g, plan) for g in acting)
    try:
        parse_information(d.information, groups)
    except ConfigError as e:
        raise fail(str(e)) from None
    return replace(plan, decision_groups=groups)


def _check_reference(
    d: EconomyDeclaration, kind: Mapping[str, str], over: Mapping[str, str], fail: Any
) -> tuple[EconomicBlock, ...]:
    """The reference policy as one expression block per action, computable from the state."""
    if not isinstance(d.reference, Mapping):
        raise fail(f"reference = {d.reference!r} is invalid; expected a table action = 'expression'")
    if not d.reference:
        return ()
    actions = [a.name for g in d.groups for a in g.actions]
    for name in d.reference:
        if name not in actions:
            raise fail(f"reference policy: {unknown('action', str(name), actions)}")
    missing = [a for a in actions if a not in d.reference]
    if missing:
        raise fail(f"reference policy gives no rule for {', '.join(map(repr, missing))}; expected every action")
    try:
        blocks = _expression_blocks("reference", d.reference, {})
    except ConfigError as e:
        raise fail(str(e)) from None
    for b in blocks:
        (act,) = b.outputs
        for name in b.inputs:
            if name not in kind:
                raise fail(f"reference policy for {act!r} uses {name!r}, which nothing supplies{suggest(name, kind)}")
            if kind[name] not in ("state", "shock", "parameter"):
                raise fail(
                    f"reference policy for {act!r} uses {name!r}, {_ARTICLE[kind[name]]}, which is not computable "
                    "from the state; expected states, shocks and parameters"
                )
        try:
            ov = b.infer({n: over[n] for n in b.inputs})[act]
        except ConfigError as e:
            raise fail(str(e)) from None
        if ov not in (ECONOMY, over[act]):
            raise fail(f"reference policy for {act!r} (over {over[act]}) is over {ov}; expected {over[act]} or economy")
    return blocks


def _group_names(d: EconomyDeclaration) -> list[str]:
    return [g.name for g in d.groups]


def _check_chain(s: Shock, where: str, fail: Any) -> None:
    if not s.values or not all(map(_is_number, s.values)):
        raise fail(f"{where}: values = {s.values!r} are invalid; expected a non-empty list of numbers")
    n = len(s.values)
    if s.transition is not None and s.persistence is not None:
        raise fail(f"{where} gives both persistence and transition; expected one of them")
    if s.transition is not None:
        rows = s.transition
        ok = isinstance(rows, tuple) and len(rows) == n and all(isinstance(r, tuple) and len(r) == n for r in rows)
        if not ok or not all(_is_number(p) and p >= 0 for r in rows for p in r):
            raise fail(f"{where}: transition is invalid; expected a {n} x {n} matrix of probabilities >= 0")
        for i, r in enumerate(rows):
            if abs(sum(r) - 1.0) > 1e-9:
                raise fail(f"{where}: transition row {i} sums to {sum(r):.6g}; expected rows summing to 1")
    elif s.persistence is None:
        if n > 1:
            raise fail(f"{where} has {n} values but no persistence or transition; expected one of them")
    elif not _is_number(s.persistence) or not 0.0 <= s.persistence <= 1.0:
        raise fail(f"{where}: persistence = {s.persistence!r} is invalid; expected a number in [0, 1]")
    try:
        pi = s.chain().stationary()
    except RuntimeError:
        pi = torch.full((n,), math.nan, dtype=torch.float64)
    if not bool(torch.isfinite(pi).all()):
        raise fail(f"{where}: the chain has no unique stationary distribution; expected an irreducible chain")


def _check_bounds(a: Action, where: str, fail: Any) -> None:
    lo, hi, start = a.low, a.high, a.start
    if not isinstance(a.name, str):
        raise fail(f"{where}: name is invalid; expected a variable name")
    for key, v in (("low", lo), ("high", hi)):
        if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
            raise fail(f"{where}: {key} = {v!r} is invalid; expected a number (or +-inf)")
    if not lo < hi:
        raise fail(f"{where}: bounds [{lo}, {hi}] are invalid; expected low < high")
    if start is not None and not _is_number(start):
        raise fail(f"{where}: start = {start!r} is invalid; expected a finite number")
    if not lo < a.reference < hi:
        raise fail(f"{where}: start = {a.reference!r} is invalid; expected a value strictly inside ({lo}, {hi})")


def _check_market(
    b: EconomicBlock,
    goods: Mapping[str, Good],
    over: Mapping[str, str],
    params: Mapping[str, Any],
    cleared: dict[str, EconomicBlock],
    fail: Any,
) -> None:
    if not b.good:
        raise fail(f"market block {b.label} clears no good; expected good = one of {', '.join(goods) or '(none)'}")
    if b.good not in goods:
        raise fail(f"market block {b.label}: {unknown('good', b.good, goods)}")
    good = goods[b.good]
    if b.good in cleared:
        raise fail(f"good {b.good!r} is cleared by two market blocks, {cleared[b.good].label} and {b.label}")
    if good.market != b.market:
        raise fail(
            f"good {b.good!r} trades in market {good.market!r} but block {b.label} is a {b.market} market; "
            f"expected market = {b.market!r}"
        )
    if good.producer != COMPETITIVE:
        raise fail(
            f"block {b.label} sells good {b.good!r} from competitive firms but it is produced by {good.producer!r}; "
            f"expected producer = '{COMPETITIVE}'"
        )
    spending = b.buyer_over_input
    if over.get(spending) != good.buyer:
        raise fail(
            f"block {b.label} takes spending {spending!r} over {over.get(spending)}, but good {b.good!r} is bought by "
            f"{good.buyer}; expected spending over {good.buyer}"
        )
    if "firms" in b.args:
        firms = b.params.get("firms", params.get(b.external("firms"), b.defaults.get("firms", 1.0)))
        if isinstance(firms, bool) or not _is_number(firms) or firms < 1 or int(firms) != firms:
            raise fail(f"block {b.label}: firms = {firms!r} is invalid; expected a whole number >= 1")
    cleared[b.good] = b


def _toposort(blocks: Sequence[EconomicBlock], producers: Mapping[str, int], fail: Any) -> tuple[EconomicBlock, ...]:
    """Blocks in dependency order (declaration order among blocks that are ready together); a cycle is rejected
    naming each block and the variable it needs from the next."""
    needs = [[(n, producers[n]) for n in (*b.inputs, *b.optional_inputs) if n in producers] for b in blocks]
    done: set[int] = set()
    order: list[int] = []
    pending = list(range(len(blocks)))
    while pending:
        ready = [i for i in pending if all(j in done for _, j in needs[i])]
        if not ready:
            raise fail(_cycle(blocks, needs, set(pending)))
        order += ready
        done.update(ready)
        pending = [i for i in pending if i not in done]
    return tuple(blocks[i] for i in order)


def _cycle(blocks: Sequence[EconomicBlock], needs: Sequence[list[tuple[str, int]]], pending: set[int]) -> str:
    path, via = [min(pending)], []
    seen = {path[0]: 0}
    while True:
        name, j = next((n, j) for n, j in needs[path[-1]] if j in pending)
        via.append(name)
        if j in seen:
            k = seen[j]
            steps = [
                f"{blocks[path[m]].label} needs {via[m]!r} from {blocks[path[m + 1] if m + 1 < len(path) else j].label}"
                for m in range(k, len(path))
            ]
            return "blocks form a cycle: " + ", ".join(steps) + "; expected each block to need only earlier variables"
        seen[j] = len(path)
        path.append(j)


def _decision_group(d: EconomyDeclaration, g: Group, plan: _Plan) -> DecisionGroup:
    shocks = {s.name: s for s in d.shocks}
    docs = {st.name: st.doc for st in d.states} | {s.name: s.doc for s in d.shocks}
    blocks = []
    for n in plan.kind:
        if plan.kind[n] in ("state", "shock") and plan.over[n] in (ECONOMY, g.name):
            lo, hi = -math.inf, math.inf
            if n in shocks:
                lo, hi = float(min(shocks[n].values)), float(max(shocks[n].values))
            blocks.append(Block(n, 1, lo, hi, docs.get(n, "")))
    low = np.array([a.low for a in g.actions], np.float32)
    high = np.array([a.high for a in g.actions], np.float32)
    shape = () if len(g.actions) == 1 else (len(g.actions),)
    space = gymnasium.spaces.Box(low.reshape(shape), high.reshape(shape), shape, np.float32)
    return DecisionGroup(
        g.name,
        g.count,
        g.name,
        tuple(blocks),
        plan.observes[g.name],
        space,
        len(g.actions),
        reward=g.reward,
    )


# ---------------------------------------------------------------------------------------------- economy
class DeclaredEconomy(BatchedEconomy):
    """A batched economy built from an :class:`EconomyDeclaration` (see the module docstring for the timing).

    State: a frozen dataclass (made with :func:`dataclasses.make_dataclass`, ``economy.state_type``) with each
    state ``[B]`` (economy-wide) or ``[B, n]`` (over a group of ``n``), each shock's index ``<name>_idx`` (long,
    same shapes) and the period ``t [B]`` (long).

    Actions: ``{group: [B, n]}`` (one action variable) or ``[B, n, A]`` (``A`` variables, in declaration order),
    in economy units, clipped to the bounds. Observation of a group: its ``observes`` states and shocks, one
    feature each, ``[B, n, D]``. Rewards: ``{group: [B, n]}``. Outcome: :data:`Outcome`.

    Args:
        declaration: The declaration (already checked).
        device: Torch device of the state.
        dtype: Floating dtype (float64 by default).
    """

    def __init__(
        self, declaration: EconomyDeclaration, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
    ):
        if not isinstance(declaration, EconomyDeclaration):
            raise ConfigError(f"DeclaredEconomy needs an EconomyDeclaration; got {type(declaration).__name__}")
        self.declaration = self.cfg = declaration
        self.device, self.dtype = torch.device(device), dtype
        self.plan = _analyse(declaration)
        self.horizon = declaration.horizon
        self.sizes = {ECONOMY: 1, **{g.name: g.count for g in declaration.groups}}
        self.parameters = {k: float(v) for k, v in declaration.parameters.items()}
        self.chains = {s.name: s.chain().to(self.device, dtype) for s in declaration.shocks}
        self.stationary = {name: c.stationary() for name, c in self.chains.items()}
        self.groups = self.plan.decision_groups
        self.information = parse_information(declaration.information, self.groups)
        self.default_group = self.groups[0].name
        self._acting = {g.name: g for g in declaration.groups if g.actions}
        self.state_type = _state_type(declaration)
        self.spec = self._make_spec()
        if self.plan.reference:
            # only declared economies with a reference policy have it (evaluation compares learners against it)
            self.reference_decide = self._reference_decide

    def _make_spec(self) -> EconomySpec:
        d, plan = self.declaration, self.plan
        groups = []
        for g in d.groups:
            act = ", ".join(f"{a.name} in [{a.low}, {a.high}]" for a in g.actions) or "none (passive)"
            groups.append(AgentGroup(g.name, g.count, act, plan.observes.get(g.name, ()), g.reward))
        if any(good.producer == COMPETITIVE for good in d.goods):
            groups.append(AgentGroup(COMPETITIVE, 1, "rule: supply Q = p / phi (price takers)", (), "profit"))
        return EconomySpec(
            id=d.id,
            groups=tuple(groups),
            goods=d.goods,
            markets=tuple(dict.fromkeys(good.market for good in d.goods)),
            shocks=tuple(s.name for s in d.shocks),
            observation_blocks=tuple(n for n in plan.variables if plan.kind[n] in ("state", "shock")),
            history=d.history or (f"{d.id.rsplit('-', 1)[1]}: declared with the economy constructor",),
            logged=tuple(LoggedVariable(n, plan.over[n], self._doc(n)) for n in plan.log),
        )

    def _doc(self, name: str) -> str:
        plan, d = self.plan, self.declaration
        if plan.kind[name] == "output":
            return next(b.doc for b in plan.order if name in b.outputs)
        docs = {st.name: st.doc for st in d.states} | {s.name: s.doc for s in d.shocks}
        docs |= {a.name: a.doc for g in d.groups for a in g.actions}
        return docs.get(name, "") or plan.kind[name]

    def equations(self) -> list[str]:
        """The blocks in evaluation order, one line each (``technology: Y = Z K^alpha``)."""
        return [f"{b.name}: {b.doc}" for b in self.plan.order]

    # ------------------------------------------------------------------------------------------ state
    def _shape(self, batch: int, over: str) -> tuple[int, ...]:
        return (batch,) if over == ECONOMY else (batch, self.sizes[over])

    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> Any:
        """``batch_size`` economies: states at ``init`` (or uniform on ``[low, high]``), shocks drawn from their
        stationary distributions, ``t = 0``; all draws in one ``torch.rand`` call."""
        d, b = self.declaration, batch_size
        drawn = [st for st in d.states if isinstance(st.init, tuple)]
        width = sum(self.sizes[st.over] for st in drawn) + sum(self.sizes[s.over] for s in d.shocks)
        u = torch.rand((b, width), generator=generator, device=self.device, dtype=self.dtype)
        col, values = 0, {}
        for st in d.states:
            shape = self._shape(b, st.over)
            if isinstance(st.init, tuple):
                n = self.sizes[st.over]
                lo, hi = float(st.init[0]), float(st.init[1])
                values[st.name] = lo + (hi - lo) * u[:, col : col + n].reshape(shape)
                col += n
            else:
                values[st.name] = torch.full(shape, float(st.init), device=self.device, dtype=self.dtype)
        for s in d.shocks:
            n = self.sizes[s.over]
            cdf = torch.cumsum(self.stationary[s.name], 0)
            idx = (u[:, col : col + n].unsqueeze(-1) >= cdf).sum(-1).clamp_max(cdf.shape[0] - 1)
            values[f"{s.name}_idx"] = idx.reshape(self._shape(b, s.over))
            col += n
        values["t"] = torch.zeros(b, dtype=torch.long, device=self.device)
        return self.state_type(**values)

    def training_state(
        self, batch_size: int, generator: torch.Generator | None, spread: float = 0.0, common: float = 0.0
    ) -> Any:
        """:meth:`initial_state` with each state scaled by ``1 + spread (2u - 1)``, ``u`` uniform (one more
        ``torch.rand`` call); ``common`` is not supported (declared states have no common factor yet)."""
        if common:
            raise ValueError("declared economies draw no common factor in training states; use k_spread_common = 0")
        s = self.initial_state(batch_size, generator)
        states = self.declaration.states
        width = sum(self.sizes[st.over] for st in states)
        if width == 0 or spread == 0.0:
            return s
        u = torch.rand((batch_size, width), generator=generator, device=self.device, dtype=self.dtype)
        fields, col = state_fields(s), 0
        for st in states:
            n = self.sizes[st.over]
            x = fields[st.name]
            fields[st.name] = x * (1.0 + spread * (2.0 * u[:, col : col + n].reshape(x.shape) - 1.0))
            col += n
        return self.state_type(**fields)

    def value(self, state: Any, name: str) -> Tensor:
        """A state's or shock's value in ``state``: ``[B]`` or ``[B, n]``."""
        if name in self.chains:
            return self.chains[name].values[getattr(state, f"{name}_idx")]
        if self.plan.kind.get(name) == "state":
            return getattr(state, name)
        raise ValueError(f"{name!r} is not a state or shock of {self.declaration.id}")

    # ------------------------------------------------------------------------------------------- step
    def draw_noise(self, batch_size: int, generator: torch.Generator | None) -> Tensor:
        """All uniform draws of one period, ``[B, U]`` with a column per shock and agent (one ``torch.rand``)."""
        width = sum(self.sizes[s.over] for s in self.declaration.shocks)
        return torch.rand((batch_size, width), generator=generator, device=self.device, dtype=self.dtype)

    def step(
        self,
        state: Any,
        actions: Mapping[str, Tensor],
        generator: torch.Generator | None = None,
        *,
        noise: Tensor | None = None,
    ) -> tuple[Any, Outcome]:
        """Advance every economy one period (pure: returns a new state).

        Args:
            state: Current state.
            actions: ``{group: [B, n]}`` (one action variable; ``[B, n, 1]`` accepted) or ``[B, n, A]``.
            generator: Source of this period's shock draws (ignored when ``noise`` is given).
            noise: Pre-drawn uniforms from :meth:`draw_noise` (to replay a period exactly).

        Returns:
            ``(next_state, outcome)``.
        """
        d, plan = self.declaration, self.plan
        b = int(state.t.shape[0])
        env = self._state_env(state)
        for name, g in self._acting.items():
            if name not in actions:
                raise KeyError(f"actions must contain {name!r}")
            a = actions[name].to(device=self.device, dtype=self.dtype)
            n, k = g.count, len(g.actions)
            if k == 1 and a.dim() == 3 and a.shape[-1] == 1:
                a = a[..., 0]
            expected = (b, n) if k == 1 else (b, n, k)
            if tuple(a.shape) != expected:
                raise ValueError(f"actions of {name!r} have shape {tuple(a.shape)}; expected {expected}")
            for act, x in zip(g.actions, (a,) if k == 1 else a.unbind(-1), strict=True):
                env[act.name] = x.clamp(act.low, act.high)
        for blk in plan.order:
            for o, x in blk.evaluate(env).items():
                env[o] = self._as_variable(x, blk, o, b)

        nxt: dict[str, Tensor] = {}
        for st in d.states:
            shape = self._shape(b, st.over)
            x = env[st.next]
            nxt[st.name] = (x[:, 0] if st.over == ECONOMY else x.expand(shape)).to(self.dtype).clone()
        u = self.draw_noise(b, generator) if noise is None else noise
        col = 0
        for s in d.shocks:
            n = self.sizes[s.over]
            idx = getattr(state, f"{s.name}_idx")
            nxt[f"{s.name}_idx"] = self.chains[s.name].step(idx, u[:, col : col + n].reshape(idx.shape))
            col += n
        nxt["t"] = state.t + 1
        outcome = {n: env[n][:, 0] if plan.over[n] == ECONOMY else env[n] for n in plan.variables}
        return self.state_type(**nxt), outcome

    def _state_env(self, state: Any) -> dict[str, Any]:
        """Parameters (floats), states and shock values (``[B, 1]`` or ``[B, n]``) by name."""
        env: dict[str, Any] = dict(self.parameters)
        for st in self.declaration.states:
            x = getattr(state, st.name)
            env[st.name] = x.unsqueeze(-1) if st.over == ECONOMY else x
        for s in self.declaration.shocks:
            x = self.value(state, s.name)
            env[s.name] = x.unsqueeze(-1) if s.over == ECONOMY else x
        return env

    def _reference_decide(self) -> Any:
        """The declared reference policy as ``decide(state) -> {group: [B, n] or [B, n, A]}`` (economy units)."""

        def decide(state: Any) -> dict[str, Tensor]:
            env = self._state_env(state)
            b = int(state.t.shape[0])
            values = {}
            for blk in self.plan.reference:
                for name, x in blk.evaluate(env).items():
                    values[name] = self._as_variable(x, blk, name, b)
            out = {}
            for name, g in self._acting.items():
                cols = [values[a.name] for a in g.actions]
                out[name] = cols[0] if len(cols) == 1 else torch.stack(cols, -1)
            return out

        return decide

    def _as_variable(self, x: Any, blk: EconomicBlock, name: str, batch: int) -> Tensor:
        n = self.sizes[self.plan.over[name]]
        if not isinstance(x, Tensor):
            x = torch.as_tensor(x, device=self.device)
        x = x.to(device=self.device, dtype=self.dtype)
        if x.dim() == 0 or (x.dim() == 2 and x.shape[0] in (1, batch) and x.shape[1] in (1, n)):
            return x.expand(batch, n)
        raise ValueError(
            f"block {blk.name!r} returned {name!r} with shape {tuple(x.shape)}; expected [B, {n}] or [B, 1] "
            f"with B = {batch} (keep the agents' dimension: sum(-1, keepdim=True))"
        )

    # ---------------------------------------------------------------------------------------- protocol
    def observation_block(self, state: Any, group: str, block: str) -> Tensor:
        """State or shock ``block`` for every agent of ``group``: ``[B, n, 1]`` (economy-wide values repeated)."""
        g = self.group(group)
        g.block(block)  # unknown blocks raise with suggestions
        x = self.value(state, block).to(self.dtype)
        if x.dim() == 1:
            x = x.unsqueeze(-1).expand(x.shape[0], g.count)
        return x.unsqueeze(-1)

    def decode(self, group: str, raw: Tensor, state: Any, *, center: str = "reference", shift: float = 0.0) -> Tensor:
        """Map unbounded policy outputs ``u [B, n, A]`` to actions ``[B, n]`` (``A = 1``) or ``[B, n, A]``.

        Per action with bounds ``[low, high]``: ``low + (high - low) sigmoid(u + c + shift)`` with
        ``c = logit((start - low) / (high - low))`` when ``center = "reference"`` (``u = 0`` plays ``start``) and
        ``c = 0`` for ``"none"`` (the midpoint); ``[low, inf)``: ``low + gap exp(u + shift)``, ``gap = start -
        low`` (``reference``) or 1; ``(-inf, high]``: ``high - gap exp(u + shift)``; unbounded: ``start + u +
        shift`` (``reference``) or ``u + shift``.
        """
        if center not in CENTERS:
            raise ValueError(f"center = {center!r}; valid: {', '.join(CENTERS)}")
        if group not in self._acting:
            raise unknown("decision group", group, self._acting)
        acts = self._acting[group].actions
        ref = center == "reference"
        raw = raw.to(self.dtype)
        cols = []
        for i, a in enumerate(acts):
            u = raw[..., i] + shift
            lo, hi, start = float(a.low), float(a.high), a.reference
            if math.isfinite(lo) and math.isfinite(hi):
                c = math.log((start - lo) / (hi - start)) if ref else 0.0
                cols.append(lo + (hi - lo) * torch.sigmoid(u + c))
            elif math.isfinite(lo):
                cols.append(lo + (start - lo if ref else 1.0) * torch.exp(u.clamp(-50.0, 50.0)))
            elif math.isfinite(hi):
                cols.append(hi - (hi - start if ref else 1.0) * torch.exp(u.clamp(-50.0, 50.0)))
            else:
                cols.append(u + (start if ref else 0.0))
        return cols[0] if len(cols) == 1 else torch.stack(cols, -1)

    def rewards(self, outcome: Outcome) -> dict[str, Tensor]:
        """``{group: [B, n]}``, each group's reward variable (economy-wide rewards repeated over the agents)."""
        out = {}
        for name, g in self._acting.items():
            r = outcome[g.reward]
            out[name] = r.unsqueeze(-1).expand(r.shape[0], g.count) if r.dim() == 1 else r
        return out

    def global_state(self, state: Any) -> Tensor:
        """Every state and shock value, flat ``[B, G]`` (centralised critics)."""
        b = int(state.t.shape[0])
        names = [st.name for st in self.declaration.states] + [s.name for s in self.declaration.shocks]
        parts = [self.value(state, n).to(self.dtype).reshape(b, -1) for n in names]
        return torch.cat(parts, -1) if parts else torch.zeros((b, 0), device=self.device, dtype=self.dtype)

    def logged(self, state: Any, outcome: Outcome) -> dict[str, Tensor]:
        """The variables of ``spec.logged``, values of the period (states at its start)."""
        return {n: outcome[n] for n in self.plan.log}


def _state_type(d: EconomyDeclaration) -> type:
    name = "".join(part[:1].upper() + part[1:] for part in re.split(r"\W+", d.id)) + "State"
    names = [st.name for st in d.states] + [f"{s.name}_idx" for s in d.shocks] + ["t"]
    doc = f"State of {d.id}: states [B] or [B, n], shock indices <name>_idx (long), period t [B] (long)."
    return dataclasses.make_dataclass(
        name,
        [(n, Tensor) for n in names],
        frozen=True,
        namespace={"__doc__": doc, "batch_size": property(lambda self: int(self.t.shape[0]))},
    )


# ------------------------------------------------------------------------------------------- registry
_DECLARED: dict[str, EconomyDeclaration] = {}


def build_economy(
    declaration: EconomyDeclaration, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
) -> DeclaredEconomy:
    """Build a declared economy and register its id, so ``make_economy(id, cfg)`` finds it (``cfg``: a declaration
    with that id, or None for the latest one built).

    Raises:
        ConfigError: the id belongs to a hand-written economy.
    """
    if not isinstance(declaration, EconomyDeclaration):
        raise ConfigError(f"build_economy needs an EconomyDeclaration; got {type(declaration).__name__}")
    env_id = declaration.id
    if env_id not in _DECLARED and env_id in economy_ids():
        raise ConfigError(f"economy id {env_id!r} is taken by a hand-written economy; expected a new id")
    economy = DeclaredEconomy(declaration, device=device, dtype=dtype)
    _DECLARED[env_id] = declaration

    @register_economy(env_id)
    def _factory(cfg: EconomyDeclaration | None = None, **kwargs: Any) -> DeclaredEconomy:
        decl = _DECLARED[env_id] if cfg is None else cfg
        if not isinstance(decl, EconomyDeclaration) or decl.id != env_id:
            raise ConfigError(f"economy {env_id}: cfg must be an EconomyDeclaration with id {env_id!r} or None")
        return DeclaredEconomy(decl, **kwargs)

    return economy


# ------------------------------------------------------------------------------------------------ TOML
_ECONOMY_KEYS = (
    "id",
    "description",
    "parameters",
    "groups",
    "shocks",
    "states",
    "blocks",
    "goods",
    "log",
    "horizon",
    "information",
    "history",
    "reference",
)
_GROUP_KEYS = ("name", "count", "actions", "observes", "reward", "doc")
_ACTION_KEYS = ("low", "high", "start", "doc")
_SHOCK_KEYS = ("name", "values", "persistence", "transition", "over", "doc")
_STATE_KEYS = ("name", "over", "init", "next", "doc")
_BLOCK_KEYS = ("name", "use", "outputs", "rename", "params", "good")
_GOOD_KEYS = ("name", "producer", "buyer", "market")


def _table(t: Any, allowed: Sequence[str], where: str) -> Mapping[str, Any]:
    if not isinstance(t, Mapping):
        raise ConfigError(f"{where} = {t!r} is invalid; expected a table")
    for k in t:
        if k not in allowed:
            raise ConfigError(f"{where}: {unknown('key', str(k), allowed)}")
    return t


def _get(t: Mapping[str, Any], key: str, types: type | tuple[type, ...], where: str, what: str, default: Any) -> Any:
    if key not in t:
        if default is _REQUIRED:
            raise ConfigError(f"{where}: missing key {key!r}; expected {what}")
        return default
    v = t[key]
    if isinstance(v, bool) and bool not in (types if isinstance(types, tuple) else (types,)):
        raise ConfigError(f"{where}: {key} = {v!r} is invalid; expected {what}")
    if not isinstance(v, types):
        raise ConfigError(f"{where}: {key} = {v!r} is invalid; expected {what}")
    return v


_REQUIRED = object()


def _strings(t: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    v = _get(t, key, list, where, "a list of names", [])
    if not all(isinstance(x, str) for x in v):
        raise ConfigError(f"{where}: {key} = {v!r} is invalid; expected a list of names")
    return tuple(v)


def _array(t: Mapping[str, Any], key: str, where: str) -> list[Mapping[str, Any]]:
    v = _get(t, key, list, f"{where}", f"an array of tables [[economy.{key}]]", [])
    return v


def declaration_from_toml(table: Mapping[str, Any]) -> EconomyDeclaration:
    """An :class:`EconomyDeclaration` from the ``[economy]`` table of a TOML file (parsed by :mod:`tomllib`).

    Keys: ``id``, ``description``, ``horizon``, ``log``, ``information``, ``history``, ``[economy.parameters]``
    (name = number), ``[economy.reference]`` (action = expression) and arrays of tables: ``[[economy.groups]]``
    (``name``, ``count``, ``actions = { s = { low, high, start } }``, ``observes``, ``reward``),
    ``[[economy.shocks]]`` (``name``, ``values``, ``persistence`` or ``transition``, ``over``),
    ``[[economy.states]]`` (``name``, ``over``, ``init``, ``next``), ``[[economy.blocks]]`` (``name`` and either
    ``use`` with optional ``rename``, ``params``, ``good``, or ``outputs = { Y = "Z * K**alpha" }`` with optional
    ``params``), ``[[economy.goods]]`` (``name``, ``producer``, ``buyer``, ``market``). Unknown keys are rejected
    with suggestions.
    """
    where = "[economy]"
    t = _table(table, _ECONOMY_KEYS, where)
    env_id = _get(t, "id", str, where, "a versioned id such as 'BrockMirman-v1'", _REQUIRED)
    try:
        return _from_table(t, env_id)
    except ConfigError as e:
        if str(e).startswith(("economy ", "[economy]")):
            raise
        raise ConfigError(f"economy {env_id}: {e}") from None


def _from_table(t: Mapping[str, Any], env_id: str) -> EconomyDeclaration:
    where = "[economy]"
    params = _get(t, "parameters", Mapping, where, "a table name = number", {})

    groups = []
    for i, g in enumerate(_array(t, "groups", where)):
        w = f"[[economy.groups]] #{i + 1}"
        g = _table(g, _GROUP_KEYS, w)
        name = _get(g, "name", str, w, "a group name", _REQUIRED)
        w = f"group {name!r}"
        actions = []
        for a_name, a in _get(g, "actions", Mapping, w, "a table name = { low, high, start }", {}).items():
            wa = f"{w} action {a_name!r}"
            a = _table(a, _ACTION_KEYS, wa)
            num = (int, float)
            actions.append(
                Action(
                    name=a_name,
                    low=float(_get(a, "low", num, wa, "a number", -math.inf)),
                    high=float(_get(a, "high", num, wa, "a number", math.inf)),
                    start=_get(a, "start", num, wa, "a number", None),
                    doc=_get(a, "doc", str, wa, "a string", ""),
                )
            )
        groups.append(
            Group(
                name=name,
                count=_get(g, "count", int, w, "an int >= 1", 1),
                actions=tuple(actions),
                observes=_strings(g, "observes", w),
                reward=_get(g, "reward", str, w, "a variable name", ""),
                doc=_get(g, "doc", str, w, "a string", ""),
            )
        )

    shocks = []
    for i, s in enumerate(_array(t, "shocks", where)):
        w = f"[[economy.shocks]] #{i + 1}"
        s = _table(s, _SHOCK_KEYS, w)
        name = _get(s, "name", str, w, "a shock name", _REQUIRED)
        w = f"shock {name!r}"
        transition = _get(s, "transition", list, w, "a list of rows", None)
        shocks.append(
            Shock(
                name=name,
                values=tuple(_get(s, "values", list, w, "a list of numbers", _REQUIRED)),
                persistence=_get(s, "persistence", (int, float), w, "a number in [0, 1]", None),
                transition=transition,
                over=_get(s, "over", str, w, "economy or a group name", ECONOMY),
                doc=_get(s, "doc", str, w, "a string", ""),
            )
        )

    states = []
    for i, st in enumerate(_array(t, "states", where)):
        w = f"[[economy.states]] #{i + 1}"
        st = _table(st, _STATE_KEYS, w)
        name = _get(st, "name", str, w, "a state name", _REQUIRED)
        w = f"state {name!r}"
        init = _get(st, "init", (int, float, list), w, "a number or [low, high]", 1.0)
        states.append(
            StateVariable(
                name=name,
                next=_get(st, "next", str, w, "the variable holding next period's value", _REQUIRED),
                init=tuple(init) if isinstance(init, list) else init,
                over=_get(st, "over", str, w, "economy or a group name", ECONOMY),
                doc=_get(st, "doc", str, w, "a string", ""),
            )
        )

    blocks: list[Any] = []
    for i, b in enumerate(_array(t, "blocks", where)):
        w = f"[[economy.blocks]] #{i + 1}"
        b = _table(b, _BLOCK_KEYS, w)
        name = _get(b, "name", str, w, "a block name", None)
        if name is not None:
            w = f"block {name!r}"
        bparams = _get(b, "params", Mapping, w, "a table name = number", {})
        if ("use" in b) == ("outputs" in b):
            raise ConfigError(f"{w}: expected exactly one of use = 'library_block' or outputs = {{ Y = '...' }}")
        if "use" in b:
            lib = _get(b, "use", str, w, "a library block name", _REQUIRED)
            blocks.append(
                use(
                    lib,
                    name=name,
                    rename=_get(b, "rename", Mapping, w, "a table block_name = 'variable'", {}),
                    params=bparams,
                    good=_get(b, "good", str, w, "a good name", ""),
                )
            )
        else:
            for key in ("rename", "good"):
                if key in b:
                    raise ConfigError(f"{w}: {key} is only valid with use = '...'; expected outputs and params only")
            outputs = _get(b, "outputs", Mapping, w, "a table Y = 'expression'", _REQUIRED)
            blocks.append(_expression_blocks(name or f"block_{i + 1}", outputs, bparams))

    goods = []
    for i, g in enumerate(_array(t, "goods", where)):
        w = f"[[economy.goods]] #{i + 1}"
        g = _table(g, _GOOD_KEYS, w)
        goods.append(
            Good(
                name=_get(g, "name", str, w, "a good name", _REQUIRED),
                producer=_get(g, "producer", str, w, f"a group or '{COMPETITIVE}'", ""),
                buyer=_get(g, "buyer", str, w, "a group", ""),
                market=_get(g, "market", str, w, "a market mechanism such as 'walrasian'", ""),
            )
        )

    return EconomyDeclaration(
        id=env_id,
        description=_get(t, "description", str, where, "a string", ""),
        parameters=dict(params),
        groups=tuple(groups),
        shocks=tuple(shocks),
        states=tuple(states),
        blocks=tuple(blocks),
        goods=tuple(goods),
        log=_strings(t, "log", where),
        horizon=_get(t, "horizon", int, where, "an int >= 1", 200),
        information=_strings(t, "information", where),
        history=_strings(t, "history", where),
        reference=dict(_get(t, "reference", Mapping, where, "a table action = 'expression'", {})),
    )


def read_economy_table(path: str | Path) -> dict[str, Any]:
    """The ``[economy]`` table of a TOML file (other top-level keys are the runner's); one-line errors."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text())
    except OSError as e:
        raise ConfigError(f"economy file {str(p)!r} cannot be read: {e.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"economy file {str(p)!r} is not valid TOML: {e}") from None
    table = data.get("economy")
    if not isinstance(table, dict):
        raise ConfigError(f"economy file {str(p)!r} has no [economy] table; expected one declaring the economy")
    return table


def load_declaration(path: str | Path) -> EconomyDeclaration:
    """The declaration in the ``[economy]`` table of a TOML file."""
    return declaration_from_toml(read_economy_table(path))
