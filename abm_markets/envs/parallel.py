"""PettingZoo ``ParallelEnv`` over any protocol economy (``B = 1``); the investment economy's env on top.

:class:`EconomyParallelEnv` reads an economy only through :mod:`abm_markets.engine.protocol`:

* agents: for every group of ``economy.agent_groups()``, the names ``economy.agent_names(group)``
  (``household_i``, ``firm_j_m``, ``firm_0`` ...); everyone moves at once each period;
* observation of agent ``i`` of a group: ``economy.observe(state, group)[0, i]`` as ``float32``, in
  ``economy.observation_space(group)`` (the group's information structure, subgroups included);
* action: ``group.action_space`` in the economy's units (a ``Box`` of shape ``(J,)`` or ``()``, or
  ``Discrete``); ``step`` gathers each action key's actions into ``[1, n, *shape]`` (``torch.long`` for
  discrete actions, the economy's dtype otherwise) and calls ``economy.step(state, actions, generator)``;
* reward: ``economy.rewards(outcome)[group][0, i]``;
* infos: the logged variables (``economy.spec.logged``) declared over the agent's group, its own entry,
  and the economy-level ones (every agent);
* no agent terminates; all are truncated after the horizon (``economy.cfg.horizon``, else the
  ``horizon`` argument, default 200); ``state()`` is ``economy.global_state(state)[0]``;
* ``normalize_obs=True``: every agent's observation mapped exactly and monotonically into ``Box(0, 1)``
  (:func:`~abm_markets.envs._common.normalise`), for wrappers that need bounded observations (SuperSuit's
  ``normalize_obs_v0``);
* render modes: ``None``; ``"ansi"`` a one-line text summary; ``"rgb_array"`` a ``uint8 [64, W, 3]`` bar chart,
  one bar per entry of each agent's normalised observation, a colour per agent group.

Randomness: one ``torch.Generator`` seeded in ``reset(seed=...)``, so an episode equals the engine's
``initial_state(1, g)`` then ``step(..., g)`` with ``g.manual_seed(seed)``.

:class:`InvestmentParallelEnv` is the investment economy's env (agents ``household_i`` and, with
``firms = "decision"``, ``firm_j_m``, seller ``m`` of good ``j``):

* household observation: the blocks ``cfg.household_obs`` (capital relative to the steady state, TFP levels,
  prices relative to the steady-state price, ``t / horizon``), ``Box(0, inf, (D,))``; firm observation: the
  blocks ``own_price, own_demand, good_capital, agg_tfp`` (own good's last price and own last demand signal
  relative to the steady state, mean capital of the good, mean TFP), ``Box(0, inf, (4,))``;
* household action: ``Box(0, 1, (J,))`` spending shares (``action = "shares"``; the engine clips and scales
  them onto the simplex) or ``Box(0, K_ss, (J,))`` investment requests (``"quantities"``); firm action:
  ``Box(0, (10 p_ss, 10 q_ss))`` (posted price, capacity);
* rewards: households ``u(C_i)`` (minus the budget penalty if set), firms their profit;
* settings: :func:`parallel_env` ``(**settings)`` (PettingZoo's module-level constructor) takes any
  ``InvestmentConfig`` field on top of the default market economy (``formulation="market", n_households=2``).

Version history: see :data:`abm_markets.engine.investment.ENV_HISTORY` and the economies' ``spec.history``
(``metadata["name"]`` is the engine's versioned id).
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from pettingzoo import ParallelEnv

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy, Outcome
from abm_markets.engine.protocol import BatchedEconomy, action_layout
from abm_markets.envs._common import (
    ENV_KEYWORDS,
    action_array,
    bar_image,
    check_render_mode,
    config_from_settings,
    entropy_seed,
    normalise,
    normalised_space,
    resolve_horizon,
    slot_action_space,
    split_logged,
    summary_line,
    to_python,
)
from abm_markets.errors import ConfigError, UserError

__all__ = ["EconomyParallelEnv", "InvestmentParallelEnv", "parallel_env"]

_entropy_seed = entropy_seed


class EconomyParallelEnv(ParallelEnv):
    """Simultaneous-move multi-agent env over any protocol economy (see the module docstring).

    Args:
        economy: A protocol economy (:class:`~abm_markets.engine.protocol.BatchedEconomy`), e.g. from
            :func:`abm_markets.engine.make_economy`.
        render_mode: ``None``, ``"ansi"`` (a one-line text summary of the period) or ``"rgb_array"`` (a bar
            chart of the normalised observations).
        horizon: Episode length for economies whose config has no ``horizon`` (default 200).
        normalize_obs: Map observations into ``Box(0, 1)`` (:func:`~abm_markets.envs._common.normalise`).

    Attributes:
        economy: The economy.
        horizon: Periods per episode.
        groups: Agent names per agent group, ``{group: [name, ...]}``.
        normalize_obs: Whether observations are normalised.

    Raises:
        ConfigError: The agent groups do not fill every action key, two agents share a name, an action
            space is neither ``Box`` nor (Multi)``Discrete``, or ``horizon`` is invalid.
        UserError: ``render_mode`` is not ``None``, ``"ansi"`` or ``"rgb_array"``.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "EconomyParallelEnv",
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
        "is_parallelizable": True,
    }

    def __init__(
        self,
        economy: BatchedEconomy,
        *,
        render_mode: str | None = None,
        horizon: int | None = None,
        normalize_obs: bool = False,
    ) -> None:
        check_render_mode(render_mode)
        self.normalize_obs = bool(normalize_obs)
        self.economy = economy
        self.render_mode = render_mode
        self.horizon = resolve_horizon(economy, horizon)
        self.metadata = {**type(self).metadata, "name": economy.env_id}
        agent_groups = economy.agent_groups()
        if not agent_groups:
            raise ConfigError(f"economy {economy.env_id} has no agent group; expected at least one")
        filled = [g.acts_for for g in agent_groups]
        for key in economy.action_keys:
            if key not in filled:
                raise ConfigError(
                    f"economy {economy.env_id}: no agent group fills action key {key!r}; expected every action "
                    "key filled by an agent group (use EconomyEnv with fixed= for the others)"
                )
        dup_keys = sorted({k for k in filled if filled.count(k) > 1})
        if dup_keys:
            raise ConfigError(f"economy {economy.env_id}: several agent groups fill {dup_keys}; expected one each")
        self.groups: dict[str, list[str]] = {g.name: list(economy.agent_names(g.name)) for g in agent_groups}
        self._group_of = {g.name: g for g in agent_groups}
        self._layouts = {g.name: action_layout(economy, g.acts_for) for g in agent_groups}
        self.possible_agents = [a for names in self.groups.values() for a in names]
        if len(set(self.possible_agents)) != len(self.possible_agents):
            raise ConfigError(f"economy {economy.env_id}: agent names {self.possible_agents} are not unique")
        for g in agent_groups:
            if len(self.groups[g.name]) != g.count:
                raise ConfigError(
                    f"economy {economy.env_id}: group {g.name!r} has {g.count} slots but "
                    f"{len(self.groups[g.name])} agent names; expected one name per slot"
                )
        self.agents: list[str] = []
        self.observation_spaces: dict[str, gymnasium.spaces.Space] = {}
        self.action_spaces: dict[str, gymnasium.spaces.Space] = {}
        self._raw_spaces: dict[str, gymnasium.spaces.Box] = {}
        for g in agent_groups:
            obs_space = economy.observation_space(g.name)
            raw = gymnasium.spaces.Box(obs_space.low, obs_space.high, obs_space.shape, np.float32)
            self._raw_spaces[g.name] = raw
            for a in self.groups[g.name]:
                self.observation_spaces[a] = normalised_space(raw) if self.normalize_obs else copy.deepcopy(raw)
                self.action_spaces[a] = slot_action_space(g)
        self._generator = torch.Generator(device=economy.device)
        self._seeded = False
        self._state: Any = None
        self._last: Any = None
        self._logged: dict[str, torch.Tensor] | None = None
        self._t = 0

    # ---------------------------------------------------------------------------------------- spaces
    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        """The same space object for an agent on every call (seeding the space works)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        """The same space object for an agent on every call (seeding the space works)."""
        return self.action_spaces[agent]

    # ------------------------------------------------------------------------------------------- api
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode: ``economy.initial_state(1, g)``, ``g`` seeded with ``seed`` when given (else once
        from fresh entropy, then continued)."""
        if seed is not None:
            self._generator.manual_seed(int(seed))
            self._seeded = True
        elif not self._seeded:
            self._generator.manual_seed(_entropy_seed())
            self._seeded = True
        self.agents = list(self.possible_agents)
        self._state = self.economy.initial_state(1, self._generator)
        self._last = None
        self._logged = None
        self._t = 0
        return self._observations(), {a: {} for a in self.agents}

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]:
        """One period: every live agent's action (in its action space) at once.

        Returns:
            ``(observations, rewards, terminations, truncations, infos)``, each ``{agent: ...}``.

        Raises:
            UserError: Called before ``reset``, an agent's action is missing or has the wrong shape.
        """
        if self._state is None:
            raise UserError(f"{type(self).__name__}.step called before reset()")
        if not self.agents:
            return {}, {}, {}, {}, {}
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise UserError(f"actions are missing for {', '.join(missing)}; expected one action per live agent")
        eco = self.economy
        acts: dict[str, torch.Tensor] = {}
        for name, agents in self.groups.items():
            g, layout = self._group_of[name], self._layouts[name]
            arr = np.concatenate([action_array(actions[a], layout, g.units, a) for a in agents], axis=0)
            acts[g.acts_for] = torch.as_tensor(arr, dtype=layout.dtype, device=layout.device).unsqueeze(0)
        self._state, out = eco.step(self._state, acts, self._generator)
        self._last = out
        self._t += 1
        self._logged = eco.logged(self._state, out)
        obs = self._observations()
        all_rewards = eco.rewards(out)
        rewards: dict[str, float] = {}
        for name, agents in self.groups.items():
            r = all_rewards[name][0].detach().double().cpu().tolist()
            rewards.update({a: float(r[i]) for i, a in enumerate(agents)})
        done = self._t >= self.horizon
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, done)
        infos = self._infos(out)
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Global state ``economy.global_state(state)[0]`` as ``float32`` ``[G]`` (centralised critics)."""
        if self._state is None:
            raise UserError(f"{type(self).__name__}.state called before reset()")
        return self.economy.global_state(self._state)[0].detach().cpu().numpy().astype(np.float32)

    def render(self) -> str | np.ndarray | None:
        """``"ansi"``: one line of text (:meth:`_ansi`); ``"rgb_array"``: ``uint8 [64, W, 3]``, one bar per entry of
        each agent's normalised observation, a colour per agent group
        (:func:`~abm_markets.envs._common.bar_image`); ``None`` without a render mode or before ``reset``."""
        if self.render_mode is None or self._state is None:
            return None
        if self.render_mode == "ansi":
            return self._ansi()
        heights, colours = [], []
        for k, (name, agents) in enumerate(self.groups.items()):
            sp = self._raw_spaces[name]
            o = self.economy.observe(self._state, name)[0].detach().cpu().double().numpy()
            heights += [normalise(o[i], sp.low, sp.high) for i in range(len(agents))]
            colours += [k] * len(agents)
        return bar_image(heights, colours)

    def close(self) -> None:
        pass

    # --------------------------------------------------------------------------------------- helpers
    def _ansi(self) -> str:
        """One line: the period and the last period's logged values (economy-level ones, means of the others)."""
        return summary_line(self._t, self.economy, self._logged)

    def _observations(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        for name, agents in self.groups.items():
            o = self.economy.observe(self._state, name)[0].detach().cpu().double().numpy()
            if self.normalize_obs:
                sp = self._raw_spaces[name]
                o = normalise(o, sp.low, sp.high)
            o = o.astype(np.float32)
            obs.update({a: o[i] for i, a in enumerate(agents)})
        return obs

    def _infos(self, outcome: Any) -> dict[str, dict[str, Any]]:
        """Per agent: its group's logged variables (its own entry) and the economy-level ones."""
        assert self._logged is not None  # set by step
        by_group, common = split_logged(self.economy, self._logged)
        infos: dict[str, dict[str, Any]] = {}
        for name, agents in self.groups.items():
            own = by_group.get(name, {})
            for i, a in enumerate(agents):
                infos[a] = {k: to_python(v[i]) for k, v in own.items()} | common
        return infos


class InvestmentParallelEnv(EconomyParallelEnv):
    """Simultaneous-move multi-agent investment economy (see the module docstring).

    Args:
        cfg: The economy (default ``InvestmentConfig(formulation="market", n_households=2)``).
        render_mode: ``None``, ``"ansi"`` (a one-line text summary of the period) or ``"rgb_array"``.
        normalize_obs: Map observations into ``Box(0, 1)`` (see :class:`EconomyParallelEnv`).
        device, dtype: Of the engine.
        **settings: ``InvestmentConfig`` fields replacing those of ``cfg`` (``n_households=3``,
            ``market="posted"``).

    Raises:
        ConfigError: One line: an unknown keyword (close ones suggested) or a bad value.

    Attributes:
        cfg: The config.
        households: ``household_i`` names.
        firm_agents: ``firm_j_m`` names (deciding firms), else empty.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "InvestmentMarket-v1",
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
        "is_parallelizable": True,
    }

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
        cfg = cfg if cfg is not None else InvestmentConfig(formulation="market", n_households=2)
        self.cfg = config_from_settings(cfg, settings, "abm_markets.envs.parallel_env", ENV_KEYWORDS)
        check_render_mode(render_mode)
        economy = InvestmentEconomy(self.cfg, device=device, dtype=dtype)
        super().__init__(economy, render_mode=render_mode, normalize_obs=normalize_obs)
        self.economy: InvestmentEconomy = economy
        self.households = list(self.groups["households"])
        self.firm_agents = list(self.groups.get("firms", []))

    def _ansi(self) -> str:
        """``t=.. mean K=.. mean C=.. mean p=..`` (capital, consumption, last prices)."""
        st = self._state
        k = st.capital[0].mean().item()
        p = st.last_price[0].mean().item()
        c = float("nan") if self._last is None else self._last.consumption[0].mean().item()
        return f"t={int(st.t[0])} mean K={k:.4f} mean C={c:.4f} mean p={p:.4f}"

    def _infos(self, outcome: Outcome) -> dict[str, dict[str, Any]]:
        """The logged variables, and for each firm its ``price``, ``sold`` and ``produced``."""
        infos = super()._infos(outcome)
        if self.firm_agents:
            price = outcome.firm_price[0].double().cpu().reshape(-1).tolist()
            sold = outcome.sold[0].double().cpu().reshape(-1).tolist()
            produced = outcome.produced[0].double().cpu().reshape(-1).tolist()
            for k, a in enumerate(self.firm_agents):
                infos[a].update({"price": price[k], "sold": sold[k], "produced": produced[k]})
        return infos


def parallel_env(cfg: InvestmentConfig | None = None, **settings: Any) -> InvestmentParallelEnv:
    """PettingZoo's module-level constructor: :class:`InvestmentParallelEnv` of ``cfg`` with ``settings``.

    ``settings``: ``render_mode``, ``normalize_obs``, ``device``, ``dtype`` and any ``InvestmentConfig`` field,
    e.g. ``parallel_env(n_households=3, market="posted", normalize_obs=True)``; the default economy is the
    market formulation with two households.

    Raises:
        ConfigError: One line: an unknown keyword (close ones suggested) or a bad value.
    """
    return InvestmentParallelEnv(cfg, **settings)
