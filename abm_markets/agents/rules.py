"""Decision rules: where an agent's action comes from.

A rule maps an observation to an action, ``act(obs) -> action``. Observations are
the engine's (:meth:`abm_markets.engine.InvestmentEconomy.observe`); a rule works on
one agent's observation ``[D]`` or on a batch ``[..., D]`` and returns an action of
shape ``[..., A]`` of the same kind (NumPy in, NumPy out; torch in, torch out).

Household rules return spending shares ``[..., J]`` (the engine clips them to
``[0, 1]`` and scales them onto the simplex). Firm rules return
``(posted price, capacity)`` ``[..., 2]`` for deciding firms.

Later issues add trained policies and the DP policy: any object with this
``act`` method plugs into the Mesa model and the benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import steady_state_capital
from abm_markets.errors import ConfigError

Array = np.ndarray | torch.Tensor


@runtime_checkable
class DecisionRule(Protocol):
    """Anything that maps an observation ``[..., D]`` to an action ``[..., A]``."""

    def act(self, obs: Array) -> Array:
        """Action for observation ``obs`` (same array kind as ``obs``)."""
        ...


def _broadcast(values: Sequence[float], obs: Array) -> Array:
    """``values`` (length A) broadcast to ``obs.shape[:-1] + (A,)`` in obs's array kind."""
    batch = tuple(obs.shape[:-1])
    if isinstance(obs, torch.Tensor):
        v = torch.as_tensor(values, dtype=obs.dtype if obs.is_floating_point() else torch.float64, device=obs.device)
        return v.expand(*batch, len(values)).clone()
    return np.broadcast_to(np.asarray(values, dtype=np.float64), (*batch, len(values))).copy()


class FixedShare:
    """Spend the same share ``s_j`` of output on each capital good every period.

    Args:
        share: One share for every good, or one per good.
        n_goods: Number of capital goods ``J`` (used when ``share`` is a single number).
    """

    def __init__(self, share: float | Sequence[float], n_goods: int = 1) -> None:
        shares = (float(share),) * n_goods if isinstance(share, (int, float)) else tuple(float(s) for s in share)
        if not shares or any(not (0.0 <= s <= 1.0) for s in shares) or sum(shares) > 1.0 + 1e-12:
            raise ConfigError(f"FixedShare share = {share!r} is invalid; expected shares in [0, 1] summing to <= 1")
        self.shares = shares

    def act(self, obs: Array) -> Array:
        return _broadcast(self.shares, obs)

    def __repr__(self) -> str:
        return f"FixedShare({self.shares})"


class ConstantAction:
    """Play the same action every period, whatever the observation (any economy: a price index, a price, ...).

    Args:
        value: One agent's action ``S`` in the economy's units (a number or an array; integers stay integers,
            as integer action spaces need).
    """

    def __init__(self, value: float | Sequence[float] | np.ndarray) -> None:
        arr = np.asarray(value)
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.isfinite(arr)):
            raise ConfigError(f"ConstantAction value = {value!r} is invalid; expected finite numbers")
        self.value = arr

    def act(self, obs: Array) -> Array:
        """``value`` broadcast to ``obs.shape[:-1] + S`` (NumPy in, NumPy out; torch in, torch out)."""
        batch = tuple(obs.shape[:-1])
        out = np.broadcast_to(self.value, (*batch, *self.value.shape)).copy()
        if isinstance(obs, torch.Tensor):
            if np.issubdtype(out.dtype, np.integer):
                return torch.as_tensor(out, dtype=torch.long, device=obs.device)
            return torch.as_tensor(
                out, dtype=obs.dtype if obs.is_floating_point() else torch.float64, device=obs.device
            )
        return out

    def __repr__(self) -> str:
        return f"ConstantAction({self.value.tolist()!r})"


def steady_state_share(cfg: InvestmentConfig) -> float:
    """Share of output each household spends on each good in the deterministic steady state.

    With ``Z = 1``, ``Y = K^alpha`` and every household investing ``delta K`` of each good:

    * market (``M`` competitive firms per good, price ``p = phi N^h delta K / M``):
      ``s = p delta K / Y = phi N^h delta^2 K^2 / (M Y)``;
    * planner (pooled cost ``phi/2 (N^h delta K)^2`` split equally):
      ``s = phi N^h delta^2 K^2 / (2 Y)``, half the market share with ``M = 1``.

    ``K`` is :func:`abm_markets.engine.investment.steady_state_capital`.
    """
    k = steady_state_capital(cfg)
    y = k**cfg.alpha
    base = cfg.phi * cfg.n_households * cfg.delta**2 * k * k / y
    if cfg.formulation == "planner":
        return 0.5 * base
    return base / cfg.firms_per_good


class SteadyStateShare(FixedShare):
    """Spend the deterministic steady-state share (:func:`steady_state_share`) on every good.

    With ``Z = 1`` and capital at the steady state this keeps capital there exactly.
    """

    def __init__(self, cfg: InvestmentConfig) -> None:
        super().__init__(steady_state_share(cfg), cfg.n_capital_goods)


class RandomShare:
    """Spending shares drawn uniformly on the simplex of goods plus consumption (Dirichlet(1, ..., 1)).

    Args:
        rng: NumPy generator (the caller's explicit source of randomness).
        n_goods: Number of capital goods ``J``.
        scale: Shares are multiplied by ``scale`` (<= 1) to keep random agents from starving.
    """

    def __init__(self, rng: np.random.Generator, n_goods: int = 1, scale: float = 1.0) -> None:
        if not (0.0 < scale <= 1.0):
            raise ConfigError(f"RandomShare scale = {scale!r} is invalid; expected 0 < scale <= 1")
        self.rng = rng
        self.n_goods = n_goods
        self.scale = scale

    def act(self, obs: Array) -> Array:
        batch = tuple(obs.shape[:-1])
        draw = self.rng.dirichlet(np.ones(self.n_goods + 1), size=batch)[..., :-1] * self.scale
        if isinstance(obs, torch.Tensor):
            return torch.as_tensor(draw, dtype=obs.dtype, device=obs.device)
        return draw


def firm_observation_scales(cfg: InvestmentConfig) -> tuple[float, float]:
    """Steady-state price and revenue (= demand) of one firm, ``(p_ss, S_ss)``, normalising firms' observations.

    ``q_ss = N^h delta K / M`` units per firm at ``p_ss = phi q_ss``; revenue ``S_ss = p_ss q_ss``.
    """
    m = cfg.firms_per_good if cfg.formulation == "market" else 1
    q = cfg.n_households * cfg.delta * steady_state_capital(cfg) / m
    return cfg.phi * q, cfg.phi * q * q


class PostedMarkup:
    """A deciding firm's rule: price at a markup over marginal cost for last period's demand.

    The firm's observation (:func:`abm_markets.agents.firm.firm_observation`) starts with its
    good's last price and its demand signal ``S`` (the spending buyers wanted to place with
    it last period) relative to the steady state. With spending orders demand has unit
    elasticity, so a firm producing ``c`` sells ``S / p``;
    posting ``p = (1 + mu) phi c`` with ``c = S / p`` gives

    ``p = sqrt((1 + mu) phi S)``,  ``c = p / ((1 + mu) phi)``.

    ``mu = 0`` is the competitive posting rule the engine uses for competitive firms in
    the posted-price market (:class:`CompetitiveSupply`).

    Args:
        cfg: The economy (for ``phi`` and the normalisation).
        markup: ``mu >= 0``.
    """

    def __init__(self, cfg: InvestmentConfig, markup: float = 0.0) -> None:
        if not (markup >= 0.0 and math.isfinite(markup)):
            raise ConfigError(f"PostedMarkup markup = {markup!r} is invalid; expected a finite number >= 0")
        self.phi = cfg.phi
        self.markup = markup
        _, self.s_ss = firm_observation_scales(cfg)

    def act(self, obs: Array) -> Array:
        s = obs[..., 1] * self.s_ss
        k = (1.0 + self.markup) * self.phi
        if isinstance(obs, torch.Tensor):
            p = torch.sqrt(k * s.clamp_min(0.0))
            return torch.stack([p, p / k], dim=-1)
        p = np.sqrt(k * np.maximum(s, 0.0))
        return np.stack([p, p / k], axis=-1)


class CompetitiveSupply(PostedMarkup):
    """Competitive firm: supply ``Q = p / phi`` (marginal cost ``phi Q`` equals price).

    ``supply(p)`` is the schedule the Walrasian auctioneer and the planner's pool use.
    As a deciding firm's rule, ``act`` posts the price at which that supply meets last
    period's demand signal, ``p = sqrt(phi S)``, ``c = p / phi`` (``PostedMarkup`` with ``mu = 0``).
    """

    def __init__(self, cfg: InvestmentConfig) -> None:
        super().__init__(cfg, 0.0)

    def supply(self, price: float) -> float:
        return price / self.phi
