"""Stationary equilibrium of the Aiyagari (1994) economy: the Krusell-Smith model without aggregate risk.

Households (a continuum) face idiosyncratic labour-efficiency risk and save in capital::

    max E_0 sum_t beta^t c_t^(1-sigma) / (1-sigma)
    s.t. c_t + a_{t+1} = (1 + r) a_t + w e_t,   a_{t+1} >= a_min,
    log e_{t+1} = rho_e log e_t + sd_e eps_{t+1}   (Rouwenhorst, n_e states, E[e] = 1)

A competitive firm rents capital and labour (L = E[e] = 1)::

    r = alpha z K^(alpha-1) L^(1-alpha) - delta,   w = (1-alpha) z K^alpha L^(-alpha)

Equilibrium: ``K = int a' dG`` with ``G`` the stationary distribution. The
household block is solved by the endogenous grid method (Carroll 2006), the
distribution by Young's (2010) lottery method on the asset grid, and ``r`` by
bisection on excess capital supply.

Default calibration: the Krusell-Smith model of Yang, Wang, Schaab and Moll
(2025, "Structural Reinforcement Learning for Heterogeneous Agent
Macroeconomics"): beta 0.95, sigma 3, alpha 0.36, delta 0.08, income AR(1)
rho 0.6 with innovation sd 0.2 on 3 Rouwenhorst states, borrowing limit 0.

Everything is vectorised torch (float64) over the grid; the only Python loops
are fixed-point iterations.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import torch

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.numerics import asset_grid, interp_rows, rouwenhorst
from abm_markets.numerics import stationary_distribution as markov_stationary

__all__ = [
    "AiyagariConfig",
    "HouseholdCalibration",
    "StationaryEquilibrium",
    "asset_grid",
    "egm_policy",
    "firm",
    "income_process",
    "interp_rows",
    "lottery",
    "lottery_matrix",
    "push_forward",
    "rouwenhorst",
    "solve_stationary",
    "stationary_distribution",
]

DTYPE = torch.float64


@dataclasses.dataclass(frozen=True, kw_only=True)
class HouseholdCalibration(Config):
    """Preferences, technology and idiosyncratic risk of the Krusell-Smith calibration.

    Shared by the stationary economy (:class:`AiyagariConfig`) and the economy with
    aggregate risk (:class:`abm_markets.solvers.krusell_smith.KSCalibration`), so
    both solve the same households.
    """

    beta: float = param(0.95, "Discount factor (per period).", gt=0.0, lt=1.0)
    sigma: float = param(3.0, "Coefficient of relative risk aversion (CRRA).", gt=0.0)
    alpha: float = param(0.36, "Capital share in Cobb-Douglas production.", gt=0.0, lt=1.0)
    delta: float = param(0.08, "Depreciation rate of capital.", ge=0.0, le=1.0)
    rho_e: float = param(0.6, "Persistence of log labour efficiency (AR(1)).", ge=0.0, lt=1.0)
    sd_e: float = param(0.2, "Innovation standard deviation of log labour efficiency.", ge=0.0)
    n_e: int = param(3, "Number of Rouwenhorst states for labour efficiency.", ge=1)
    n_a: int = param(200, "Number of asset grid points.", ge=10)
    grid_power: float = param(2.0, "Curvature of the asset grid (1 = uniform, >1 denser near the limit).", ge=1.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class AiyagariConfig(HouseholdCalibration):
    """Calibration and numerics of the stationary Krusell-Smith (Aiyagari) economy."""

    a_min: float = param(0.0, "Borrowing limit (minimum assets).")
    a_max: float = param(50.0, "Largest asset grid point.")
    z: float = param(1.0, "Total factor productivity (no aggregate risk).", gt=0.0)
    tol_egm: float = param(1e-10, "Sup-norm tolerance of the EGM fixed point on consumption.", gt=0.0)
    tol_dist: float = param(1e-12, "Sup-norm tolerance of the stationary distribution.", gt=0.0)
    tol_r: float = param(1e-9, "Tolerance of the bisection on r.", gt=0.0)
    max_iter: int = param(20_000, "Maximum iterations of each fixed point.", ge=10)

    def validate(self) -> None:
        if self.a_max <= self.a_min:
            raise ConfigError(f"AiyagariConfig.a_max = {self.a_max} must exceed a_min = {self.a_min}")


class StationaryEquilibrium(NamedTuple):
    """Result of :func:`solve_stationary` (tensors are float64 on CPU).

    Attributes:
        K: Aggregate capital (= aggregate household assets).
        r: Net interest rate.
        w: Wage per efficiency unit.
        a_grid: Asset grid, shape ``(n_a,)``.
        e: Labour-efficiency states, shape ``(n_e,)`` (mean 1 under ``pi_e``).
        P_e: Efficiency transition matrix, shape ``(n_e, n_e)``.
        pi_e: Stationary distribution of ``e``, shape ``(n_e,)``.
        a_next: Savings policy ``a'(a, e)``, shape ``(n_a, n_e)``.
        c: Consumption policy ``c(a, e)``, shape ``(n_a, n_e)``.
        dist: Stationary distribution on the grid, shape ``(n_a, n_e)``, sums to 1.
        excess: Capital supply minus demand at the solution.
        iterations: Bisection steps taken.
    """

    K: float
    r: float
    w: float
    a_grid: torch.Tensor
    e: torch.Tensor
    P_e: torch.Tensor
    pi_e: torch.Tensor
    a_next: torch.Tensor
    c: torch.Tensor
    dist: torch.Tensor
    excess: float
    iterations: int


# ------------------------------------------------------------------ building blocks


def income_process(n: int, rho: float, sd_innov: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Labour efficiency ``e = exp(x) / E[exp(x)]`` on a Rouwenhorst grid.

    Returns:
        ``(e, P, pi)`` with ``pi @ e == 1``.
    """
    x, P = rouwenhorst(n, rho, sd_innov)
    pi = markov_stationary(P)
    e = torch.exp(x)
    return e / (pi @ e), P, pi


def firm(K: torch.Tensor | float, z: torch.Tensor | float, alpha: float, delta: float, L: float = 1.0):
    """Competitive Cobb-Douglas firm: ``(r, w, Y)`` with ``Y = z K^alpha L^(1-alpha)``.

    ``r = alpha Y / K - delta``, ``w = (1 - alpha) Y / L``. Broadcasts over tensors.
    """
    Y = z * K**alpha * L ** (1.0 - alpha)
    return alpha * Y / K - delta, (1.0 - alpha) * Y / L, Y


def capital_demand(r: float, alpha: float, delta: float, z: float = 1.0, L: float = 1.0) -> float:
    """Firm capital demand ``K = L (alpha z / (r + delta))^(1/(1-alpha))``."""
    return L * (alpha * z / (r + delta)) ** (1.0 / (1.0 - alpha))


def lottery(grid: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Young's lottery: split a point ``x`` between its two neighbouring grid points.

    Returns:
        ``(i, w)``: lower index (shape of ``x``) and the weight on ``grid[i]``;
        ``1 - w`` goes to ``grid[i + 1]``. Points outside the grid are clamped, so
        the split preserves the mean inside the grid.
    """
    n = grid.shape[0]
    xc = x.clamp(grid[0], grid[-1])
    i = (torch.searchsorted(grid, xc.contiguous(), right=True) - 1).clamp(0, n - 2)
    w = (grid[i + 1] - xc) / (grid[i + 1] - grid[i])
    return i, w


def push_forward(dist: torch.Tensor, i: torch.Tensor, w: torch.Tensor, P_e: torch.Tensor) -> torch.Tensor:
    """One step of the distribution on the ``(a, e)`` grid.

    ``g'(a'', e') = sum_{a, e} g(a, e) L(a'' | a'(a, e)) P_e(e, e')`` with ``L`` the lottery.

    Args:
        dist: Mass, shape ``(..., n_a, n_e)``.
        i, w: Lottery of the savings policy, shape ``(..., n_a, n_e)``.
        P_e: Efficiency transition, ``(n_e, n_e)``.
    """
    out = torch.zeros_like(dist)
    out.scatter_add_(-2, i, dist * w)
    out.scatter_add_(-2, i + 1, dist * (1.0 - w))
    return out @ P_e


def egm_step(
    c_next: torch.Tensor,
    a_grid: torch.Tensor,
    e: torch.Tensor,
    P_e: torch.Tensor,
    R_next: torch.Tensor | float,
    R_now: torch.Tensor | float,
    w_now: torch.Tensor | float,
    beta: float,
    sigma: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One endogenous-grid step with a borrowing limit at ``a_grid[0]``.

    ``c(a') = (beta E[R' c'(a', e')^-sigma | e])^(-1/sigma)``, endogenous assets
    ``a = (c + a' - w e) / R``, then interpolation back onto ``a_grid``.

    Args:
        c_next: Next-period consumption on the grid, ``(n_a, n_e)``.
        R_next: Gross return ``1 + r'`` (scalar).
        R_now, w_now: Today's gross return and wage.

    Returns:
        ``(a_next, c)`` on the grid, each ``(n_a, n_e)``.
    """
    emu = beta * R_next * (c_next ** (-sigma)) @ P_e.T  # (n_a', n_e)
    c_endo = emu ** (-1.0 / sigma)
    a_endo = (c_endo + a_grid[:, None] - w_now * e[None, :]) / R_now
    a_next = interp_rows(a_endo.T, a_grid.expand(e.shape[0], -1), a_grid.expand(e.shape[0], -1)).T
    a_next = a_next.clamp(min=float(a_grid[0]))
    c = R_now * a_grid[:, None] + w_now * e[None, :] - a_next
    return a_next, c


def egm_policy(
    a_grid: torch.Tensor,
    e: torch.Tensor,
    P_e: torch.Tensor,
    r: float,
    w: float,
    beta: float,
    sigma: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 20_000,
    c_init: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Stationary household policy at constant prices by EGM iteration.

    Returns:
        ``(a_next, c, iterations)`` with policies of shape ``(n_a, n_e)``.
    """
    R = 1.0 + r
    c = c_init if c_init is not None else (r * a_grid[:, None] + w * e[None, :]).clamp(min=1e-3)
    for it in range(1, max_iter + 1):
        a_next, c_new = egm_step(c, a_grid, e, P_e, R, R, w, beta, sigma)
        if float((c_new - c).abs().max()) < tol:
            return a_next, c_new, it
        c = c_new
    return a_next, c_new, max_iter


def lottery_matrix(a_grid: torch.Tensor, a_next: torch.Tensor, P_e: torch.Tensor) -> torch.Tensor:
    """Dense transition matrix of the lottery chain on the flattened ``(a, e)`` grid.

    Returns:
        ``Q`` of shape ``(n_a n_e, n_a n_e)``, row ``a * n_e + e`` holding
        ``L(a'' | a'(a, e)) P_e(e, e')`` at column ``a'' * n_e + e'``.
    """
    n_a, n_e = a_next.shape
    i, w = lottery(a_grid, a_next)
    L = torch.zeros(n_a, n_e, n_a, dtype=a_next.dtype)
    L.scatter_add_(2, i[..., None], w[..., None])
    L.scatter_add_(2, (i + 1)[..., None], (1.0 - w)[..., None])
    return (L[:, :, :, None] * P_e[None, :, None, :]).reshape(n_a * n_e, n_a * n_e)


def stationary_distribution(
    a_grid: torch.Tensor,
    a_next: torch.Tensor,
    P_e: torch.Tensor,
    *,
    tol: float = 1e-12,
    max_iter: int = 100_000,
    dist_init: torch.Tensor | None = None,
    direct_max: int = 4000,
) -> tuple[torch.Tensor, int]:
    """Stationary distribution of the lottery chain on the ``(a, e)`` grid.

    For up to ``direct_max`` states the invariant vector solves ``g (Q - I) = 0``,
    ``sum g = 1`` directly (one dense solve, iterations reported as 0); larger grids
    iterate ``g <- push_forward(g)`` to a sup-norm change below ``tol``.

    Returns:
        ``(dist, iterations)`` with ``dist`` of shape ``(n_a, n_e)``.
    """
    n_a, n_e = a_next.shape
    if n_a * n_e <= direct_max:
        Q = lottery_matrix(a_grid, a_next, P_e)
        A = Q.T - torch.eye(n_a * n_e, dtype=Q.dtype)
        A[-1] = 1.0
        b = torch.zeros(n_a * n_e, dtype=Q.dtype)
        b[-1] = 1.0
        g = torch.linalg.solve(A, b).clamp(min=0.0)
        return (g / g.sum()).reshape(n_a, n_e), 0
    i, w = lottery(a_grid, a_next)
    pi_e = markov_stationary(P_e)
    g = dist_init if dist_init is not None else torch.ones(n_a, 1, dtype=DTYPE) / n_a * pi_e[None, :]
    for it in range(1, max_iter + 1):
        new = push_forward(g, i, w, P_e)
        if float((new - g).abs().max()) < tol:
            return new / new.sum(), it
        g = new
    return g / g.sum(), max_iter


def capital_supply(cfg: AiyagariConfig, r: float, grids=None, c_init=None, dist_init=None):
    """Aggregate household assets at interest rate ``r`` (wage from the firm's FOC).

    Returns:
        ``(K_supply, a_next, c, dist)``.
    """
    a_grid, e, P_e, _ = grids if grids is not None else make_grids(cfg)
    K_d = capital_demand(r, cfg.alpha, cfg.delta, cfg.z)
    _, w, _ = firm(K_d, cfg.z, cfg.alpha, cfg.delta)
    a_next, c, _ = egm_policy(
        a_grid, e, P_e, r, w, cfg.beta, cfg.sigma, tol=cfg.tol_egm, max_iter=cfg.max_iter, c_init=c_init
    )
    dist, _ = stationary_distribution(
        a_grid, a_next, P_e, tol=cfg.tol_dist, max_iter=cfg.max_iter * 10, dist_init=dist_init
    )
    return float((dist * a_grid[:, None]).sum()), a_next, c, dist


def make_grids(cfg: AiyagariConfig):
    """``(a_grid, e, P_e, pi_e)`` for a config."""
    e, P_e, pi_e = income_process(cfg.n_e, cfg.rho_e, cfg.sd_e)
    return asset_grid(cfg.a_min, cfg.a_max, cfg.n_a, cfg.grid_power), e, P_e, pi_e


def solve_stationary(cfg: AiyagariConfig | None = None) -> StationaryEquilibrium:
    """Stationary equilibrium by bisection on ``r`` in ``(-delta, 1/beta - 1)``.

    Excess supply ``S(r) - K_d(r)`` is increasing in ``r``; bisection stops when
    the bracket is narrower than ``tol_r``.
    """
    cfg = cfg or AiyagariConfig()
    grids = make_grids(cfg)
    a_grid, e, P_e, pi_e = grids
    lo, hi = -cfg.delta + 1e-4, 1.0 / cfg.beta - 1.0 - 1e-8
    c_init = dist_init = None
    it = 0
    while hi - lo > cfg.tol_r and it < 200:
        it += 1
        r = 0.5 * (lo + hi)
        K_s, a_next, c, dist = capital_supply(cfg, r, grids, c_init, dist_init)
        c_init, dist_init = c, dist
        if K_s > capital_demand(r, cfg.alpha, cfg.delta, cfg.z):
            hi = r
        else:
            lo = r
    r = 0.5 * (lo + hi)
    K_s, a_next, c, dist = capital_supply(cfg, r, grids, c_init, dist_init)
    K_d = capital_demand(r, cfg.alpha, cfg.delta, cfg.z)
    _, w, _ = firm(K_d, cfg.z, cfg.alpha, cfg.delta)
    return StationaryEquilibrium(
        K=K_s,
        r=r,
        w=float(w),
        a_grid=a_grid,
        e=e,
        P_e=P_e,
        pi_e=pi_e,
        a_next=a_next,
        c=c,
        dist=dist,
        excess=K_s - K_d,
        iterations=it,
    )
