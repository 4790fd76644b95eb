"""Batched logit-duopoly pricing economy (``LogitDuopoly-v1``), for deep-RL pricing agents.

The stage game is Calvano, Calzolari, Denicolò and Pastorello (2020, AER): two firms ``i = 0, 1`` post prices
``p_i`` each period; demand is multinomial logit with an outside good,

    q_i(p) = exp((a - p_i) / mu) / (sum_j exp((a - p_j) / mu) + exp(a_0 / mu)),

and firm ``i``'s reward is its per-period profit ``pi_i = (p_i - c) q_i(p)``. Baseline parameters (the paper's):
``a = 2, a_0 = 0, c = 1, mu = 1/4`` (Nash price ~1.473, joint-monopoly price ~1.925, computed in
:mod:`abm_markets.solvers.pricing`).

Actions (``action`` setting):

* ``grid``: a price index ``[B, 2]`` (long) on Calvano's ``m``-point grid from ``p_N - xi (p_M - p_N)`` to
  ``p_M + xi (p_M - p_N)`` (DQN).
* ``continuous``: a price ``[B, 2]`` (float), clipped to the grid's range ``[p_lo, p_hi]`` (PPO).

State: the last ``L = memory + 1`` price profiles ``prices [B, L, 2]`` (index 0 = last period), and the
rival-price observation noise ``noise [B, L, 2]`` drawn when each price was posted (``noise_sd * N(0, 1)``;
only the ``noisy`` information structure reads it). Keeping the noise in the state makes :meth:`observe` a pure
function of the state, and every random draw happens in :meth:`step` / :meth:`initial_state` from the explicit
generator.

Observation of firm ``i`` (``observation`` setting; ``k = memory``, own-perspective ordering, firm 1 sees the
same layout as firm 0), shape ``[B, 2, D]``:

* ``full``: own ``p_{i,t-1..t-k}`` and rival ``p_{-i,t-1..t-k}``, ``D = 2k`` (Calvano's state).
* ``own``: own ``p_{i,t-1..t-k}`` only, ``D = k`` (no information about the rival).
* ``lagged``: own ``p_{i,t-1..t-k}`` and the rival's prices one period older, ``p_{-i,t-2..t-k-1}``, ``D = 2k``.
* ``noisy``: own ``p_{i,t-1..t-k}`` and ``p_{-i,t-s} + noise_sd * e_{t-s}``, ``D = 2k``.

Shapes: prices ``[B, L, 2]``, actions ``[B, 2]``, rewards ``[B, 2]``.

Version history:
    v1 (2026-11): first version; grid or continuous prices, full/own/lagged/noisy observations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

import gymnasium
import numpy as np
import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.engine.economy import AgentGroup, EconomySpec, Good, register_economy
from abm_markets.engine.protocol import BatchedEconomy, Block, DecisionGroup, LoggedVariable, parse_information
from abm_markets.errors import ConfigError

__all__ = [
    "LogitDuopoly",
    "LogitDuopolyConfig",
    "PricingOutcome",
    "PricingState",
    "logit_profit_torch",
]

ENV_ID = "LogitDuopoly-v1"
ENV_HISTORY = ("v1 (2026-11): first version; grid or continuous prices, full/own/lagged/noisy observations.",)
OBSERVATIONS = ("full", "own", "lagged", "noisy")
OBSERVATION_BLOCKS = {
    "full": ("own_prices", "rival_prices"),
    "own": ("own_prices",),
    "lagged": ("own_prices", "rival_prices_lagged"),
    "noisy": ("own_prices", "rival_prices_noisy"),
}
"""The ``observation`` setting as observation blocks of the protocol (each ``memory`` features)."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogitDuopolyConfig(Config):
    """Settings of the logit pricing duopoly (defaults: Calvano et al. 2020 baseline, memory one period)."""

    a: float = param(2.0, "Product quality index a_i (both firms).")
    a0: float = param(0.0, "Outside good quality a_0.")
    cost: float = param(1.0, "Marginal cost c_i (both firms).", ge=0.0)
    mu: float = param(0.25, "Logit differentiation mu.", gt=0.0)
    grid_size: int = param(15, "Price grid points m.", ge=2)
    xi: float = param(0.1, "Grid extends xi (p_M - p_N) beyond the Nash and monopoly prices.", ge=0.0)
    memory: int = param(1, "Past price profiles k in an observation.", ge=1, le=8)
    observation: str = param("full", "Information structure: full, own, lagged or noisy.", choices=OBSERVATIONS)
    noise_sd: float = param(0.05, "Standard deviation of the noise on the observed rival price (noisy).", ge=0.0)
    action: str = param("grid", "grid: price indices (DQN); continuous: prices in [p_lo, p_hi] (PPO).",
                        choices=("grid", "continuous"))  # fmt: skip
    information: tuple[str, ...] = param(
        (),
        "Per-firm information structure, entries firms[start:stop]=block+block overriding observation, e.g. "
        "firms[:1]=own_prices+rival_prices and firms[1:]=own_prices; blocks own_prices, rival_prices, "
        "rival_prices_lagged, rival_prices_noisy.",
    )

    def validate(self) -> None:
        if self.information:
            try:
                parse_information(self.information, (_firm_group(self, 2),))
            except ConfigError as e:
                raise ConfigError(f"LogitDuopolyConfig.information: {e}") from None


def _firm_group(cfg: LogitDuopolyConfig, m: int, p_lo: float = 0.0, p_hi: float = np.inf) -> DecisionGroup:
    k = cfg.memory
    docs = {
        "own_prices": "own last k prices (most recent first)",
        "rival_prices": "rival's last k prices",
        "rival_prices_lagged": "rival's prices one period older (t-2 .. t-k-1)",
        "rival_prices_noisy": "rival's last k prices plus observation noise",
    }
    blocks = tuple(Block(n, k, doc=d) for n, d in docs.items())
    if cfg.action == "grid":
        space: gymnasium.spaces.Space = gymnasium.spaces.Discrete(cfg.grid_size)
    else:
        space = gymnasium.spaces.Box(np.float32(p_lo), np.float32(p_hi), (), np.float32)
    return DecisionGroup(
        "firms",
        2,
        "firms",
        blocks,
        OBSERVATION_BLOCKS[cfg.observation],
        space,
        1,
        n_discrete=cfg.grid_size if cfg.action == "grid" else 0,
        reward="profit (p_i - c) q_i",
    )


@dataclasses.dataclass(frozen=True)
class PricingState:
    """Batched state (immutable; :meth:`LogitDuopoly.step` returns a new one).

    Attributes:
        prices: Last ``L`` price profiles ``[B, L, 2]``, index 0 = most recent.
        noise: Observation noise on each posted price ``[B, L, 2]`` (read by the ``noisy`` structure).
        t: Period ``[B]`` (long).
    """

    prices: Tensor
    noise: Tensor
    t: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.prices.shape[0])


class PricingOutcome(NamedTuple):
    """What one period produced: prices ``[B, 2]``, quantities ``[B, 2]``, profits (rewards) ``[B, 2]``."""

    prices: Tensor
    quantities: Tensor
    profits: Tensor


def logit_profit_torch(p: Tensor, a: float, a0: float, cost: float, mu: float) -> tuple[Tensor, Tensor]:
    """Logit demand and profits for price profiles ``p [..., n]``; returns ``(q, pi)``, both ``[..., n]``."""
    u = (a - p) / mu
    u0 = torch.full_like(u[..., :1], a0 / mu)
    denom = torch.logsumexp(torch.cat([u, u0], -1), -1, keepdim=True)
    q = torch.exp(u - denom)
    return q, (p - cost) * q


class LogitDuopoly(BatchedEconomy):
    """The batched logit duopoly (see module docstring for equations, spaces and shapes).

    Args:
        cfg: Settings.
        device: Torch device of the state.
        dtype: Floating dtype of prices and profits (float64 by default: profits match the NumPy reference).

    Attributes:
        p_nash, p_monopoly: Static Bertrand-Nash and joint-monopoly prices (solved numerically).
        pi_nash, pi_monopoly: Per-firm profits at those prices.
        grid: Price grid ``[m]``; ``p_lo``, ``p_hi`` its ends.
    """

    def __init__(
        self, cfg: LogitDuopolyConfig, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
    ):
        from abm_markets.solvers import pricing

        self.cfg, self.device, self.dtype = cfg, torch.device(device), dtype
        self.market = pricing.LogitMarket(n_firms=2, a=(cfg.a,), a0=cfg.a0, c=(cfg.cost,), mu=cfg.mu)
        self.p_nash = float(pricing.bertrand_nash(self.market)[0])
        self.p_monopoly = float(pricing.joint_monopoly(self.market)[0])
        self.pi_nash = float(pricing.logit_profit(np.array([self.p_nash] * 2), self.market)[0])
        self.pi_monopoly = float(pricing.logit_profit(np.array([self.p_monopoly] * 2), self.market)[0])
        grid = pricing.price_grid(self.p_nash, self.p_monopoly, cfg.grid_size, cfg.xi)
        self.grid = torch.as_tensor(grid, dtype=dtype, device=self.device)
        self.p_lo, self.p_hi = float(grid[0]), float(grid[-1])
        self.n_firms = 2
        self.lags = cfg.memory + 1
        self.spec = EconomySpec(
            id=ENV_ID,
            groups=(
                AgentGroup("firms", 2, "price index on the grid or price", (), "profit (p_i - c) q_i"),
                AgentGroup("consumers", 1, "logit demand (not a learner)", (), "utility"),
            ),
            goods=(Good("variety", "firms", "consumers", "posted"),),
            markets=("posted",),
            shocks=("observation_noise",) if cfg.observation == "noisy" else (),
            history=ENV_HISTORY,
            observation_blocks=tuple(b.name for b in _firm_group(cfg, 2).blocks),
            logged=(
                LoggedVariable("price", "firms", "posted price p_i"),
                LoggedVariable("quantity", "firms", "logit demand q_i"),
                LoggedVariable("profit", "firms", "profit (p_i - c) q_i"),
                LoggedVariable("profit_gain", "economy", "Calvano's Delta of the mean profit"),
            ),
        )
        self.groups = (_firm_group(cfg, 2, self.p_lo, self.p_hi),)
        self.information = parse_information(cfg.information, self.groups)
        self.default_group = "firms"

    # ------------------------------------------------------------------------------------------ state
    def initial_state(self, batch: int, generator: torch.Generator) -> PricingState:
        """``batch`` economies with past prices drawn uniformly (on the grid, or on ``[p_lo, p_hi]``)."""
        shape = (batch, self.lags, 2)
        if self.cfg.action == "grid":
            idx = torch.randint(0, self.cfg.grid_size, shape, generator=generator, device=self.device)
            prices = self.grid[idx]
        else:
            u = torch.rand(shape, generator=generator, device=self.device, dtype=self.dtype)
            prices = self.p_lo + (self.p_hi - self.p_lo) * u
        noise = self._noise(shape, generator)
        return PricingState(prices, noise, torch.zeros(batch, dtype=torch.long, device=self.device))

    def _noise(self, shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
        e = torch.randn(shape, generator=generator, device=self.device, dtype=self.dtype)
        return self.cfg.noise_sd * e

    def prices_of(self, actions: Tensor) -> Tensor:
        """Engine prices ``[B, 2]`` from actions (grid indices, or prices clipped to ``[p_lo, p_hi]``)."""
        if self.cfg.action == "grid":
            if actions.dtype.is_floating_point:
                raise ConfigError("LogitDuopoly: action = 'grid' expects integer price indices; got floats")
            return self.grid[actions.clamp(0, self.cfg.grid_size - 1)]
        return actions.to(self.dtype).clamp(self.p_lo, self.p_hi)

    def profits(self, prices: Tensor) -> tuple[Tensor, Tensor]:
        """Quantities and profits ``[..., 2]`` at price profiles ``prices [..., 2]``."""
        c = self.cfg
        return logit_profit_torch(prices, c.a, c.a0, c.cost, c.mu)

    def step(
        self, state: PricingState, actions: Tensor | Mapping[str, Tensor], generator: torch.Generator | None = None
    ) -> tuple[PricingState, PricingOutcome]:
        """One period: post prices, sell, record; pure (returns a new state).

        Args:
            state: Current state.
            actions: ``[B, 2]`` price indices (``grid``) or prices (``continuous``), or the protocol's
                ``{"firms": [B, 2]}`` (``[B, 2, 1]`` accepted).
            generator: Draws the observation noise of the posted prices.

        Returns:
            ``(next_state, outcome)``; ``outcome.profits [B, 2]`` are the rewards.
        """
        if isinstance(actions, Mapping):
            if "firms" not in actions:
                raise KeyError("actions must contain 'firms'")
            actions = actions["firms"]
        if actions.dim() == 3:
            actions = actions[..., 0]
        p = self.prices_of(actions)
        q, pi = self.profits(p)
        e = self._noise((state.batch_size, 1, 2), generator)
        nxt = PricingState(
            prices=torch.cat([p.unsqueeze(1), state.prices[:, :-1]], 1),
            noise=torch.cat([e, state.noise[:, :-1]], 1),
            t=state.t + 1,
        )
        return nxt, PricingOutcome(p, q, pi)

    # ---------------------------------------------------------------------------------- observations
    def observation_size(self, group: str = "firms") -> int:
        """Per-firm observation size ``D``."""
        return self.obs_dim(group)

    def observation_block(self, state: PricingState, group: str, block: str) -> Tensor:
        """``[B, 2, k]`` in each firm's own perspective (own block first in the default layouts)."""
        k = self.cfg.memory
        if block == "own_prices":
            return state.prices[:, :k, :].transpose(1, 2)  # own[b, i, s] = p_{i, t-1-s}
        rival_all = state.prices.flip(-1).transpose(1, 2)  # [B, 2, L]: rival of firm i
        if block == "rival_prices":
            return rival_all[..., :k]
        if block == "rival_prices_lagged":
            return rival_all[..., 1 : k + 1]
        if block == "rival_prices_noisy":
            return rival_all[..., :k] + state.noise.flip(-1).transpose(1, 2)[..., :k]
        raise ValueError(f"unknown observation block {block!r}")

    def decode(
        self, group: str, raw: Tensor, state: PricingState, *, center: str = "reference", shift: float = 0.0
    ) -> Tensor:
        """``grid``: the index itself (``[B, n]`` long); ``continuous``: ``p_lo + (p_hi - p_lo) sigmoid(u + shift)``
        (``u = 0`` posts the middle of the range; ``center`` has no other reference here)."""
        if self.cfg.action == "grid":
            return raw[..., 0].round().long()
        return self.p_lo + (self.p_hi - self.p_lo) * torch.sigmoid(raw[..., 0].to(self.dtype) + shift)

    def rewards(self, outcome: PricingOutcome) -> dict[str, Tensor]:
        return {"firms": outcome.profits}

    def logged(self, state: PricingState, outcome: PricingOutcome) -> dict[str, Tensor]:
        return {
            "price": outcome.prices,
            "quantity": outcome.quantities,
            "profit": outcome.profits,
            "profit_gain": self.profit_gain(outcome.profits.mean(-1)),
        }

    def agent_names(self, group: str) -> list[str]:
        return ["firm_0", "firm_1"]

    def global_state(self, state: PricingState) -> Tensor:
        """True last ``k`` price profiles ``[B, 2k]`` (for a centralised critic)."""
        k = self.cfg.memory
        return state.prices[:, :k].reshape(state.batch_size, 2 * k)

    def profit_gain(self, profit: Tensor) -> Tensor:
        """Calvano's ``Delta = (pi - pi_N) / (pi_M - pi_N)`` (element-wise)."""
        return (profit - self.pi_nash) / (self.pi_monopoly - self.pi_nash)


@register_economy(ENV_ID)
def _logit_duopoly(cfg: LogitDuopolyConfig | None, **kw: object) -> LogitDuopoly:
    return LogitDuopoly(cfg or LogitDuopolyConfig(), **kw)  # type: ignore[arg-type]
