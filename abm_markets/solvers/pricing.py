"""Reference answers for price competition with logit demand (Calvano et al. 2020).

Demand (multinomial logit with an outside good), firms ``i = 1..n``:

    q_i(p) = exp((a_i - p_i) / mu) / (sum_j exp((a_j - p_j) / mu) + exp(a_0 / mu))

Profit per period ``pi_i(p) = (p_i - c_i) q_i(p)``.

* **Bertrand-Nash** prices solve the first-order conditions
  ``dpi_i/dp_i = q_i - (p_i - c_i) q_i (1 - q_i) / mu = 0``, i.e.
  ``p_i = c_i + mu / (1 - q_i(p))`` for every ``i`` (solved numerically with
  :func:`scipy.optimize.root`, residual checked).
* **Monopoly** (joint-profit maximising) prices maximise ``sum_i pi_i(p)``; the
  first-order conditions are ``p_i - c_i = mu + sum_j (p_j - c_j) q_j(p)`` for
  every ``i`` (all mark-ups equal), solved the same way and checked against a
  direct numerical maximisation.
* **Profit gain** ``Delta = (pi - pi_N) / (pi_M - pi_N)`` with ``pi_N``, ``pi_M``
  the per-firm profits at the Nash and monopoly prices: 0 at Nash, 1 at full
  collusion.

Source: E. Calvano, G. Calzolari, V. Denicolò and S. Pastorello (2020),
"Artificial Intelligence, Algorithmic Pricing, and Collusion", AER 110(10),
baseline: ``a_i = 2, a_0 = 0, c_i = 1, mu = 1/4``, for which the paper reports
``p_N ≈ 1.473`` and ``p_M ≈ 1.925``.

All functions take numpy arrays; prices carry any leading batch shape ``(..., n)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from scipy import optimize

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError

__all__ = [
    "LogitMarket",
    "bertrand_nash",
    "best_response_index",
    "joint_monopoly",
    "logit_demand",
    "logit_profit",
    "price_grid",
    "profit_gain",
    "profit_table",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class LogitMarket(Config):
    """A logit-demand oligopoly with an outside good (symmetric unless tuples differ)."""

    n_firms: int = param(2, "Number of firms.", ge=1)
    a: tuple[float, ...] = param((2.0,), "Product quality index a_i (one value for all firms, or one per firm).")
    a0: float = param(0.0, "Quality index of the outside good a_0.")
    c: tuple[float, ...] = param((1.0,), "Marginal cost c_i (one value for all firms, or one per firm).", ge=0.0)
    mu: float = param(0.25, "Horizontal differentiation mu (logit scale); mu -> 0 is perfect substitutes.", gt=0.0)

    def validate(self) -> None:
        for name in ("a", "c"):
            v = getattr(self, name)
            if len(v) not in (1, self.n_firms):
                raise ConfigError(
                    f"LogitMarket.{name} = {list(v)} has {len(v)} values; expected 1 or n_firms = {self.n_firms}"
                )

    @property
    def a_vec(self) -> np.ndarray:
        """Quality indices, shape ``(n,)``."""
        return np.broadcast_to(np.asarray(self.a, dtype=float), (self.n_firms,)).copy()

    @property
    def c_vec(self) -> np.ndarray:
        """Marginal costs, shape ``(n,)``."""
        return np.broadcast_to(np.asarray(self.c, dtype=float), (self.n_firms,)).copy()


def logit_demand(p: np.ndarray, market: LogitMarket) -> np.ndarray:
    """Logit demand ``q_i(p)``.

    Args:
        p: Prices, shape ``(..., n)``.
        market: Demand parameters.

    Returns:
        Quantities, shape ``(..., n)``, each in (0, 1), summing to less than 1.
    """
    p = np.asarray(p, dtype=float)
    u = (market.a_vec - p) / market.mu
    u0 = market.a0 / market.mu
    m = np.maximum(u.max(axis=-1, keepdims=True), u0)  # log-sum-exp shift for stability
    e = np.exp(u - m)
    return e / (e.sum(axis=-1, keepdims=True) + np.exp(u0 - m))


def logit_profit(p: np.ndarray, market: LogitMarket) -> np.ndarray:
    """Per-period profits ``pi_i(p) = (p_i - c_i) q_i(p)``, shape ``(..., n)``."""
    p = np.asarray(p, dtype=float)
    return (p - market.c_vec) * logit_demand(p, market)


def _nash_residual(p: np.ndarray, market: LogitMarket) -> np.ndarray:
    q = logit_demand(p, market)
    return p - market.c_vec - market.mu / (1.0 - q)


def _monopoly_residual(p: np.ndarray, market: LogitMarket) -> np.ndarray:
    q = logit_demand(p, market)
    markup = p - market.c_vec
    return markup - market.mu - np.sum(markup * q)


def _solve(residual: Any, market: LogitMarket, what: str) -> np.ndarray:
    x0 = market.c_vec + market.mu * 2.0
    sol = optimize.root(residual, x0, args=(market,), method="hybr", tol=1e-13)
    res = np.max(np.abs(residual(sol.x, market)))
    if res > 1e-10:  # judged by the residual: hybr may report "no further improvement" at machine precision
        raise RuntimeError(f"{what} price solver did not converge (residual {res:.2e}): {sol.message}")
    return sol.x


def bertrand_nash(market: LogitMarket) -> np.ndarray:
    """Static Bertrand-Nash prices, shape ``(n,)``, from ``p_i = c_i + mu / (1 - q_i(p))``."""
    return _solve(_nash_residual, market, "Bertrand-Nash")


def joint_monopoly(market: LogitMarket) -> np.ndarray:
    """Joint-profit maximising prices, shape ``(n,)``, from ``p_i - c_i = mu + sum_j (p_j - c_j) q_j``."""
    return _solve(_monopoly_residual, market, "monopoly")


def price_grid(p_nash: float, p_monopoly: float, m: int = 15, xi: float = 0.1) -> np.ndarray:
    """Calvano's price grid: ``m`` equally spaced points on ``[p_N - xi (p_M - p_N), p_M + xi (p_M - p_N)]``."""
    span = p_monopoly - p_nash
    return np.linspace(p_nash - xi * span, p_monopoly + xi * span, m)


def profit_table(grid: np.ndarray, market: LogitMarket) -> np.ndarray:
    """Profits of every price profile on a common grid.

    Args:
        grid: Price grid, shape ``(m,)``; every firm chooses from it.
        market: Demand parameters.

    Returns:
        ``(n, m**n)`` array: ``table[i, k]`` is firm ``i``'s profit at the action profile
        with flat index ``k = sum_j a_j m**(n-1-j)`` (firm 0 is the most significant digit).
    """
    n, m = market.n_firms, len(grid)
    idx = np.indices((m,) * n).reshape(n, -1).T  # (m**n, n), row-major = flat index order
    return logit_profit(np.asarray(grid)[idx], market).T.copy()


def best_response_index(table: np.ndarray, m: int, firm: int, rival_profile: np.ndarray) -> np.ndarray:
    """Static best response on the grid of ``firm`` (duopoly) to the rival's action index.

    Args:
        table: Profit table from :func:`profit_table`, shape ``(2, m*m)``.
        m: Grid size.
        firm: 0 or 1.
        rival_profile: Rival action indices, any shape.

    Returns:
        Best-response action indices, same shape as ``rival_profile``.
    """
    t = table[firm].reshape(m, m)  # t[a0, a1]
    own = t if firm == 0 else t.T  # own[a_own, a_rival]
    return np.argmax(own[:, np.asarray(rival_profile)], axis=0)


def profit_gain(profit: np.ndarray | float, pi_nash: float, pi_monopoly: float) -> np.ndarray:
    """Calvano's profit gain ``Delta = (pi - pi_N) / (pi_M - pi_N)`` (element-wise)."""
    return (np.asarray(profit, dtype=float) - pi_nash) / (pi_monopoly - pi_nash)
