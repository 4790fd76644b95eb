"""Gymnasium ``Env`` for the single-household planner (``abm_markets/InvestmentPlanner-v1``).

The planner economy of seed 000, section 3, with ``N^h = 1`` (``N^c`` goods allowed),
over the batched engine with ``B = 1``:

* observation (``float32``, ``Box(0, inf, (D,))``): the engine's blocks ``cfg.household_obs``,
  by default ``("own_capital", "own_tfp")``: capital ``K_j / K_ss`` and TFP ``Z``;
* action (``float32``, ``Box(0, 1, (J,))``): spending shares of output ``s_j`` (the engine
  clips and scales them onto the simplex, so ``C = (1 - sum_j s_j) Y >= 0``);
* reward: ``u(C)`` (log by default);
* dynamics: ``I_j = sqrt(2 s_j Y / phi)``, ``K'_j = (1 - delta) K_j + I_j``, ``Z`` a Markov chain;
* episode: never terminates, truncated after ``cfg.horizon`` periods.

``reset(seed=s)`` seeds the torch generator with ``s``, so an episode equals the engine's
``initial_state(1, g)`` then ``step(..., g)`` with ``g.manual_seed(s)``.
Version history: :data:`abm_markets.engine.investment.ENV_HISTORY`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy, InvestmentState
from abm_markets.errors import ConfigError, UserError

ENV_ID = "abm_markets/InvestmentPlanner-v1"


def default_planner_config(**overrides: Any) -> InvestmentConfig:
    """``InvestmentConfig`` with one household, the planner formulation, and own capital and TFP observed."""
    kw: dict[str, Any] = {"n_households": 1, "formulation": "planner", "household_obs": ("own_capital", "own_tfp")}
    kw.update(overrides)
    return InvestmentConfig(**kw)


class InvestmentPlannerEnv(gymnasium.Env):
    """Single-household stochastic planner (see the module docstring).

    Args:
        cfg: An ``InvestmentConfig`` with ``n_households = 1`` and ``formulation = "planner"``
            (default :func:`default_planner_config`).
        render_mode: ``None`` or ``"ansi"``.
        device, dtype: Of the engine.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        cfg: InvestmentConfig | None = None,
        *,
        render_mode: str | None = None,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        cfg = cfg if cfg is not None else default_planner_config()
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
        if render_mode not in (None, "ansi"):
            raise UserError(f"render_mode = {render_mode!r} is invalid; expected None or 'ansi'")
        self.cfg = cfg
        self.render_mode = render_mode
        self.economy = InvestmentEconomy(cfg, device=device, dtype=dtype)
        n_obs = self.economy.observation_size()
        self.observation_space = gymnasium.spaces.Box(0.0, np.inf, (n_obs,), np.float32)
        self.action_space = gymnasium.spaces.Box(0.0, 1.0, (self.economy.n_goods,), np.float32)
        self._generator = torch.Generator(device=self.economy.device)
        self._seeded = False
        self._state: InvestmentState | None = None
        self._last_consumption = float("nan")

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._generator.manual_seed(int(seed))
            self._seeded = True
        elif not self._seeded:
            self._generator.manual_seed(int(self.np_random.integers(2**63 - 1)))
            self._seeded = True
        self._state = self.economy.initial_state(1, self._generator)
        self._last_consumption = float("nan")
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._state is None:
            raise UserError("InvestmentPlannerEnv.step called before reset()")
        eco = self.economy
        a = torch.as_tensor(np.asarray(action, dtype=np.float64).reshape(1, 1, eco.n_goods), device=eco.device)
        self._state, out = eco.step(self._state, {"households": a}, self._generator)
        reward = float(out.reward_planner[0])
        self._last_consumption = float(out.consumption[0, 0])
        truncated = int(self._state.t[0]) >= self.cfg.horizon
        info = {
            "consumption": self._last_consumption,
            "output": float(out.output[0, 0]),
            "investment": out.investment[0, 0].double().cpu().tolist(),
            "capital": self._state.capital[0, 0].double().cpu().tolist(),
        }
        return self._observation(), reward, False, truncated, info

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._state is None:
            return None
        k = self._state.capital[0, 0].double().cpu().tolist()
        return f"t={int(self._state.t[0])} K={k} C={self._last_consumption:.4f}"

    def _observation(self) -> np.ndarray:
        assert self._state is not None
        return self.economy.observe(self._state)[0, 0].cpu().numpy().astype(np.float32)
