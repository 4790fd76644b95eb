"""PettingZoo ``ParallelEnv`` over the batched investment engine (``B = 1``).

Agents: ``household_i`` (``i < N^h``) and, when ``firms = "decision"``, ``firm_j_m``
(seller ``m`` of good ``j``). Everyone moves at once each period.

Observation spaces (``float32``):

* household: the engine's information-structure blocks, ``cfg.household_obs``
  (:meth:`InvestmentEconomy.observe <abm_markets.engine.InvestmentEconomy.observe>`:
  capital relative to the steady state, TFP levels, prices relative to the steady-state
  price, ``t / horizon``), ``Box(0, inf, (D,))``;
* firm: :data:`abm_markets.agents.firm.FIRM_OBSERVATION` (own good's last price and own
  last demand signal relative to the steady state, mean capital of the good, mean TFP),
  ``Box(0, inf, (4,))``.

Action spaces (``float32``):

* household, ``action = "shares"``: ``Box(0, 1, (J,))``, spending shares of output; the
  engine clips and scales them onto the simplex (``C >= 0`` always);
* household, ``action = "quantities"``: ``Box(0, K_ss, (J,))``, investment requested;
* firm: ``Box(0, (10 p_ss, 10 q_ss))``, (posted price, capacity) in the economy's units.

Rewards: households ``reward_households`` (``u(C_i)``, minus the budget penalty if set),
firms their profit ``p sold - phi/2 produced^2``. No agent terminates; all are
truncated after ``cfg.horizon`` periods.

Randomness: one ``torch.Generator`` seeded in ``reset(seed=...)``, so an episode equals the
engine's ``initial_state(1, g)`` then ``step(..., g)`` with ``g.manual_seed(seed)``.

Version history: see :data:`abm_markets.engine.investment.ENV_HISTORY`
(``metadata["name"]`` is the engine's versioned id).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch
from pettingzoo import ParallelEnv

from abm_markets.agents.firm import firm_observation
from abm_markets.agents.rules import firm_observation_scales
from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy, InvestmentState, Outcome
from abm_markets.errors import UserError


def _entropy_seed() -> int:
    return int(np.random.SeedSequence().entropy % (2**63))


class InvestmentParallelEnv(ParallelEnv):
    """Simultaneous-move multi-agent investment economy.

    Args:
        cfg: The economy (default ``InvestmentConfig(formulation="market", n_households=2)``).
        render_mode: ``None`` or ``"ansi"`` (a one-line text summary of the period).
        device, dtype: Of the engine.
    """

    metadata: ClassVar[dict[str, Any]] = {
        "name": "InvestmentMarket-v1",
        "render_modes": ["ansi"],
        "is_parallelizable": True,
    }

    def __init__(
        self,
        cfg: InvestmentConfig | None = None,
        *,
        render_mode: str | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if render_mode not in (None, "ansi"):
            raise UserError(f"render_mode = {render_mode!r} is invalid; expected None or 'ansi'")
        self.cfg = cfg if cfg is not None else InvestmentConfig(formulation="market", n_households=2)
        self.economy = InvestmentEconomy(self.cfg, device=device, dtype=dtype)
        self.metadata = {**type(self).metadata, "name": self.economy.env_id}
        self.render_mode = render_mode
        eco = self.economy
        self.households = [f"household_{i}" for i in range(eco.n_households)]
        self.firm_agents = (
            [f"firm_{j}_{m}" for j in range(eco.n_goods) for m in range(eco.n_firms)] if eco.deciding_firms else []
        )
        self.possible_agents = self.households + self.firm_agents
        self.agents: list[str] = []
        n_obs = eco.observation_size()
        j = eco.n_goods
        if self.cfg.action == "shares":
            h_act = gymnasium.spaces.Box(0.0, 1.0, (j,), np.float32)
        else:
            h_act = gymnasium.spaces.Box(0.0, float(eco.k_ss), (j,), np.float32)
        p_ss, _ = firm_observation_scales(self.cfg)
        f_high = np.array([10.0 * p_ss, 10.0 * p_ss / self.cfg.phi], dtype=np.float32)
        self.observation_spaces = {a: gymnasium.spaces.Box(0.0, np.inf, (n_obs,), np.float32) for a in self.households}
        self.action_spaces: dict[str, gymnasium.spaces.Space] = {a: h_act for a in self.households}
        for a in self.firm_agents:
            self.observation_spaces[a] = gymnasium.spaces.Box(0.0, np.inf, (4,), np.float32)
            self.action_spaces[a] = gymnasium.spaces.Box(np.zeros(2, np.float32), f_high, dtype=np.float32)
        self._generator = torch.Generator(device=eco.device)
        self._seeded = False
        self._state: InvestmentState | None = None
        self._last: Outcome | None = None

    # ---------------------------------------------------------------- spaces
    def observation_space(self, agent: str) -> gymnasium.spaces.Space:
        """The same space object for an agent on every call (seeding the space works)."""
        return self.observation_spaces[agent]

    def action_space(self, agent: str) -> gymnasium.spaces.Space:
        return self.action_spaces[agent]

    # ------------------------------------------------------------------- api
    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        if seed is not None:
            self._generator.manual_seed(int(seed))
            self._seeded = True
        elif not self._seeded:
            self._generator.manual_seed(_entropy_seed())
            self._seeded = True
        self.agents = list(self.possible_agents)
        self._state = self.economy.initial_state(1, self._generator)
        self._last = None
        return self._observations(), {a: {} for a in self.agents}

    def step(
        self, actions: dict[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, float], dict[str, bool], dict[str, bool], dict[str, dict[str, Any]]]:
        if self._state is None:
            raise UserError("InvestmentParallelEnv.step called before reset()")
        if not self.agents:
            return {}, {}, {}, {}, {}
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise UserError(f"actions are missing for {', '.join(missing)}; expected one action per live agent")
        eco = self.economy
        kw = {"device": eco.device, "dtype": eco.dtype}
        h_act = np.stack([np.asarray(actions[a], dtype=np.float64).reshape(eco.n_goods) for a in self.households])
        acts = {"households": torch.as_tensor(h_act, **kw).unsqueeze(0)}
        if self.firm_agents:
            f_act = np.stack([np.asarray(actions[a], dtype=np.float64).reshape(2) for a in self.firm_agents])
            acts["firms"] = torch.as_tensor(f_act, **kw).reshape(1, eco.n_goods, eco.n_firms, 2)
        self._state, out = eco.step(self._state, acts, self._generator)
        self._last = out
        obs = self._observations()
        r_h = out.reward_households[0].double().cpu().tolist()
        r_f = out.profit[0].double().cpu().reshape(-1).tolist()
        rewards = {a: r_h[i] for i, a in enumerate(self.households)}
        rewards.update({a: r_f[k] for k, a in enumerate(self.firm_agents)})
        done = int(self._state.t[0]) >= self.cfg.horizon
        terminations = dict.fromkeys(self.agents, False)
        truncations = dict.fromkeys(self.agents, done)
        infos = self._infos(out)
        if done:
            self.agents = []
        return obs, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """Global state ``[H*J + H + J + 1]`` (capital and prices relative to the steady state, TFP, time)."""
        if self._state is None:
            raise UserError("InvestmentParallelEnv.state called before reset()")
        return self.economy.global_state(self._state)[0].cpu().numpy().astype(np.float32)

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._state is None:
            return None
        st = self._state
        k = st.capital[0].mean().item()
        p = st.last_price[0].mean().item()
        c = float("nan") if self._last is None else self._last.consumption[0].mean().item()
        return f"t={int(st.t[0])} mean K={k:.4f} mean C={c:.4f} mean p={p:.4f}"

    def close(self) -> None:
        pass

    # --------------------------------------------------------------- helpers
    def _observations(self) -> dict[str, np.ndarray]:
        assert self._state is not None
        h_obs = self.economy.observe(self._state)[0].cpu().numpy().astype(np.float32)
        obs = {a: h_obs[i] for i, a in enumerate(self.households)}
        if self.firm_agents:
            f_obs = firm_observation(self.economy, self._state)[0].reshape(-1, 4).cpu().numpy().astype(np.float32)
            obs.update({a: f_obs[k] for k, a in enumerate(self.firm_agents)})
        return obs

    def _infos(self, out: Outcome) -> dict[str, dict[str, Any]]:
        c = out.consumption[0].double().cpu().tolist()
        y = out.output[0].double().cpu().tolist()
        inv = out.investment[0].sum(-1).double().cpu().tolist()
        infos: dict[str, dict[str, Any]] = {
            a: {"consumption": c[i], "output": y[i], "investment": inv[i]} for i, a in enumerate(self.households)
        }
        price = out.firm_price[0].double().cpu().reshape(-1).tolist()
        sold = out.sold[0].double().cpu().reshape(-1).tolist()
        produced = out.produced[0].double().cpu().reshape(-1).tolist()
        for k, a in enumerate(self.firm_agents):
            infos[a] = {"price": price[k], "sold": sold[k], "produced": produced[k]}
        return infos


def parallel_env(cfg: InvestmentConfig | None = None, **kwargs: Any) -> InvestmentParallelEnv:
    """PettingZoo-style constructor."""
    return InvestmentParallelEnv(cfg, **kwargs)
