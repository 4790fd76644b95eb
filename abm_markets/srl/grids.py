"""Grids and distribution tools shared by structural-RL models and their references.

Pure, vectorised torch functions (CPU or CUDA, any float dtype) with a leading
batch dimension where it makes sense:

* :func:`rouwenhorst`, :func:`tauchen` — discretise an AR(1)
  ``x' = (1 - rho) mu + rho x + sigma eps`` into a Markov chain;
  :func:`stationary_distribution` of a chain.
* :func:`asset_grid` — a grid denser near the borrowing limit.
* :func:`interp_weights`, :func:`interp_rows` — linear interpolation on a 1-D grid.
* :func:`lottery`, :func:`push_forward` — Young's (2010) non-stochastic
  simulation: mass at an off-grid choice ``b'`` is split between the two
  neighbouring grid points so that mass and the mean are preserved exactly.
* :func:`clear_on_grid` — market clearing on a price grid: bracket the first
  sign change of excess supply and interpolate linearly (Yang, Wang, Schaab and
  Moll, *Structural Reinforcement Learning for Heterogeneous Agent
  Macroeconomics*).

Sources: Rouwenhorst (1995) as in Kopecky and Suen (2010, RED 13(3)); Tauchen
(1986, Econ. Letters 20); Young (2010, JEDC 34(1)).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from abm_markets.numerics import (
    asset_grid,
    interp_rows,
    interp_weights,
    rouwenhorst,
    stationary_distribution,
    tauchen,
)

__all__ = [
    "Clearing",
    "asset_grid",
    "clear_on_grid",
    "interp_rows",
    "interp_weights",
    "lottery",
    "push_forward",
    "rouwenhorst",
    "stationary_distribution",
    "tauchen",
]


def lottery(b_next: Tensor, grid: Tensor, *, power: float | None = None) -> tuple[Tensor, Tensor]:
    """Young's lottery for choices ``b_next`` (any shape) on ``grid`` (nb,).

    ``b_next`` is clamped to ``[grid[0], grid[-1]]``; mass goes to ``grid[j]``
    with probability ``1 - w`` and to ``grid[j + 1]`` with probability ``w``,
    so that ``(1 - w) grid[j] + w grid[j + 1] = b_next``.

    Args:
        b_next: Choices, any shape.
        grid: ``(nb,)`` increasing asset grid.
        power: If the grid is :func:`asset_grid` with this ``power``, the bracket
            is found by inverting the grid formula (faster than a binary search).

    Returns:
        ``(j, w)`` with ``b_next``'s shape; ``w`` carries the gradient.
    """
    x = torch.clamp(b_next, grid[0], grid[-1])
    if power is None:
        return interp_weights(x, grid)
    n = grid.shape[0]
    lo, hi = float(grid[0]), float(grid[-1])
    with torch.no_grad():
        # exact inverse of the grid formula; a rounding slip of one cell only moves w outside [0, 1] by ~1e-7,
        # which the clamp below absorbs
        j = (((x - lo) * (1.0 / (hi - lo))).clamp_(0.0, 1.0).pow_(1.0 / power).mul_(n - 1)).long().clamp_(0, n - 2)
    cell = _cells(grid)[j]  # (..., 2): left point, width
    w = torch.clamp((x - cell[..., 0]) / cell[..., 1], 0.0, 1.0)
    return j, w


_CELLS: dict[int, tuple[Tensor, Tensor]] = {}


def random_wealth(a: Tensor, n: int, lo: float, hi: float, generator: torch.Generator) -> Tensor:
    """``n`` random wealth densities on the asset grid ``a``, shape ``(n, nb)``, each summing to 1.

    Per density a gamma shape ``k`` uniform in [1, 3] and a mean uniform in ``[lo, hi]``:
    mass proportional to ``(a + 1e-3)^(k - 1) exp(-a k / mean)`` times the grid spacing.
    Draws ``(n, 2)`` uniforms from ``generator`` (on ``a``'s device and dtype).
    """
    u = torch.rand(n, 2, generator=generator, device=a.device, dtype=a.dtype)
    mean = lo + u[:, :1] * (hi - lo)
    shape = 1.0 + 2.0 * u[:, 1:2]
    dens = torch.exp((shape - 1) * torch.log(a[None, :] + 1e-3) - a[None, :] * shape / mean)
    dens = dens * torch.diff(a, prepend=a[:1] - (a[1] - a[0]))[None, :]
    return dens / dens.sum(1, keepdim=True)


def _cells(grid: Tensor) -> Tensor:
    """``(nb - 1, 2)`` left point and width of each grid cell, cached per grid tensor.

    The cache keeps a reference to the grid, so its ``id`` cannot be reused
    while the entry exists; grids must not be modified in place.
    """
    hit = _CELLS.get(id(grid))
    if hit is not None and hit[0] is grid:
        return hit[1]
    cells = torch.stack([grid[:-1], grid[1:] - grid[:-1]], dim=1)
    if len(_CELLS) > 64:
        _CELLS.clear()
    _CELLS[id(grid)] = (grid, cells)
    return cells


def push_forward(dist: Tensor, j: Tensor, w: Tensor, P: Tensor) -> Tensor:
    """Next-period distribution under the lottery ``(j, w)`` and idiosyncratic transition ``P``.

    ``g'(b_k, y') = sum_{b, y} g(b, y) [ (1 - w) 1{j = k} + w 1{j + 1 = k} ] P(y' | y)``.

    Args:
        dist: ``(B, nb, ny)`` masses (``B`` paths or economies).
        j, w: ``(B, nb, ny)`` lottery from :func:`lottery`.
        P: ``(ny, ny)`` or ``(B, ny, ny)`` transition ``P[.., y, y']``.

    Returns:
        ``(B, nb, ny)``; total mass and (inside the grid) mean assets are preserved.
        Differentiable in ``dist``, ``w`` and ``P``.
    """
    B, nb, ny = dist.shape
    lo = (j * ny + _y_index(nb, ny, dist.device)).reshape(B, -1)
    mass_hi = (dist * w).reshape(B, -1)
    mass_lo = dist.reshape(B, -1) - mass_hi
    out = torch.zeros(B, nb * ny, dtype=dist.dtype, device=dist.device)
    out = out.scatter_add(1, lo, mass_lo).scatter_add(1, lo + ny, mass_hi).reshape(B, nb, ny)
    return out @ P if P.dim() == 2 else torch.bmm(out, P)


_YIDX: dict[tuple[int, int, str], Tensor] = {}


def _y_index(nb: int, ny: int, device: torch.device) -> Tensor:
    key = (nb, ny, str(device))
    if key not in _YIDX:
        _YIDX[key] = torch.arange(ny, device=device).repeat(nb, 1)
    return _YIDX[key]


class Clearing(NamedTuple):
    """Result of :func:`clear_on_grid` (all ``(B,)``)."""

    price: Tensor
    j: Tensor
    w: Tensor
    bracketed: Tensor


def clear_on_grid(excess: Tensor, price_grid: Tensor) -> Clearing:
    """Clear a market from excess supply evaluated on a price grid.

    Finds the first ``j`` where ``excess[:, j]`` and ``excess[:, j + 1]`` differ
    in sign and interpolates linearly, ``w = E_j / (E_j - E_{j+1})``,
    ``p = (1 - w) p_j + w p_{j+1}``. Where no sign change exists the price is
    the grid end with the smaller ``|excess|`` (``bracketed`` is False there).

    Args:
        excess: ``(B, nP)`` excess supply at each grid price (detached).
        price_grid: ``(nP,)`` increasing prices.

    Returns:
        :class:`Clearing` with the price and its interpolation bracket ``(j, w)``.
    """
    nP = price_grid.shape[0]
    pos = excess >= 0
    change = pos[:, 1:] != pos[:, :-1]
    bracketed = change.any(dim=1)
    j = torch.argmax(change.to(torch.uint8), dim=1)
    e0 = excess.gather(1, j[:, None])[:, 0]
    e1 = excess.gather(1, (j + 1)[:, None])[:, 0]
    denom = e0 - e1
    w = torch.where(denom != 0, e0 / torch.where(denom != 0, denom, torch.ones_like(denom)), torch.zeros_like(e0))
    w = torch.clamp(w, 0.0, 1.0)
    left_better = excess[:, 0].abs() <= excess[:, -1].abs()
    j = torch.where(bracketed, j, torch.where(left_better, 0, nP - 2))
    w = torch.where(bracketed, w, torch.where(left_better, 0.0, 1.0).to(w.dtype))
    price = price_grid[j] + w * (price_grid[j + 1] - price_grid[j])
    return Clearing(price=price, j=j, w=w, bracketed=bracketed)
