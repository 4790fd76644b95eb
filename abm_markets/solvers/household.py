"""Reference solutions of the income-fluctuation (Huggett) household problem.

The household's exogenous state ``s`` (idiosyncratic income, aggregate TFP,
interest rate — any Markov chain) sets the gross return ``R_s`` on bonds and
income ``y_s``:

    max E_0 sum_t beta^t u(c_t),   c_t + b_{t+1} = R_{s_t} b_t + y_{s_t},   b_{t+1} >= b_lim,

with CRRA ``u``. The Euler equation is
``u'(c_t) >= beta E_t[R_{s_{t+1}} u'(c_{t+1})]`` with equality when
``b_{t+1} > b_lim``.

* :func:`egm` — endogenous grid method (Carroll 2006, Econ. Letters 91(3)):
  policy iteration on consumption, vectorised over states, float64.
* :func:`stationary_distribution` — Young's lottery iterated to its fixed
  point under a savings policy (float64).
* :func:`huggett_stationary` — stationary general equilibrium of Huggett (1993)
  without aggregate risk: the rate that clears the bond market, by bisection.

These are the project's own references for the structural-RL Huggett models
(``abm_markets.srl.huggett``); they share only the grids and the lottery with
them, not the solution method.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from abm_markets.srl import grids

__all__ = ["EGMSolution", "egm", "huggett_stationary", "stationary_distribution"]


class EGMSolution(NamedTuple):
    """Policies on the asset grid.

    Attributes:
        b_next: ``(S, nb)`` savings ``b'(b, s)``.
        c: ``(S, nb)`` consumption.
        iterations: EGM iterations used.
        error: Final sup-norm change in consumption.
    """

    b_next: Tensor
    c: Tensor
    iterations: int
    error: float


def egm(
    asset_grid: Tensor,
    income: Tensor,
    R: Tensor,
    P: Tensor,
    *,
    beta: float,
    sigma: float,
    b_lim: float,
    tol: float = 1e-10,
    max_iter: int = 5000,
) -> EGMSolution:
    """Solve the household problem by the endogenous grid method.

    For every state ``s`` and next-period assets ``b'`` on the grid,
    ``c = (beta sum_{s'} P[s, s'] R_{s'} c(b', s')^(-sigma))^(-1/sigma)`` and the
    current assets that make this choice optimal are ``b = (c + b' - y_s) / R_s``;
    the policy is interpolated back onto the grid (linear, extrapolated above),
    and ``b' = b_lim`` below the first endogenous point.

    Args:
        asset_grid: ``(nb,)`` increasing, ``asset_grid[0] == b_lim``.
        income: ``(S,)`` income per exogenous state.
        R: ``(S,)`` gross return per exogenous state.
        P: ``(S, S)`` transition matrix.
        beta, sigma, b_lim: Preferences and the borrowing limit.
        tol: Stop when consumption changes by less than this (sup norm).
        max_iter: Iteration cap.

    Returns:
        :class:`EGMSolution` (float64). ``b'`` is not capped at the top of the grid.
    """
    f64 = torch.float64
    b = asset_grid.to(f64)
    y = income.to(f64)[:, None]
    Rs = R.to(f64)[:, None]
    P = P.to(f64)
    S, nb = y.shape[0], b.shape[0]
    cash = Rs * b[None, :] + y
    c = torch.clamp(cash - b_lim, min=1e-10) * 0.5 + 1e-3  # any positive initial guess
    err = float("inf")
    it = 0
    for it in range(1, max_iter + 1):  # noqa: B007 - iteration count is returned
        emu = P @ (Rs * c.pow(-sigma))  # (S, nb): E[R' u'(c(b', s'))] at b' on the grid
        c_endo = (beta * emu).pow(-1.0 / sigma)
        b_endo = (c_endo + b[None, :] - y) / Rs
        b_next = grids.interp_rows(b_endo, b.expand(S, nb), b.expand(S, nb).contiguous())
        b_next = torch.where(b[None, :] < b_endo[:, :1], torch.full_like(b_next, b_lim), b_next)
        b_next = torch.clamp(b_next, min=b_lim)
        c_new = cash - b_next
        err = float((c_new - c).abs().max())
        c = c_new
        if err < tol:
            break
    return EGMSolution(b_next=cash - c, c=c, iterations=it, error=err)


def stationary_distribution(
    asset_grid: Tensor, b_next: Tensor, P: Tensor, *, tol: float = 1e-12, max_iter: int = 20_000
) -> Tensor:
    """Invariant distribution ``(nb, S)`` of the lottery dynamics under ``b_next`` ``(S, nb)``."""
    f64 = torch.float64
    b = asset_grid.to(f64)
    j, w = grids.lottery(b_next.to(f64).T.contiguous(), b)  # (nb, S)
    S = P.shape[0]
    g = torch.full((1, b.shape[0], S), 1.0 / (b.shape[0] * S), dtype=f64)
    Pd = P.to(f64)
    for _ in range(max_iter):
        new = grids.push_forward(g, j[None], w[None], Pd)
        if float((new - g).abs().max()) < tol:
            return new[0]
        g = new
    return g[0]


class HuggettStationary(NamedTuple):
    """Stationary equilibrium without aggregate risk."""

    r: float
    excess: float
    b_next: Tensor
    dist: Tensor


def huggett_stationary(
    asset_grid: Tensor,
    income: Tensor,
    P: Tensor,
    *,
    beta: float,
    sigma: float,
    b_lim: float,
    bond_supply: float = 0.0,
    r_lo: float = -0.02,
    r_hi: float | None = None,
    tol: float = 1e-7,
) -> HuggettStationary:
    """Rate ``r`` at which stationary bond demand equals ``bond_supply`` (bisection).

    Args:
        asset_grid, income, P: Grid ``(nb,)``, income ``(S,)`` and its chain ``(S, S)``.
        beta, sigma, b_lim: Preferences and limit.
        bond_supply: Net supply ``B``.
        r_lo, r_hi: Bracket (``r_hi`` defaults to just below ``1 / beta - 1``).
        tol: Width of the final bracket.
    """
    hi = (1.0 / beta - 1.0) - 1e-4 if r_hi is None else r_hi
    lo = r_lo
    S = income.shape[0]

    def excess(r: float) -> tuple[float, Tensor, Tensor]:
        sol = egm(
            asset_grid, income, torch.full((S,), 1.0 + r, dtype=torch.float64), P, beta=beta, sigma=sigma, b_lim=b_lim
        )
        bn = torch.clamp(sol.b_next, max=float(asset_grid[-1]))
        g = stationary_distribution(asset_grid, bn, P)
        return float((g * asset_grid.to(torch.float64)[:, None]).sum()) - bond_supply, bn, g

    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if excess(mid)[0] > 0:
            hi = mid
        else:
            lo = mid
    r = 0.5 * (lo + hi)
    e, bn, g = excess(r)
    return HuggettStationary(r=r, excess=e, b_next=bn, dist=g)
