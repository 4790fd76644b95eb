"""Gymnasium ``Env`` over one decision slot of any protocol economy; the single-household planner on top.

:class:`EconomyEnv` is the single-agent view of one slot of a protocol economy (``B = 1``):

* the slot: a group with one slot (``group="households"`` of a one-household economy, a declared one-agent
  economy), or one agent of a larger group by name (``group="firm_0"``); by default the economy's
  ``default_group``;
* observation (``float32``): ``economy.observe(state, group)[0, i]`` in ``economy.observation_space(group)``;
* action: ``group.action_space`` in the economy's units (``Box`` of shape ``(J,)`` or ``()``, or
  ``Discrete``); a slot acting for ``units > 1`` agents (a planner) acts with ``units`` of them stacked,
  shape ``(units, *shape)``;
* every other action ``step`` needs comes from ``fixed = {action_key: f}``: ``f(state)`` (or a constant)
  gives the key's actions ``[1, n, *shape]`` (``[n, *shape]`` accepted); under the slot's own key the slot's
  entries are overwritten by the agent's action;
* reward: the slot's reward ``economy.rewards(outcome)[group][0, i]``;
* info: the logged variables (``economy.spec.logged``) over the slot's group, its own entry, and the
  economy-level ones;
* episode: never terminates, truncated after the horizon (``economy.cfg.horizon``, else ``horizon``,
  default 200);
* ``normalize_obs=True``: observations mapped exactly and monotonically into ``Box(0, 1)``
  (:func:`~abm_markets.envs._common.normalise`: finite bounds linearly, ``[0, inf)`` entries as ``x / (1 + x)``,
  so a ratio to the steady state of 1 is 0.5), for libraries that need bounded observations;
* render modes (:data:`~abm_markets.envs._common.RENDER_MODES`): ``None``; ``"ansi"`` a one-line text summary;
  ``"rgb_array"`` a ``uint8 [64, W, 3]`` bar chart of the normalised observation (grey line: steady state).

``reset(seed=s)`` seeds the torch generator with ``s``, so an episode equals the engine's
``initial_state(1, g)`` then ``step(..., g)`` with ``g.manual_seed(s)``.

:class:`InvestmentPlannerEnv` (``abm_markets/InvestmentPlanner-v1``) is the planner economy of seed 000,
section 3, with ``N^h = 1`` (``N^c`` goods allowed):

* observation (``float32``, ``Box(0, inf, (D,))``): the blocks ``cfg.household_obs``, by default
  ``("own_capital", "own_tfp")``: capital ``K_j / K_ss`` and TFP ``Z``;
* action (``float32``, ``Box(0, 1, (J,))``): spending shares of output ``s_j`` (the engine clips and scales
  them onto the simplex, so ``C = (1 - sum_j s_j) Y >= 0``);
* reward: ``u(C)`` (log by default);
* dynamics: ``I_j = sqrt(2 s_j Y / phi)``, ``K'_j = (1 - delta) K_j + I_j``, ``Z`` a Markov chain;
* episode: never terminates, truncated after ``cfg.horizon`` periods;
* settings: ``gymnasium.make(ENV_ID, beta=0.95, n_capital_goods=2, ...)``: any ``InvestmentConfig`` field
  (strings parsed as on the command line), on top of :func:`default_planner_config`.

:class:`CenteredActions` is the project trainer's action parametrisation as a Gymnasium ``ActionWrapper``
(unbounded policy outputs centred on the economy's reference action, e.g. the steady-state spending share);
:func:`decide_from_policy` turns a policy on an env's observations into an engine decision function for
the project's evaluators (:mod:`abm_markets.learn.evaluate`). See ``docs/interop.md``.

Version history: :data:`abm_markets.engine.investment.ENV_HISTORY`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy, Outcome
from abm_markets.engine.protocol import ActionLayout, BatchedEconomy, DecisionGroup, action_layout
from abm_markets.envs._common import (
    ENV_KEYWORDS,
    action_array,
    bar_image,
    check_render_mode,
    config_from_settings,
    normalise,
    normalised_space,
    resolve_horizon,
    slot_action_space,
    split_logged,
    summary_line,
    to_python,
)
from abm_markets.errors import ConfigError, UserError, unknown

__all__ = [
    "ENV_ID",
    "CenteredActions",
    "EconomyEnv",
    "InvestmentPlannerEnv",
    "decide_from_policy",
    "default_planner_config",
]

ENV_ID = "abm_markets/InvestmentPlanner-v1"

FixedAction = Callable[[Any], Any] | Any
"""A fixed action: ``f(state) -> [1, n, *shape]`` (or ``[n, *shape]``), or such a constant."""


def _resolve_slot(economy: BatchedEconomy, group: str | None) -> tuple[DecisionGroup, int, str]:
    """``(group, slot index, slot name)`` of the view ``group`` (a group name or an agent name)."""
    if group is None:
        if not economy.default_group and not economy.agent_groups():
            raise ConfigError(f"economy {economy.env_id} has no agent group; expected group= naming a group")
        group = economy.default_group or economy.agent_groups()[0].name
    names = [g.name for g in economy.groups]
    if group in names:
        g = economy.group(group)
        if g.count != 1:
            agents = economy.agent_names(g.name) if g.agent else []
            hint = f" or one agent by name ({', '.join(agents[:4])}{', ...' if len(agents) > 4 else ''})"
            raise ConfigError(
                f"group {group!r} of {economy.env_id} has {g.count} slots; expected a group with one slot"
                + (hint if agents else "")
            )
        return g, 0, group
    agents = {}
    for g in economy.agent_groups():
        for i, a in enumerate(economy.agent_names(g.name)):
            agents[a] = (g, i)
    if group in agents:
        g, i = agents[group]
        return g, i, group
    raise ConfigError(str(unknown(f"group or agent of {economy.env_id}", group, [*names, *agents])))


class EconomyEnv(gymnasium.Env):
    """Single-agent env over one decision slot of a protocol economy (see the module docstring).

    Args:
        economy: A protocol economy (:class:`~abm_markets.engine.protocol.BatchedEconomy`).
        group: A group with one slot, or the name of one agent (``economy.agent_names``); default the
            economy's ``default_group``.
        fixed: ``{action_key: f}`` for every action key the slot does not fill alone: ``f(state)`` (or a
            constant) is that key's actions ``[1, n, *shape]`` (``torch.long`` for discrete actions).
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        horizon: Episode length for economies whose config has no ``horizon`` (default 200).
        normalize_obs: Map observations into ``Box(0, 1)`` (:func:`~abm_markets.envs._common.normalise`).

    Attributes:
        economy: The economy.
        group: The slot's :class:`~abm_markets.engine.protocol.DecisionGroup`.
        slot: The slot's index within its group.
        agent: The slot's name.
        horizon: Periods per episode.
        raw_observation_space: The economy's observation space (the env's own without ``normalize_obs``).

    Raises:
        ConfigError: Unknown group or agent, a group with several slots, an action key neither the slot nor
            ``fixed`` fills, a ``fixed`` key the economy does not have (or the slot fills alone), an invalid
            horizon.
        UserError: ``render_mode`` is not ``None``, ``"ansi"`` or ``"rgb_array"``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        economy: BatchedEconomy,
        *,
        group: str | None = None,
        fixed: Mapping[str, FixedAction] | None = None,
        render_mode: str | None = None,
        horizon: int | None = None,
        normalize_obs: bool = False,
    ) -> None:
        check_render_mode(render_mode)
        self.economy = economy
        self.render_mode = render_mode
        self.horizon = resolve_horizon(economy, horizon)
        self.group, self.slot, self.agent = _resolve_slot(economy, group)
        g = self.group
        self._key = g.acts_for
        self._layouts: dict[str, ActionLayout] = {k: action_layout(economy, k) for k in economy.action_keys}
        own = self._layouts[self._key]
        self._own_slice = slice(self.slot * g.units, (self.slot + 1) * g.units)
        fixed = dict(fixed or {})
        for key in fixed:
            if key not in self._layouts:
                raise ConfigError(str(unknown(f"action key of {economy.env_id} in fixed", key, self._layouts)))
        if own.n == g.units and self._key in fixed:
            raise ConfigError(
                f"fixed[{self._key!r}] is the action of {self.agent!r} itself; expected fixed actions only for "
                f"other action keys ({', '.join(k for k in self._layouts if k != self._key) or 'none'})"
            )
        for key, layout in self._layouts.items():
            if key == self._key and own.n == g.units:
                continue
            if key not in fixed:
                what = "the other agents' actions" if key == self._key else "actions"
                raise ConfigError(
                    f"EconomyEnv of {self.agent!r} needs {what} under action key {key!r}; expected "
                    f"fixed={{{key!r}: callable(state) -> tensor {layout.full_shape}}}"
                )
        self.fixed = fixed
        obs_space = economy.observation_space(g.name)
        self.raw_observation_space = gymnasium.spaces.Box(obs_space.low, obs_space.high, obs_space.shape, np.float32)
        self.normalize_obs = bool(normalize_obs)
        self.observation_space = (
            normalised_space(self.raw_observation_space) if self.normalize_obs else self.raw_observation_space
        )
        self.action_space = slot_action_space(g)
        self._generator = torch.Generator(device=economy.device)
        self._seeded = False
        self._state: Any = None
        self._last: Any = None
        self._logged: dict[str, torch.Tensor] | None = None
        self._t = 0

    # ------------------------------------------------------------------------------------------- api
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: ``economy.initial_state(1, g)``, ``g`` seeded with ``seed`` when given (else once
        from the env's ``np_random``, then continued)."""
        super().reset(seed=seed)
        if seed is not None:
            self._generator.manual_seed(int(seed))
            self._seeded = True
        elif not self._seeded:
            self._generator.manual_seed(int(self.np_random.integers(2**63 - 1)))
            self._seeded = True
        self._state = self.economy.initial_state(1, self._generator)
        self._last = None
        self._logged = None
        self._t = 0
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """One period with the agent's ``action`` and the fixed actions of everybody else.

        Raises:
            UserError: Called before ``reset``, or an action (the agent's or a fixed one) has the wrong shape.
        """
        if self._state is None:
            raise UserError(f"{type(self).__name__}.step called before reset()")
        eco, g = self.economy, self.group
        own = self._layouts[self._key]
        mine = torch.as_tensor(action_array(action, own, g.units, self.agent), dtype=own.dtype, device=own.device)
        acts: dict[str, torch.Tensor] = {}
        for key, layout in self._layouts.items():
            if key in self.fixed:
                f = self.fixed[key]
                value = f(self._state) if callable(f) else f
                acts[key] = layout.tensor(value, f"fixed[{key!r}]").clone()
        if self._key in acts:
            acts[self._key][0, self._own_slice] = mine
        else:
            acts[self._key] = mine.unsqueeze(0)
        self._state, out = eco.step(self._state, acts, self._generator)
        self._last = out
        self._t += 1
        self._logged = eco.logged(self._state, out)
        reward = float(eco.rewards(out)[g.name][0, self.slot])
        truncated = self._t >= self.horizon
        return self._observation(), reward, False, truncated, self._info(out)

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: one line of text (:meth:`_ansi`); ``"rgb_array"``: ``uint8 [64, W, 3]``, one bar per entry
        of the normalised observation (:func:`~abm_markets.envs._common.bar_image`); ``None`` without a render
        mode or before ``reset``."""
        if self.render_mode is None or self._state is None:
            return None
        if self.render_mode == "ansi":
            return self._ansi()
        raw = self.observe_batch(self._state, normalized=False)[0]
        low, high = self.raw_observation_space.low, self.raw_observation_space.high
        return bar_image([normalise(raw, low, high)], [0])

    def observe_batch(self, state: Any, *, normalized: bool | None = None) -> np.ndarray:
        """The slot's observation ``[B, D]`` (``float32``) in a batch of engine states, as ``step`` returns it
        (``normalized`` defaults to the env's ``normalize_obs``)."""
        o = self.economy.observe(state, self.group.name)[:, self.slot]
        x = o.detach().cpu().double().numpy()
        normalized = self.normalize_obs if normalized is None else normalized
        if normalized:
            return normalise(x, self.raw_observation_space.low, self.raw_observation_space.high)
        return x.astype(np.float32)

    # --------------------------------------------------------------------------------------- helpers
    def _ansi(self) -> str:
        """One line: the period and the last period's logged values (economy-level ones, means of the others)."""
        return summary_line(self._t, self.economy, self._logged)

    def _observation(self) -> np.ndarray:
        return self.observe_batch(self._state)[0]

    def _info(self, outcome: Any) -> dict[str, Any]:
        """The logged variables over the slot's group (its own entry; a slot of ``units > 1`` agents: those
        over the group it acts for, its agents' entries) and the economy-level ones."""
        assert self._logged is not None  # set by step
        by_group, common = split_logged(self.economy, self._logged)
        g = self.group
        if g.units == 1:
            own = {k: to_python(v[self.slot]) for k, v in by_group.get(g.name, {}).items()}
        else:
            own = {k: to_python(v[self._own_slice]) for k, v in by_group.get(g.acts_for, {}).items()}
        return own | common


def default_planner_config(**overrides: Any) -> InvestmentConfig:
    """``InvestmentConfig`` with one household, the planner formulation, and own capital and TFP observed."""
    kw: dict[str, Any] = {"n_households": 1, "formulation": "planner", "household_obs": ("own_capital", "own_tfp")}
    kw.update(overrides)
    return InvestmentConfig(**kw)


class InvestmentPlannerEnv(EconomyEnv):
    """Single-household stochastic planner (see the module docstring).

    Args:
        cfg: An ``InvestmentConfig`` with ``n_households = 1`` and ``formulation = "planner"``
            (default :func:`default_planner_config`).
        render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``.
        normalize_obs: Map observations into ``Box(0, 1)`` (see :class:`EconomyEnv`).
        device, dtype: Of the engine.
        **settings: ``InvestmentConfig`` fields replacing those of ``cfg`` (``beta=0.95``); what
            ``gymnasium.make(ENV_ID, **settings)`` passes.

    Raises:
        ConfigError: One line: an unknown keyword (close ones suggested), a bad value, or a config this env
            cannot run (several households, the market formulation, quantity actions).

    Info after a step: ``consumption``, ``output``, ``investment`` and ``capital`` (lists over goods), and the
    economy's other logged household variables and ``welfare``.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

    def __init__(
        self,
        cfg: InvestmentConfig | None = None,
        *,
        render_mode: str | None = None,
        normalize_obs: bool = False,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
        **settings: Any,
    ) -> None:
        cfg = cfg if cfg is not None else default_planner_config()
        cfg = config_from_settings(cfg, settings, ENV_ID, ENV_KEYWORDS)
        if cfg.n_households != 1:
            raise ConfigError(
                f"InvestmentConfig.n_households = {cfg.n_households} is invalid for {ENV_ID}; expected 1 "
                "(use InvestmentParallelEnv for several households)"
            )
        if cfg.formulation != "planner":
            raise ConfigError(
                f"InvestmentConfig.formulation = {cfg.formulation!r} is invalid for {ENV_ID}; expected 'planner'"
            )
        if cfg.action != "shares":
            raise ConfigError(f"InvestmentConfig.action = {cfg.action!r} is invalid for {ENV_ID}; expected 'shares'")
        check_render_mode(render_mode)
        self.cfg = cfg
        economy = InvestmentEconomy(cfg, device=device, dtype=dtype)
        super().__init__(economy, group="households", render_mode=render_mode, normalize_obs=normalize_obs)
        self.economy: InvestmentEconomy = economy

    def _ansi(self) -> str:
        """``t=.. K=[..] C=..`` (capital per good, last consumption)."""
        k = self._state.capital[0, 0].double().cpu().tolist()
        c = float("nan") if self._last is None else float(self._last.consumption[0, 0])
        return f"t={int(self._state.t[0])} K={k} C={c:.4f}"

    def _info(self, outcome: Outcome) -> dict[str, Any]:
        info = super()._info(outcome)
        info["investment"] = outcome.investment[0, 0].double().cpu().tolist()
        info["capital"] = self._state.capital[0, 0].double().cpu().tolist()
        return info


CENTERS = {"steady_state": "reference", "reference": "reference", "none": "none"}
"""``center`` of :class:`CenteredActions` (``TrainConfig.action_center``) -> ``economy.decode``'s ``center``."""

_PASS_THROUGH = ("TimeLimit", "OrderEnforcing", "PassiveEnvChecker", "Monitor", "RecordEpisodeStatistics")
"""Wrappers that change neither observations nor actions (:func:`decide_from_policy` passes them)."""


class CenteredActions(gymnasium.ActionWrapper):
    """The project trainer's action parametrisation (``TrainConfig.action_center``, ``init_shift``) as a wrapper.

    The policy outputs ``u`` in ``Box(-bound, bound, (raw_dim,))`` (the group's ``raw_dim``: ``J`` for a
    household) and the economy decodes it (``economy.decode``): for spending shares, logits ``[u + c, 0]``
    through a softmax with consumption last, ``c`` the logit of the steady-state share per good, so ``u = 0``
    plays the deterministic steady-state rule (``center = "steady_state"``/``"reference"``) or half of output
    (``"none"``); ``shift`` moves the centre (``log 2``: about twice the steady-state share, a deliberately
    wrong start). A Gaussian policy with mean 0 then starts at the centre and its noise is multiplicative,
    never clipped at a zero share: see ``docs/interop.md`` for why stable-baselines3 needs this.

    Args:
        env: An :class:`EconomyEnv` (possibly wrapped) whose slot has continuous actions.
        center: ``steady_state`` (= ``reference``) or ``none``.
        shift: Shift of the centre (the economy's log/logit units).
        bound: Half-width of the raw action box (SB3 clips sampled actions to it).

    Raises:
        ConfigError: Unknown ``center``, a non-positive ``bound``, or a slot with discrete actions.
    """

    def __init__(self, env: gymnasium.Env, *, center: str = "steady_state", shift: float = 0.0, bound: float = 10.0):
        super().__init__(env)
        base = env.unwrapped
        if not isinstance(base, EconomyEnv):
            raise ConfigError(f"CenteredActions wraps an EconomyEnv; got {type(base).__name__}")
        if center not in CENTERS:
            raise ConfigError(str(unknown("center of CenteredActions", center, CENTERS)))
        if not bound > 0:
            raise ConfigError(f"CenteredActions bound = {bound!r} is invalid; expected a number > 0")
        g = base.group
        if g.n_discrete or not isinstance(base.action_space, gymnasium.spaces.Box):
            raise ConfigError(f"group {g.name!r} has discrete actions; expected a Box action space for CenteredActions")
        self.center, self.shift = CENTERS[center], float(shift)
        self.action_space = gymnasium.spaces.Box(-bound, bound, (g.raw_dim,), np.float32)

    def action(self, action: Any) -> np.ndarray:
        """Decode one raw action ``[raw_dim]`` at the env's current state."""
        return self.decode(np.asarray(action)[None], self.env.unwrapped._state)[0]

    def decode(self, raw: np.ndarray, state: Any) -> np.ndarray:
        """Raw actions ``[B, raw_dim]`` at engine states (batch ``B``) -> the env's actions ``[B, *A]``."""
        base = self.env.unwrapped
        eco = base.economy
        u = torch.as_tensor(np.asarray(raw, np.float64), dtype=eco.dtype, device=eco.device)
        u = u.reshape(u.shape[0], 1, base.group.raw_dim)
        a = eco.decode(base.group.name, u, state, center=self.center, shift=self.shift)
        shape = (u.shape[0], *base.action_space.shape)
        return a.detach().cpu().numpy().reshape(shape).astype(base.action_space.dtype)


def decide_from_policy(
    env: gymnasium.Env, policy: Callable[[np.ndarray], Any]
) -> Callable[[Any], dict[str, torch.Tensor]]:
    """An engine decision function ``state -> {action_key: [B, n, *S]}`` from a policy on an env's observations.

    Lets the project's evaluators (:mod:`abm_markets.learn.evaluate`: fixed shock paths, DP comparisons) score
    a policy trained by another library on the env. ``policy`` maps a batch of observations ``[B, D]``, as
    ``env`` (outermost wrapper) observes them, to actions ``[B, *A]`` in ``env``'s action space, e.g.
    ``lambda obs: model.predict(obs, deterministic=True)[0]`` for a stable-baselines3 model.

    Between ``env`` and its :class:`EconomyEnv`: observation wrappers are applied to the batch (inner first;
    their ``observation`` must accept a batch), action wrappers' ``action`` (outer first; :class:`CenteredActions`
    decodes at the batch's states); ``TimeLimit``, ``OrderEnforcing``, ``PassiveEnvChecker``, ``Monitor`` and
    ``RecordEpisodeStatistics`` pass through.

    Raises:
        ConfigError: A wrapper of another kind, or a slot whose action key needs fixed actions of others.
    """
    obs_wrappers: list[gymnasium.ObservationWrapper] = []
    act_wrappers: list[gymnasium.ActionWrapper] = []
    e = env
    while isinstance(e, gymnasium.Wrapper):
        if isinstance(e, gymnasium.ObservationWrapper):
            obs_wrappers.insert(0, e)
        elif isinstance(e, gymnasium.ActionWrapper):
            act_wrappers.append(e)
        elif not isinstance(e, gymnasium.RewardWrapper) and type(e).__name__ not in _PASS_THROUGH:
            raise ConfigError(
                f"decide_from_policy cannot see through {type(e).__name__}; expected observation, action or reward "
                f"wrappers, or {', '.join(_PASS_THROUGH)}"
            )
        e = e.env
    base = e
    if not isinstance(base, EconomyEnv):
        raise ConfigError(f"decide_from_policy needs an EconomyEnv; got {type(base).__name__}")
    if base.fixed:
        raise ConfigError(
            f"decide_from_policy: {base.agent!r} acts beside fixed actions ({', '.join(base.fixed)}); expected a slot "
            "that fills its action key alone"
        )
    layout = base._layouts[base._key]
    units = base.group.units

    def decide(state: Any) -> dict[str, torch.Tensor]:
        obs = base.observe_batch(state)
        for w in obs_wrappers:
            obs = w.observation(obs)
        act = np.asarray(policy(obs))
        for w in act_wrappers:
            act = w.decode(act, state) if isinstance(w, CenteredActions) else np.asarray(w.action(act))
        b = act.shape[0]
        arr = torch.as_tensor(np.asarray(act, np.float64).reshape(b, units, *layout.shape))
        return {base._key: arr.to(dtype=layout.dtype, device=layout.device)}

    return decide
