"""Any protocol economy as a Mesa model (one economy, ``B = 1``).

:class:`EconomyModel` reads an economy only through the economy protocol
(:mod:`abm_markets.engine.protocol`), so it runs the investment economy, the logit duopoly and every economy
the constructor declares, with no code of its own per economy:

* one :class:`EconomyAgent` per decision slot of each agent group (``economy.agent_groups()``), named by
  ``economy.agent_names(group)``;
* where actions come from, per action key of ``economy.step`` (:attr:`BatchedEconomy.action_keys`): a
  per-agent decision rule (any object with ``act(obs [D]) -> action``, the
  :class:`~abm_markets.agents.rules.DecisionRule` protocol; one for every agent of the group or one per agent),
  or a batched decision function ``state -> [1, n, *S]`` deciding for the whole key at once (a trained
  policy, a planner);
* each ``step()``: every agent's observation ``economy.observe(state, group)[0, i]`` is read; the agents are
  activated in a random order drawn from the model's ``random`` (``agents.shuffle_do("decide")``), each
  agent with a rule deciding from its observation; batched functions then decide for their keys; the
  actions are gathered into ``{key: [1, n, *S]}`` and ``economy.step(state, actions, generator)`` runs with
  one ``torch.Generator`` seeded with ``seed`` (the initial state is ``economy.initial_state(1, generator)``,
  so the model follows the path of the engine driven directly with the same seed and actions); agents'
  attributes are refreshed from the period's rewards and the per-agent logged variables of their group;
* a :class:`mesa.DataCollector` records, after every step (``Step`` = periods done), each economy-level
  logged variable and the mean of each per-agent / per-good one as model reporters (column = the variable's
  name), and each per-agent logged variable, the agent's ``group`` and its ``reward`` as agent reporters.

The protocol's activation order is not an argument of ``economy.step``; an economy whose outcome depends on
it (the investment economy's posted-price queue) gets it through :meth:`EconomyModel.step_kwargs`, which
:class:`~abm_markets.model.InvestmentModel` overrides. With the generic model such an economy draws its own
order from the generator.
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mesa
import numpy as np
import torch
from torch import Tensor

from abm_markets.agents.rules import DecisionRule
from abm_markets.engine.protocol import ActionLayout, BatchedEconomy, DecisionGroup, LoggedVariable, action_layout
from abm_markets.errors import ConfigError, UserError, unknown

__all__ = ["ActionLayout", "EconomyAgent", "EconomyModel", "Source", "action_layout"]

BatchedSource = Callable[[Any], Any]
"""A batched decision function: ``state -> [1, n, *S]`` (tensor or array) in the economy's units."""

Source = DecisionRule | Sequence[DecisionRule] | BatchedSource
"""Where one action key's actions come from (see :class:`EconomyModel`)."""


# ------------------------------------------------------------------------------------------- actions
def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _scalar_or_array(x: np.ndarray) -> float | np.ndarray:
    return float(x.reshape(())) if x.size == 1 else x.copy()


# --------------------------------------------------------------------------------------------- agent
class EconomyAgent(mesa.Agent):
    """One decision slot of an agent group of a protocol economy.

    Attributes:
        group: Its group's name.
        index: Position ``i`` in the group (``economy.observe(state, group)[0, i]`` is its observation).
        name: ``economy.agent_names(group)[i]`` (``household_0``, ``firm_1``, ...).
        key: The action key its group fills.
        units: Agents it decides for (1 except coalitions; its action is then ``[units, *S]``).
        rule: Its decision rule, or ``None`` when a batched function decides for its key.
        observation: The observation ``[D]`` of the last period (the one it decided on).
        action: Its last action, ``S`` (``[units, *S]`` for ``units > 1``), in the economy's units.
        reward: Its reward in the last period (``economy.rewards(outcome)[group][0, i]``).
        logged: The per-agent logged variables of its group in the last period, by name; each is also an
            attribute of the agent unless the name is one of the attributes above (or no identifier).
    """

    def __init__(self, model: EconomyModel, group: DecisionGroup, index: int, name: str, rule: DecisionRule | None):
        super().__init__(model)
        self.group = group.name
        self.index = index
        self.name = name
        self.key = group.acts_for
        self.units = group.units
        self.rule = rule
        self.observation = np.zeros(0)
        self.action: np.ndarray | None = None
        self.reward: float | np.ndarray = math.nan
        self.logged: dict[str, float | np.ndarray] = {}

    def decide(self) -> None:
        """Join the activation order; an agent with a rule (or an overridden action) sets :attr:`action`."""
        model = self.model
        model.activation_order.append(self)
        override = model.action_override(self)
        if override is not None:
            self.action = override
        elif self.rule is not None:
            self.action = model.agent_action(self, self.rule.act(self.observation))

    def refresh(self, reward: np.ndarray | None, logged: Mapping[str, np.ndarray]) -> None:
        """Set :attr:`reward` and the logged variables (this agent's rows) after a period."""
        if reward is not None:
            self.reward = _scalar_or_array(reward)
        for name, value in logged.items():
            v = _scalar_or_array(value)
            self.logged[name] = v
            if _settable(name):
                setattr(self, name, v)

    def __repr__(self) -> str:
        return f"EconomyAgent({self.name!r}, group={self.group!r})"


_OWN_ATTRIBUTES = frozenset(
    {"group", "index", "name", "key", "units", "rule", "observation", "action", "reward", "logged"}
    | {"unique_id", "model", "pos", "cell"}
)


def _settable(name: str) -> bool:
    """Whether a logged variable ``name`` may become an agent attribute (it shadows nothing)."""
    return (
        name.isidentifier()
        and not keyword.iskeyword(name)
        and not name.startswith("_")
        and name not in _OWN_ATTRIBUTES
        and not hasattr(EconomyAgent, name)
    )


# --------------------------------------------------------------------------------------------- model
class EconomyModel(mesa.Model):
    """Mesa model of one protocol economy (see the module docstring for the period's steps).

    Args:
        economy: Any :class:`~abm_markets.engine.protocol.BatchedEconomy` (``make_economy(env_id, cfg)``).
        sources: One source per action key of ``economy.step``: a decision rule (``act(obs [D]) -> S``)
            for every agent of the group filling the key, a sequence of one rule per agent, or a batched
            function ``state -> [1, n, *S]`` deciding for the whole key (required for keys that only a
            non-agent group such as a planner fills). Actions are in the economy's units
            (``group.action_space``); integer spaces take indices.
        seed: Seeds the activation order (``mesa.Model(rng=seed)``) and the ``torch.Generator`` of the
            initial state and of every period's shocks.
        collect: Record the DataCollector's variables after every step (off for timing runs).

    Attributes:
        economy, seed, generator: As above; ``generator`` is consumed by ``initial_state`` and each step.
        sources: The sources as given (``SolaraViz`` rebuilds the model from them).
        state: The economy's state (``B = 1``); ``outcome`` the last period's outcome (``None`` before a step).
        period: Periods done.
        layouts: ``{key: ActionLayout}`` of ``step``'s actions.
        agents_by_group: ``{group: [EconomyAgent]}`` in index order.
        observations: ``{group: [n, D]}`` NumPy observations of the last period.
        actions: ``{key: [1, n, *S]}`` tensors the last ``economy.step`` received.
        activation_order: Agents in the order they were activated in the last period.
        logged_values: ``{name: ndarray}`` the last period's logged variables of economy 0 (``[]`` for
            economy-level ones, ``[n]`` per agent, ``[J]`` per good).
        logged_variables: ``economy.spec.logged``.
        datacollector: Model reporters: every logged variable by name (economy-level: its value; others:
            the mean over agents or goods); agent reporters: ``group``, the per-agent logged variables of
            agent groups (``None`` for agents of other groups) and ``reward``.

    Raises:
        ConfigError: A source is missing or of no known kind, an action key is unknown, a rule is given for a
            key no agent group fills, or the economy declares a logged variable twice.
    """

    def __init__(
        self,
        economy: BatchedEconomy,
        sources: Mapping[str, Source],
        *,
        seed: int = 0,
        collect: bool = True,
    ) -> None:
        seed = _as_seed(seed)
        super().__init__(rng=seed)
        self.economy = economy
        self.seed = seed
        self.collect = collect
        self.generator = torch.Generator(device=economy.device)
        self.generator.manual_seed(seed)
        self.state: Any = economy.initial_state(1, self.generator)
        self.outcome: Any = None
        self.period = 0
        self.layouts = {key: action_layout(economy, key) for key in economy.action_keys}
        if not isinstance(sources, Mapping):
            raise ConfigError(
                f"sources is a {type(sources).__name__}; expected a mapping {{action key: source}} "
                f"for the keys {list(self.layouts)}"
            )
        self.sources = dict(sources)
        self.rules, self.batched = self._split_sources(self.sources)
        self.logged_variables: tuple[LoggedVariable, ...] = tuple(getattr(economy.spec, "logged", ()))
        self._check_logged()
        self.observations: dict[str, np.ndarray] = {}
        self.actions: dict[str, Tensor] = {}
        self.logged_values: dict[str, np.ndarray] = {}
        self.activation_order: list[mesa.Agent] = []
        self._overrides: dict[str, Tensor] = {}
        self._override_rows: dict[str, np.ndarray] = {}
        self.agents_by_group: dict[str, list[EconomyAgent]] = {}
        self.build_agents()
        self.datacollector = self.build_datacollector()

    # -------------------------------------------------------------------------------------- setup
    def _split_sources(
        self, sources: Mapping[str, Source]
    ) -> tuple[dict[str, list[DecisionRule]], dict[str, BatchedSource]]:
        keys = list(self.layouts)
        for key in sources:
            if key not in self.layouts:
                raise ConfigError(str(unknown(f"action key of {self.economy.env_id}", str(key), keys)))
        rules: dict[str, list[DecisionRule]] = {}
        batched: dict[str, BatchedSource] = {}
        for key, layout in self.layouts.items():
            if key not in sources:
                raise ConfigError(
                    f"no source for action key {key!r} of {self.economy.env_id}; expected sources[{key!r}] = a "
                    f"decision rule (act(obs)) or a batched function state -> {list(layout.full_shape)}"
                )
            src = sources[key]
            g = layout.group
            if isinstance(src, DecisionRule) or _is_rule_list(src):
                if g is None:
                    raise ConfigError(
                        f"action key {key!r} is filled by no agent group; expected a batched function "
                        f"state -> {list(layout.full_shape)} as its source, not a per-agent rule"
                    )
                rule_list = [src] * g.count if isinstance(src, DecisionRule) else list(src)
                if len(rule_list) != g.count:
                    raise ConfigError(f"sources[{key!r}] has {len(rule_list)} rules; expected one for all or {g.count}")
                rules[key] = rule_list
            elif callable(src):
                batched[key] = src
            else:
                raise ConfigError(
                    f"sources[{key!r}] is a {type(src).__name__}; expected a decision rule (act(obs)), a list of "
                    f"them, or a batched function state -> {list(layout.full_shape)}"
                )
        return rules, batched

    def _check_logged(self) -> None:
        seen: set[str] = set()
        for var in self.logged_variables:
            if var.name in seen:
                raise ConfigError(f"economy {self.economy.env_id} declares logged variable {var.name!r} twice")
            seen.add(var.name)

    def build_agents(self) -> None:
        """Create one :class:`EconomyAgent` per slot of each agent group (subclasses may create others)."""
        for g in self.economy.agent_groups():
            names = self.economy.agent_names(g.name)
            rules = self.rules.get(g.acts_for)
            self.agents_by_group[g.name] = [
                EconomyAgent(self, g, i, names[i], rules[i] if rules is not None else None) for i in range(g.count)
            ]

    @property
    def agent_variables(self) -> tuple[LoggedVariable, ...]:
        """Logged variables declared over an agent group (each agent holds its row)."""
        return tuple(v for v in self.logged_variables if v.over in self.agents_by_group)

    def build_datacollector(self) -> mesa.DataCollector:
        """The DataCollector described in the class docstring (subclasses may record other variables)."""
        model_reporters = {v.name: (lambda m, n=v.name: m.model_value(n)) for v in self.logged_variables}
        agent_reporters: dict[str, Any] = {"group": "group"}
        for v in self.agent_variables:
            agent_reporters[v.name] = lambda a, n=v.name: a.logged.get(n) if isinstance(a, EconomyAgent) else None
        agent_reporters.setdefault("reward", "reward")
        return mesa.DataCollector(model_reporters=model_reporters, agent_reporters=agent_reporters)

    # ------------------------------------------------------------------------------------ reporters
    def model_value(self, name: str) -> float:
        """Logged variable ``name`` of the last period as one number: its value (economy-level) or its mean."""
        v = self.logged_values.get(name)
        if v is None or v.size == 0:
            return math.nan
        return float(v.reshape(())) if v.size == 1 else float(v.mean())

    def agents_of(self, group: str) -> list[EconomyAgent]:
        """The agents of ``group`` in index order."""
        if group not in self.agents_by_group:
            raise unknown("agent group", group, self.agents_by_group)
        return self.agents_by_group[group]

    # ---------------------------------------------------------------------------------- decisions
    def agent_action(self, agent: EconomyAgent, raw: Any) -> np.ndarray:
        """A rule's output as the agent's action ``S`` (``[units, *S]``): float64, or int64 for integer spaces.

        Raises:
            UserError: Wrong number of entries, or non-integer values for an integer action space.
        """
        layout = self.layouts[agent.key]
        shape = layout.shape if agent.units == 1 else (agent.units, *layout.shape)
        arr = _numpy(raw)
        if arr.size != math.prod(shape):
            raise UserError(f"the rule of {agent.name} returned an action of shape {arr.shape}; expected {shape}")
        if layout.discrete:
            integral = np.issubdtype(arr.dtype, np.integer) or (
                np.issubdtype(arr.dtype, np.number) and bool(np.all(np.equal(np.mod(arr, 1), 0)))
            )
            if not integral:
                raise UserError(f"the rule of {agent.name} returned {arr.tolist()!r}; expected action indices")
            return arr.astype(np.int64).reshape(shape)
        return arr.astype(np.float64).reshape(shape)

    def action_override(self, agent: EconomyAgent) -> np.ndarray | None:
        """The agent's action given to :meth:`step` (``None``: it decides itself)."""
        rows = self._override_rows.get(agent.key)
        return None if rows is None else rows[agent.index].copy()

    def deciders(self, key: str) -> list[Any]:
        """Objects whose ``action`` fills ``key`` with a per-agent rule, in slot order."""
        g = self.layouts[key].group
        assert g is not None
        return list(self.agents_by_group[g.name])

    def step_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments of ``economy.step`` (none: the protocol's step takes none)."""
        return {}

    # --------------------------------------------------------------------------------------- step
    def step(self, actions: Mapping[str, Any] | None = None) -> None:
        """One period.

        Args:
            actions: Optional actions overriding the sources, ``{key: [n, *S] or [1, n, *S]}`` (the agents are
                still activated in a random order, and their ``action`` is the given one).

        Raises:
            ConfigError: An unknown action key.
            UserError: Actions of the wrong shape (given, or returned by a rule or a batched function).
        """
        self._set_overrides(actions or {})
        self.activation_order = []
        self.observe()
        self.activate()
        self.advance()
        self.period += 1
        if self.collect:
            self.datacollector.collect(self)

    def _set_overrides(self, actions: Mapping[str, Any]) -> None:
        self._overrides, self._override_rows = {}, {}
        for key, value in actions.items():
            if value is None:
                continue
            if key not in self.layouts:
                raise ConfigError(str(unknown(f"action key of {self.economy.env_id}", str(key), self.layouts)))
            layout = self.layouts[key]
            t = layout.tensor(value, f"actions[{key!r}]")
            self._overrides[key] = t
            if layout.group is not None:
                g = layout.group
                rows = t[0].cpu().numpy().reshape(g.count, *(() if g.units == 1 else (g.units,)), *layout.shape)
                self._override_rows[key] = rows

    def observe(self) -> None:
        """Read every agent group's observations ``[n, D]`` and give each agent its row."""
        self.observations = {
            g.name: self.economy.observe(self.state, g.name)[0].detach().double().cpu().numpy()
            for g in self.economy.agent_groups()
        }
        for group, agents in self.agents_by_group.items():
            obs = self.observations[group]
            for agent in agents:
                agent.observation = obs[agent.index]

    def activate(self) -> None:
        """Activate every agent once, in a random order from the model's ``random``."""
        self.agents.shuffle_do("decide")

    def gather(self) -> dict[str, Tensor]:
        """This period's actions ``{key: [1, n, *S]}``: overrides, batched functions, else the agents' actions."""
        actions: dict[str, Tensor] = {}
        for key, layout in self.layouts.items():
            if key in self._overrides:
                actions[key] = self._overrides[key]
            elif key in self.batched:
                actions[key] = layout.tensor(self.batched[key](self.state), f"the batched source of {key!r}")
            else:
                acts = [d.action for d in self.deciders(key)]
                arr = np.stack(acts)
                kw = {"device": layout.device, "dtype": layout.dtype}
                actions[key] = torch.as_tensor(arr, **kw).reshape(layout.full_shape)
        return actions

    def advance(self) -> None:
        """Gather the actions, run ``economy.step`` and refresh the agents."""
        self.actions = self.gather()
        self.state, self.outcome = self.economy.step(self.state, self.actions, self.generator, **self.step_kwargs())
        self.refresh(self.outcome)

    def refresh(self, outcome: Any) -> None:
        """Store the period's logged variables and give each agent its reward, logged rows and action."""
        logged = self.economy.logged(self.state, outcome)
        missing = [v.name for v in self.logged_variables if v.name not in logged]
        if missing:
            raise KeyError(f"economy {self.economy.env_id}: logged() did not return declared variables {missing}")
        self.logged_values = {name: v[0].detach().double().cpu().numpy() for name, v in logged.items()}
        if not self.agents_by_group:
            return
        rewards = self.economy.rewards(outcome)
        for group, agents in self.agents_by_group.items():
            n = len(agents)
            r = rewards.get(group)
            r_rows = None if r is None else r[0].detach().double().cpu().numpy().reshape(n, -1)
            own = {v.name: self.logged_values[v.name].reshape(n, -1) for v in self.logged_variables if v.over == group}
            key = agents[0].key
            batched_rows = None
            if key in self.batched and key not in self._overrides:
                layout = self.layouts[key]
                a = self.actions[key][0].detach().cpu().numpy()
                batched_rows = a.reshape(n, *(() if agents[0].units == 1 else (agents[0].units,)), *layout.shape)
            for agent in agents:
                i = agent.index
                agent.refresh(None if r_rows is None else r_rows[i], {k: v[i] for k, v in own.items()})
                if batched_rows is not None:
                    agent.action = batched_rows[i].copy()


def _is_rule_list(src: Any) -> bool:
    return (
        isinstance(src, Sequence)
        and not isinstance(src, str)
        and len(src) > 0
        and all(isinstance(r, DecisionRule) for r in src)
    )


def _as_seed(seed: Any) -> int:
    """The seed as an ``int`` (``SolaraViz`` text inputs give strings)."""
    try:
        if isinstance(seed, bool):
            raise TypeError
        value = int(str(seed).strip()) if isinstance(seed, str) else int(seed)
        if isinstance(seed, float) and seed != value:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"seed = {seed!r} is invalid; expected an integer") from None
    if value < 0:
        raise ConfigError(f"seed = {seed!r} is invalid; expected an integer >= 0")
    return value
