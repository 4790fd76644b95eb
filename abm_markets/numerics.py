"""Numerical building blocks shared across layers: AR(1) discretisation, grids, interpolation.

Pure torch functions (CPU or CUDA). They sit at the bottom of the package so the
engine, the reference solvers and structural RL use one implementation each.

Sources: Rouwenhorst (1995) as in Kopecky and Suen (2010, RED 13(3)); Tauchen
(1986, Econ. Letters 20).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["asset_grid", "interp_rows", "interp_weights", "rouwenhorst", "stationary_distribution", "tauchen"]


def rouwenhorst(
    n: int, rho: float, sigma: float, mu: float = 0.0, *, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """Rouwenhorst discretisation of ``x' = (1 - rho) mu + rho x + sigma eps``, ``eps ~ N(0, 1)``.

    The ``n`` points are evenly spaced on ``mu +- sqrt(n - 1) * sigma / sqrt(1 - rho^2)``;
    the chain matches the AR(1)'s unconditional mean, variance and first-order
    autocorrelation exactly.

    Args:
        n: Number of states (>= 1).
        rho: Persistence, ``|rho| < 1``.
        sigma: Standard deviation of the innovation.
        mu: Unconditional mean.

    Returns:
        ``(grid (n,), P (n, n))`` with ``P[i, j] = Prob(x' = grid[j] | x = grid[i])``.
    """
    if n == 1:
        return torch.full((1,), mu, dtype=dtype), torch.ones(1, 1, dtype=dtype)
    p = (1.0 + rho) / 2.0
    P = torch.tensor([[p, 1 - p], [1 - p, p]], dtype=dtype)
    for m in range(3, n + 1):
        Z = torch.zeros(m, m, dtype=dtype)
        Z[:-1, :-1] += p * P
        Z[:-1, 1:] += (1 - p) * P
        Z[1:, :-1] += (1 - p) * P
        Z[1:, 1:] += p * P
        Z[1:-1] /= 2.0
        P = Z
    half = math.sqrt(n - 1) * sigma / math.sqrt(1.0 - rho**2)
    return torch.linspace(mu - half, mu + half, n, dtype=dtype), P


def tauchen(
    n: int, rho: float, sigma: float, mu: float = 0.0, *, m: float = 3.0, dtype: torch.dtype = torch.float64
) -> tuple[Tensor, Tensor]:
    """Tauchen (1986) discretisation of the same AR(1) on ``mu +- m`` unconditional sd.

    Returns:
        ``(grid (n,), P (n, n))``.
    """
    if n == 1:
        return torch.full((1,), mu, dtype=dtype), torch.ones(1, 1, dtype=dtype)
    sd = sigma / math.sqrt(1.0 - rho**2)
    grid = torch.linspace(-m * sd, m * sd, n, dtype=dtype)
    step = grid[1] - grid[0]
    mean = rho * grid[:, None]
    normal = torch.distributions.Normal(torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype))
    upper = normal.cdf((grid[None, :] - mean + step / 2) / sigma)
    lower = normal.cdf((grid[None, :] - mean - step / 2) / sigma)
    P = upper - lower
    P[:, 0] = upper[:, 0]
    P[:, -1] = 1.0 - lower[:, -1]
    return grid + mu, P


def stationary_distribution(P: Tensor) -> Tensor:
    """Invariant distribution ``pi = pi P`` of an irreducible Markov matrix (one linear solve, float64)."""
    n = P.shape[0]
    A = P.double().T - torch.eye(n, dtype=torch.float64, device=P.device)
    A[-1] = 1.0
    rhs = torch.zeros(n, dtype=torch.float64, device=P.device)
    rhs[-1] = 1.0
    pi = torch.linalg.solve(A, rhs).clamp_min(0.0)
    return (pi / pi.sum()).to(P.dtype)


def asset_grid(
    lo: float, hi: float, n: int, power: float = 2.0, *, dtype: torch.dtype = torch.float64, device=None
) -> Tensor:
    """``lo + (hi - lo) * u^power`` for ``u`` evenly spaced on [0, 1]: dense near the borrowing limit."""
    u = torch.linspace(0.0, 1.0, n, dtype=dtype, device=device)
    return lo + (hi - lo) * u**power


def interp_weights(x: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
    """Linear-interpolation bracket of ``x`` on an increasing ``grid`` (clamped to its ends).

    Returns:
        ``(j, w)`` of ``x``'s shape: ``x ~ (1 - w) * grid[j] + w * grid[j + 1]``,
        ``0 <= j <= n - 2``, ``0 <= w <= 1``. ``w`` is differentiable in ``x``.
    """
    n = grid.shape[0]
    j = torch.clamp(torch.searchsorted(grid, x.detach().contiguous(), right=True) - 1, 0, n - 2)
    lo = grid[j]
    hi = grid[j + 1]
    w = torch.clamp((x - lo) / (hi - lo), 0.0, 1.0)
    return j, w


def interp_rows(x: Tensor, y: Tensor, xq: Tensor) -> Tensor:
    """Row-wise linear interpolation with linear extrapolation beyond the end knots.

    Args:
        x: ``(..., n)`` increasing knots per row.
        y: ``(..., n)`` values at the knots.
        xq: ``(..., m)`` query points (same leading shape).

    Returns:
        ``(..., m)`` interpolated values.
    """
    n = x.shape[-1]
    j = torch.clamp(torch.searchsorted(x.contiguous(), xq.contiguous(), right=True) - 1, 0, n - 2)
    x0, x1 = x.gather(-1, j), x.gather(-1, j + 1)
    y0, y1 = y.gather(-1, j), y.gather(-1, j + 1)
    return y0 + (y1 - y0) * (xq - x0) / (x1 - x0)
