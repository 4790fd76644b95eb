"""A production-externality coordination game with Pareto-ranked equilibria (Cooper and John 1988 style).

Two players choose effort ``e_i`` in ``[0, 1]`` (on a grid of ``K`` points in the
learning experiments). Payoff

    pi_i(e_i, e_j) = theta(e_j) e_i - e_i^2 / 2,

where the return to own effort ``theta`` rises with the other's effort (a production
externality) along an S-shaped curve between ``e_L`` and ``e_H``:

    theta(e) = e_L + (e_H - e_L) S(x),  x = clip((e - e_L) / (e_H - e_L), 0, 1),
    S(x) = 6 x^5 - 15 x^4 + 10 x^3       ("smootherstep": S(0)=0, S(1/2)=1/2, S(1)=1).

Payoffs are increasing in the other's effort (positive spillovers) and
``d^2 pi_i / de_i de_j = theta'(e_j) >= 0`` (strategic complements), the two
conditions of Cooper and John (1988) for multiple Pareto-ranked equilibria.

**Analytic equilibria.** The best response is ``BR(e_j) = theta(e_j)`` (interior,
since ``theta`` maps into ``[e_L, e_H]``). Symmetric equilibria solve
``theta(e) = e``; with ``x = (e - e_L)/(e_H - e_L)`` that is ``S(x) = x``, i.e.
``x (x - 1)(2x - 1)(3x^2 - 3x - 1) = 0``; the last factor's roots
``(3 ± sqrt 21)/6`` lie outside ``[0, 1]``, so the equilibria are exactly

    e_low = e_L,   e_mid = (e_L + e_H)/2,   e_high = e_H,

with payoffs ``pi(e, e) = e^2 / 2`` (Pareto-ranked: high > mid > low). Under
best-response dynamics ``e' = theta(e)`` the outer two are stable (``S'(0) = S'(1) =
0``) and the middle one unstable (``S'(1/2) = 15/8 > 1``); there are no asymmetric
equilibria because ``theta(theta(e)) = e`` only at the fixed points of the monotone
map ``theta``. On a finite grid the pure equilibria are found by enumeration
(:func:`pure_nash_equilibria`), which the tests check against these closed forms.

Source: R. Cooper and A. John (1988), "Coordinating Coordination Failures in
Keynesian Models", QJE 103(3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError

__all__ = [
    "CoordinationGame",
    "best_response_dynamics",
    "payoff_matrix",
    "pure_nash_equilibria",
    "smootherstep",
    "symmetric_equilibria",
    "theta",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class CoordinationGame(Config):
    """Parameters of the two-player effort game."""

    e_low: float = param(0.2, "Low-effort equilibrium e_L (theta's lower plateau).", ge=0.0, le=1.0)
    e_high: float = param(0.8, "High-effort equilibrium e_H (theta's upper plateau).", ge=0.0, le=1.0)
    n_actions: int = param(11, "Effort grid points K on [0, 1] (the learners' actions).", ge=3)

    def validate(self) -> None:
        if not self.e_low < self.e_high:
            raise ConfigError(f"CoordinationGame: e_low = {self.e_low} must be < e_high = {self.e_high}")

    @property
    def grid(self) -> np.ndarray:
        """Effort grid, shape ``(K,)``."""
        return np.linspace(0.0, 1.0, self.n_actions)


def smootherstep(x: np.ndarray | float) -> np.ndarray:
    """``S(x) = 6x^5 - 15x^4 + 10x^3`` on ``x`` clipped to ``[0, 1]``."""
    x = np.clip(np.asarray(x, dtype=float), 0.0, 1.0)
    return x**3 * (x * (6.0 * x - 15.0) + 10.0)


def theta(e: np.ndarray | float, game: CoordinationGame) -> np.ndarray:
    """Return to own effort given the other's effort ``e`` (also the best response)."""
    span = game.e_high - game.e_low
    return game.e_low + span * smootherstep((np.asarray(e, dtype=float) - game.e_low) / span)


def payoff_matrix(game: CoordinationGame) -> np.ndarray:
    """``P[a, b] = pi(e_a, e_b)``: payoff of effort index ``a`` against the other's ``b``, shape ``(K, K)``."""
    g = game.grid
    return g[:, None] * theta(g, game)[None, :] - 0.5 * g[:, None] ** 2


def symmetric_equilibria(game: CoordinationGame) -> dict[str, float]:
    """Closed-form symmetric equilibria of the continuous game (see the module docstring)."""
    return {"low": game.e_low, "mid": 0.5 * (game.e_low + game.e_high), "high": game.e_high}


def pure_nash_equilibria(payoff: np.ndarray) -> list[tuple[int, int]]:
    """All pure Nash equilibria ``(a_1, a_2)`` of the symmetric game ``pi_1 = P[a1, a2]``, ``pi_2 = P[a2, a1]``.

    A profile is an equilibrium when each action is a best response (payoff within
    ``1e-12`` of the column maximum) to the other's.
    """
    best = payoff.max(axis=0)  # best payoff against each opponent action
    is_br = payoff >= best[None, :] - 1e-12  # is_br[a, b]: a is a best reply to b
    k = payoff.shape[0]
    return [(a, b) for a in range(k) for b in range(k) if is_br[a, b] and is_br[b, a]]


def best_response_dynamics(payoff: np.ndarray, a1: np.ndarray, a2: np.ndarray, steps: int = 200) -> np.ndarray:
    """Simultaneous grid best-response dynamics from action profiles ``(a1, a2)`` (any equal shapes).

    Returns:
        ``(..., 2)`` profile after ``steps`` rounds (a fixed point when the dynamics converge).
    """
    br = np.argmax(payoff, axis=0)  # br[b]: best reply to b (first maximiser)
    x, y = np.asarray(a1).copy(), np.asarray(a2).copy()
    for _ in range(steps):
        x, y = br[y], br[x]
    return np.stack([x, y], axis=-1)
