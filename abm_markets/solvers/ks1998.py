"""Krusell and Smith (1998), the paper's benchmark economy, solved by the Krusell-Smith algorithm.

Economy (one period is a quarter; Krusell and Smith 1998, JPE 106(5), section II
and the benchmark calibration of section III)::

    c_t + k_{t+1} = (1 + r_t) k_t + w_t l_bar eps_t,      k_{t+1} >= 0,     u(c) = log c
    Y_t = z_t K_t^alpha L_t^(1 - alpha),   L_t = l_bar (1 - u(z_t)),
    r_t = alpha Y_t / K_t - delta,         w_t = (1 - alpha) Y_t / L_t

``z`` takes two values (bad ``0.99``, good ``1.01``); ``eps`` is employment
(0 unemployed with no income, 1 employed with ``l_bar = 0.3271`` hours). The
pair ``(z, eps)`` is one Markov chain whose 16 probabilities follow from the
paper's restrictions (:func:`transition`): both aggregate states last 8
quarters on average; unemployment is 4% in good and 10% in bad times and lasts
1.5 and 2.5 quarters; ``P(uu | g->b) = 1.25 P(uu | b->b)`` and ``P(uu | b->g) =
0.75 P(uu | g->g)``; employment moves with ``z`` so that the unemployment rate
is exactly ``u(z)`` every period. ``beta = 0.99``, ``alpha = 0.36``, ``delta =
0.025``, log utility.

Households perceive the aggregate law of motion ``log K' = b0[z] + b1[z] log K``.
The algorithm is the one of :mod:`abm_markets.solvers.krusell_smith` with the
joint (z, eps) chain: endogenous-grid household on ``(k, eps, K, z)``,
non-stochastic simulation of the distribution on a long TFP path (11,000
quarters, the first 1,000 discarded, as in the paper), a regression per
aggregate state, damped until the coefficients stop moving.

The paper's answer (p. 877): ``log K' = 0.095 + 0.962 log K`` in good times and
``0.085 + 0.965 log K`` in bad times, R^2 = 0.999998 in both (:data:`PUBLISHED`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, NamedTuple

import numpy as np
import torch

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.numerics import asset_grid, interp_rows
from abm_markets.solvers.aiyagari import DTYPE, lottery
from abm_markets.solvers.krusell_smith import den_haan, interp_policy_K, regress_law, simulate_tfp

__all__ = [
    "BAD",
    "GOOD",
    "PUBLISHED",
    "KS98Calibration",
    "KS98Config",
    "KS98Solution",
    "euler_errors",
    "prices",
    "simulate",
    "solve",
    "transition",
]

BAD, GOOD = 0, 1
"""Aggregate state indices (``z`` index 0 is the bad state)."""

PUBLISHED: dict[str, Any] = {
    "alm_good": (0.095, 0.962),
    "alm_bad": (0.085, 0.965),
    "r2_good": 0.999998,
    "r2_bad": 0.999998,
    "source": "Krusell and Smith (1998), Journal of Political Economy 106(5), p. 877",
}
"""The paper's aggregate law of motion, ``[intercept, slope]`` of ``log K'`` on ``log K``."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class KS98Calibration(Config):
    """The paper's benchmark economy and the households' grids."""

    beta: float = param(0.99, "Discount factor (quarterly).", gt=0.0, lt=1.0)
    sigma: float = param(1.0, "Relative risk aversion (1: log utility, the paper's benchmark).", gt=0.0)
    alpha: float = param(0.36, "Capital share.", gt=0.0, lt=1.0)
    delta: float = param(0.025, "Depreciation per quarter.", ge=0.0, lt=1.0)
    z_bad: float = param(0.99, "TFP in bad times.", gt=0.0)
    z_good: float = param(1.01, "TFP in good times.", gt=0.0)
    u_bad: float = param(0.10, "Unemployment rate in bad times.", gt=0.0, lt=1.0)
    u_good: float = param(0.04, "Unemployment rate in good times.", gt=0.0, lt=1.0)
    duration_z: float = param(8.0, "Mean duration of good and of bad times (quarters).", gt=1.0)
    duration_u_bad: float = param(2.5, "Mean unemployment spell in bad times (quarters).", gt=1.0)
    duration_u_good: float = param(1.5, "Mean unemployment spell in good times (quarters).", gt=1.0)
    uu_ratio_gb: float = param(1.25, "P(stay unemployed | good -> bad) / P(stay unemployed | bad -> bad).", gt=0.0)
    uu_ratio_bg: float = param(0.75, "P(stay unemployed | bad -> good) / P(stay unemployed | good -> good).", gt=0.0)
    l_bar: float = param(0.3271, "Hours of an employed household.", gt=0.0)
    n_a: int = param(100, "Individual capital grid points on [0, a_max].", ge=10)
    a_max: float = param(200.0, "Largest individual capital on the grid.", gt=0.0)
    grid_power: float = param(3.0, "Grid spacing power (points dense near 0).", ge=1.0)
    n_K: int = param(8, "Aggregate capital grid points.", ge=3)
    K_min: float = param(9.0, "Smallest aggregate capital on the grid.", gt=0.0)
    K_max: float = param(14.5, "Largest aggregate capital on the grid.", gt=0.0)

    def validate(self) -> None:
        if self.K_max <= self.K_min:
            raise ConfigError(f"K_max = {self.K_max} must be > K_min = {self.K_min}")
        if self.u_good >= self.u_bad:
            raise ConfigError(
                f"u_good = {self.u_good} must be < u_bad = {self.u_bad} (unemployment is higher in bad times)"
            )
        _transition_or_error(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class KS98Config(KS98Calibration):
    """Calibration and the algorithm's numerics (defaults: the paper's simulation length)."""

    T: int = param(11000, "Simulated quarters per iteration.", ge=100)
    burn: int = param(1000, "Discarded initial quarters.", ge=0)
    damping: float = param(0.3, "Weight on the new regression coefficients.", gt=0.0, le=1.0)
    tol_coef: float = param(1e-6, "Stop when the coefficients change by less than this.", gt=0.0)
    max_outer: int = param(80, "Maximum outer iterations.", ge=1)
    tol_egm: float = param(1e-9, "EGM tolerance on consumption.", gt=0.0)
    max_egm: int = param(10000, "Maximum EGM iterations per outer iteration.", ge=1)

    def validate(self) -> None:
        super().validate()
        if self.burn >= self.T - 100:
            raise ConfigError(f"burn = {self.burn} must be < T - 100 = {self.T - 100}")


def _transition_or_error(cal: KS98Calibration) -> tuple[torch.Tensor, torch.Tensor]:
    Pz, P = transition(cal)
    if bool((P < 0).any()) or bool((P > 1).any()):
        raise ConfigError(
            "the unemployment rates and spell durations admit no transition matrix "
            f"(a probability falls outside [0, 1]: min {float(P.min()):.4f}, max {float(P.max()):.4f}); "
            "expected durations and rates like the paper's (1.5 / 2.5 quarters, 4% / 10%)"
        )
    return Pz, P


def transition(cal: KS98Calibration) -> tuple[torch.Tensor, torch.Tensor]:
    """The joint chain of aggregate and employment states from the paper's restrictions.

    Returns:
        ``(Pz, P)``: ``Pz[z, z']`` ``(2, 2)`` and ``P[z, eps, z', eps']`` ``(2, 2, 2, 2)``
        with ``sum_{z', eps'} P[z, eps] = 1`` and ``sum_eps' P[z, eps, z'] = Pz[z, z']``.
    """
    stay = 1.0 - 1.0 / cal.duration_z
    Pz = torch.tensor([[stay, 1 - stay], [1 - stay, stay]], dtype=DTYPE)
    u = (cal.u_bad, cal.u_good)
    uu = torch.empty(2, 2, dtype=DTYPE)  # P(unemployed -> unemployed | z, z')
    uu[BAD, BAD] = 1.0 - 1.0 / cal.duration_u_bad
    uu[GOOD, GOOD] = 1.0 - 1.0 / cal.duration_u_good
    uu[GOOD, BAD] = cal.uu_ratio_gb * uu[BAD, BAD]
    uu[BAD, GOOD] = cal.uu_ratio_bg * uu[GOOD, GOOD]
    P = torch.empty(2, 2, 2, 2, dtype=DTYPE)
    for z in (BAD, GOOD):
        for zn in (BAD, GOOD):
            # unemployment next period is exactly u(z'): u(z) uu + (1 - u(z)) eu = u(z')
            eu = (u[zn] - u[z] * uu[z, zn]) / (1.0 - u[z])
            P[z, 0, zn] = Pz[z, zn] * torch.stack([uu[z, zn], 1 - uu[z, zn]])
            P[z, 1, zn] = Pz[z, zn] * torch.stack([eu, 1 - eu])
    return Pz, P


def prices(K: torch.Tensor | float, z_index, cal: KS98Calibration) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(r, w, Y)`` at aggregate capital ``K`` in aggregate state ``z_index`` (broadcasts)."""
    zi = torch.as_tensor(z_index)
    z = torch.where(zi == GOOD, cal.z_good, cal.z_bad).to(DTYPE)
    L = torch.where(zi == GOOD, cal.l_bar * (1 - cal.u_good), cal.l_bar * (1 - cal.u_bad)).to(DTYPE)
    K = torch.as_tensor(K, dtype=DTYPE)
    Y = z * K**cal.alpha * L ** (1.0 - cal.alpha)
    return cal.alpha * Y / K - cal.delta, (1.0 - cal.alpha) * Y / L, Y


class KS98Solution(NamedTuple):
    """Result of :func:`solve`.

    Attributes:
        coef: ``(2, 2)``: ``log K' = coef[z, 0] + coef[z, 1] log K`` (row 0 bad, row 1 good).
        r2: ``(2,)`` R^2 of each state's regression.
        den_haan_max, den_haan_mean: Den Haan's error of the law iterated alone from ``K_0`` (percent).
        K_path, C_path: ``(T,)`` simulated aggregates; ``z_idx`` ``(T,)`` the aggregate states.
        a_next, c: Policies on ``(n_a, 2, n_K, 2)`` (individual capital, employment, K, z).
        a_grid, K_grid, Pz, P: Grids and the joint chain.
        dist_end: ``(n_a, 2)`` distribution in the last period.
        outer_iterations, converged, max_coef_change
    """

    coef: torch.Tensor
    r2: torch.Tensor
    den_haan_max: float
    den_haan_mean: float
    K_path: torch.Tensor
    C_path: torch.Tensor
    z_idx: torch.Tensor
    a_next: torch.Tensor
    c: torch.Tensor
    a_grid: torch.Tensor
    K_grid: torch.Tensor
    Pz: torch.Tensor
    P: torch.Tensor
    dist_end: torch.Tensor
    outer_iterations: int
    converged: bool
    max_coef_change: float


def _grids(cal: KS98Calibration):
    a_grid = asset_grid(0.0, cal.a_max, cal.n_a, cal.grid_power)
    K_grid = torch.linspace(cal.K_min, cal.K_max, cal.n_K, dtype=DTYPE)
    eps = torch.tensor([0.0, 1.0], dtype=DTYPE)
    return a_grid, K_grid, eps


def household(cal: KS98Config, coef: torch.Tensor, c_init: torch.Tensor | None = None):
    """EGM solution of the household problem given the perceived law ``coef`` ``(2, 2)``.

    Returns:
        ``(a_next, c, iterations)`` with policies on ``(n_a, 2, n_K, 2)``.
    """
    a_grid, K_grid, eps = _grids(cal)
    _, P = transition(cal)
    n_a, n_K = a_grid.shape[0], K_grid.shape[0]
    zs = torch.arange(2)
    r, w, _ = prices(K_grid[:, None], zs[None, :], cal)  # (n_K, 2)
    K_next = torch.exp(coef[:, 0][None, :] + coef[:, 1][None, :] * torch.log(K_grid)[:, None])  # (n_K, z)
    r_next, _, _ = prices(K_next[:, :, None], zs[None, None, :], cal)  # (n_K, z, z')
    income = w[None, None] * cal.l_bar * eps[None, :, None, None]  # (1, e, n_K, z)
    cash_grid = (1.0 + r)[None, None] * a_grid[:, None, None, None] + income
    c = c_init if c_init is not None else 0.05 * cash_grid + 0.5 * w[None, None] * cal.l_bar
    a_rows = a_grid.expand(2 * n_K * 2, n_a)
    for it in range(1, cal.max_egm + 1):  # noqa: B007 -- the count is returned
        c_next = interp_policy_K(c, K_grid, K_next).clamp(min=1e-10)  # (a', e', n_K, z, z')
        mu = (1.0 + r_next)[None, None] * c_next ** (-cal.sigma)
        emu = cal.beta * torch.einsum("aikzy,zeyi->aekz", mu, P)  # (a', e, n_K, z)
        c_endo = emu ** (-1.0 / cal.sigma)
        a_endo = (c_endo + a_grid[:, None, None, None] - income) / (1.0 + r)[None, None]
        knots = a_endo.permute(1, 2, 3, 0).reshape(-1, n_a)
        a_next = interp_rows(knots, a_rows, a_rows).reshape(2, n_K, 2, n_a).permute(3, 0, 1, 2)
        a_next = a_next.clamp(min=0.0, max=float(a_grid[-1]))
        c_new = cash_grid - a_next
        diff = float((c_new - c).abs().max())
        c = c_new
        if diff < cal.tol_egm:
            break
    return a_next, c, it


def initial_distribution(cal: KS98Calibration, z0: int, K0: float) -> torch.Tensor:
    """All households at capital ``K0`` (split by the lottery), employment at its rate in state ``z0``."""
    a_grid, _, _ = _grids(cal)
    i, wt = lottery(a_grid, torch.tensor([K0], dtype=DTYPE))
    mass = torch.zeros(a_grid.shape[0], dtype=DTYPE)
    mass[i] += wt
    mass[i + 1] += 1 - wt
    u = cal.u_good if z0 == GOOD else cal.u_bad
    return mass[:, None] * torch.tensor([u, 1 - u], dtype=DTYPE)[None, :]


def simulate(policy, cal: KS98Calibration, z_idx: torch.Tensor, dist0: torch.Tensor):
    """Non-stochastic simulation of a savings policy on an aggregate-state path.

    The loop runs in NumPy float64 (a scalar-heavy recursion, about 20x faster than
    small torch ops); the arithmetic is the lottery of :mod:`abm_markets.solvers.aiyagari`.

    Args:
        policy: ``policy(K: float, z_index: int) -> ndarray (n_a, 2)`` next capital on the grid
            (:func:`policy_from_table` for an EGM table).
        z_idx: ``(T,)`` aggregate states.
        dist0: ``(n_a, 2)`` initial distribution over (capital, employment).

    Returns:
        ``(K, C, dist_end)``: ``(T,)``, ``(T,)``, ``(n_a, 2)`` float64 tensors.
    """
    a_grid, _, eps = (x.numpy() for x in _grids(cal))
    Pz, P = transition(cal)
    cond = (P / Pz[:, None, :, None]).numpy()  # P(eps' | eps, z, z')
    zs = z_idx.numpy()
    T = zs.shape[0]
    zL = [(cal.z_bad, cal.l_bar * (1 - cal.u_bad)), (cal.z_good, cal.l_bar * (1 - cal.u_good))]
    g = dist0.to(DTYPE).numpy().copy()
    Ks, Cs = np.empty(T), np.empty(T)
    for t in range(T):
        zi = int(zs[t])
        K = float((g * a_grid[:, None]).sum())
        z, L = zL[zi]
        Y = z * K**cal.alpha * L ** (1.0 - cal.alpha)  # prices() in floats
        r, w = cal.alpha * Y / K - cal.delta, (1.0 - cal.alpha) * Y / L
        pol = np.clip(policy(K, zi), a_grid[0], a_grid[-1])
        c = (1.0 + r) * a_grid[:, None] + w * cal.l_bar * eps[None, :] - pol
        Ks[t], Cs[t] = K, float((g * c).sum())
        if t + 1 < T:
            g = _lottery_np(g, a_grid, pol) @ cond[zi, :, int(zs[t + 1]), :]
    return torch.from_numpy(Ks), torch.from_numpy(Cs), torch.from_numpy(g)


def _lottery_np(g: np.ndarray, a_grid: np.ndarray, pol: np.ndarray) -> np.ndarray:
    """Young's lottery in NumPy: the mass ``g (n_a, 2)`` moved to the grid points around its savings ``pol``
    (``pol`` inside the grid), before the employment transition."""
    n_a = a_grid.shape[0]
    i = np.clip(np.searchsorted(a_grid, pol, side="right") - 1, 0, n_a - 2)
    wt = (a_grid[i + 1] - pol) / (a_grid[i + 1] - a_grid[i])
    flat = (2 * i + np.array([0, 1])).ravel()  # (k, eps) -> 2 k + eps
    gw = g * wt
    out = np.bincount(flat, gw.ravel(), 2 * n_a) + np.bincount(flat + 2, (g - gw).ravel(), 2 * n_a)
    return out.reshape(n_a, 2)


def policy_from_table(a_next: torch.Tensor, K_grid: torch.Tensor, a_max: float):
    """``fn(K, z) -> ndarray (n_a, 2)``: the EGM table ``(n_a, 2, n_K, 2)`` interpolated linearly in ``K``
    (extrapolated linearly beyond the grid, as in :func:`~abm_markets.solvers.krusell_smith.interp_policy_K`)."""
    tab, Kg = a_next.numpy(), K_grid.numpy()
    n = Kg.shape[0]

    def fn(K: float, zi: int) -> np.ndarray:
        j = min(max(int(np.searchsorted(Kg, K)), 1), n - 1)
        s = (K - Kg[j - 1]) / (Kg[j] - Kg[j - 1])
        lo, hi = tab[:, :, j - 1, zi], tab[:, :, j, zi]
        return np.clip(lo + s * (hi - lo), 0.0, a_max)

    return fn


def solve(
    cfg: KS98Config | None = None, z_idx: torch.Tensor | None = None, *, seed: int = 0, progress=None
) -> KS98Solution:
    """Run the Krusell-Smith algorithm on the paper's economy.

    Args:
        cfg: Configuration (defaults: the paper's calibration and simulation length).
        z_idx: Optional aggregate-state path ``(T,)`` (else drawn from ``seed``, starting good).
        seed: Seed of the aggregate-state path when ``z_idx`` is not given.
        progress: Optional ``progress(outer, coef, change)`` callback.
    """
    cfg = cfg or KS98Config()
    a_grid, K_grid, _ = _grids(cfg)
    Pz, P = transition(cfg)
    if z_idx is None:
        z_idx = simulate_tfp(Pz, cfg.T, torch.Generator().manual_seed(seed), start=GOOD)
    # the representative-agent steady state at mean employment starts the law and the distribution
    L_mean = cfg.l_bar * (1 - 0.5 * (cfg.u_good + cfg.u_bad))
    K_rep = L_mean * (cfg.alpha / (1 / cfg.beta - 1 + cfg.delta)) ** (1 / (1 - cfg.alpha))
    coef = torch.tensor([[0.1 * math.log(K_rep), 0.9]] * 2, dtype=DTYPE)
    dist0 = initial_distribution(cfg, int(z_idx[0]), K_rep)
    c, converged, change = None, False, float("inf")
    for outer in range(1, cfg.max_outer + 1):
        a_next, c, _ = household(cfg, coef, c)
        K_path, C_path, dist_end = simulate(policy_from_table(a_next, K_grid, cfg.a_max), cfg, z_idx, dist0)
        new, r2 = regress_law(K_path, z_idx, 2, cfg.burn)
        change = float((new - coef).abs().max())
        if progress is not None:
            progress(outer, new, change)
        if change < cfg.tol_coef:
            coef, converged = new, True
            break
        coef = cfg.damping * new + (1 - cfg.damping) * coef
    dh_max, dh_mean = den_haan(coef, K_path, z_idx, cfg.burn)
    return KS98Solution(
        coef=coef,
        r2=r2,
        den_haan_max=dh_max,
        den_haan_mean=dh_mean,
        K_path=K_path,
        C_path=C_path,
        z_idx=z_idx,
        a_next=a_next,
        c=c,
        a_grid=a_grid,
        K_grid=K_grid,
        Pz=Pz,
        P=P,
        dist_end=dist_end,
        outer_iterations=outer,
        converged=converged,
        max_coef_change=change,
    )


def euler_errors(policy, cal: KS98Calibration, z_idx: torch.Tensor, dist0: torch.Tensor) -> dict[str, float]:
    """Exact Euler-equation errors of a savings policy along a simulated path.

    ``K_{t+1}`` is the aggregate of today's savings, so tomorrow's prices are known for
    each ``z'`` and the expectation over ``(z', eps')`` is a finite sum::

        err = | 1 - (beta E[(1 + r_{t+1}) c_{t+1}^-sigma])^(-1/sigma) / c_t |

    on grid states whose savings leave the first grid interval (the constraint is
    slack), weighted by the distribution simulated from ``dist0`` along ``z_idx``
    (tomorrow's consumption is interpolated linearly between grid points).

    Args:
        policy: As for :func:`simulate`.
        z_idx: ``(T + 1,)`` aggregate states; errors are computed for the first ``T`` periods.
        dist0: ``(n_a, 2)`` distribution in the first period.

    Returns:
        ``{"euler_mean_log10", "euler_p99_log10", "euler_max_log10"}`` (mass-weighted mean and
        99th percentile of ``log10 err``, and the max over states with mass above 1e-10).
    """
    a_grid, _, eps = (x.numpy() for x in _grids(cal))
    Pz, P = transition(cal)
    cond, Pn = (P / Pz[:, None, :, None]).numpy(), P.numpy()
    zs = z_idx.numpy()

    def cash(K: float, zi: int) -> np.ndarray:
        r, w, _ = (float(v) for v in prices(K, zi, cal))
        return (1.0 + r) * a_grid[:, None] + w * cal.l_bar * eps[None, :], 1.0 + r

    g = dist0.to(DTYPE).numpy().copy()
    errs, weights = [], []
    for t in range(zs.shape[0] - 1):
        zi = int(zs[t])
        K = float((g * a_grid[:, None]).sum())
        x, _ = cash(K, zi)
        ap = np.clip(policy(K, zi), a_grid[0], a_grid[-1])
        c = x - ap
        nxt = _lottery_np(g, a_grid, ap)
        Kn = float((nxt * a_grid[:, None]).sum())
        emu = np.zeros_like(g)  # (k, eps)
        for zn in (BAD, GOOD):
            xn, gross = cash(Kn, zn)
            cn = xn - np.clip(policy(Kn, zn), a_grid[0], a_grid[-1])  # (k', eps')
            for en in (0, 1):
                c_at = np.maximum(np.interp(ap, a_grid, cn[:, en]), 1e-12)  # (k, eps) at k' = ap
                emu += Pn[zi, :, zn, en][None, :] * gross * c_at ** (-cal.sigma)
        err = np.abs(1.0 - (cal.beta * emu) ** (-1.0 / cal.sigma) / np.maximum(c, 1e-12))
        mask = (ap > a_grid[1]) & (g > 1e-10)
        errs.append(np.log10(np.maximum(err[mask], 1e-16)))
        weights.append(g[mask])
        g = nxt @ cond[zi, :, int(zs[t + 1]), :]
    e_all, w_all = np.concatenate(errs), np.concatenate(weights)
    order = np.argsort(e_all)
    cw = np.cumsum(w_all[order]) / w_all.sum()
    return {
        "euler_mean_log10": float((e_all * w_all).sum() / w_all.sum()),
        "euler_p99_log10": float(e_all[order][min(int(np.searchsorted(cw, 0.99)), len(cw) - 1)]),
        "euler_max_log10": float(e_all.max()),
    }
