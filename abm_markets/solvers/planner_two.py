"""Dynamic-programming reference for the investment economy's planner with two households and one capital good.

Economy (``abm_markets.engine.investment``, ``formulation = "planner"``, ``N^h = 2``, ``N^c = 1``), households
``i = 1, 2``, period ``t``:

* TFP ``z_i`` follows the engine's chain on ``cfg.tfp_values`` (stay with probability ``cfg.tfp_persistence``,
  otherwise move uniformly to another state), independently across households; the aggregate chain must be
  degenerate (one state, whose value multiplies every ``z_i``).
* Output ``Y_i = z_i K_i^alpha``.
* Pooled capital-good technology shared by contribution: spending ``x_1, x_2`` buys ``I = sqrt(2 R / phi)`` with
  ``R = x_1 + x_2``, and household ``i`` receives ``I_i = x_i / sqrt(phi R / 2)``. Equivalently, investments
  ``I_1, I_2 >= 0`` cost ``x_i = phi/2 (I_1 + I_2) I_i``.
* ``C_i = Y_i - x_i > 0``, ``K_i' = (1 - delta) K_i + I_i``, reward ``u(C_1) + u(C_2)``, CRRA
  ``u(c) = (c^(1-sigma) - 1) / (1 - sigma)`` (``log c`` for ``sigma = 1``).

Bellman equation of the planner (``z'`` independent across households)::

    V(K_1, K_2, z_1, z_2) = max_{K_1', K_2'} u(C_1) + u(C_2) + beta E[V(K_1', K_2', z_1', z_2') | z_1, z_2]
    subject to  K_i' >= (1 - delta) K_i  (I_i >= 0),  C_i > 0,  K_i' on [K_min, K_max].

First-order condition for ``K_1'`` and the envelope condition give the planner's Euler equation
(:func:`euler_errors_two`), with the marginal cost ``M_1 = phi/2 [u'(C_1) (2 I_1 + I_2) + u'(C_2) I_2]``::

    M_1,t = beta E_t[u'(C_1,t+1) alpha Y_1,t+1 / K_1,t+1 + (1 - delta) M_1,t+1]

(and symmetrically for household 2); its deterministic steady state is
``K^(2-alpha) = alpha beta / (2 phi delta (1 - beta (1 - delta)))``
(:func:`~abm_markets.engine.investment_groups.steady_state_capital` with ``N^h = 2``).

Method (:func:`solve_vfi_two`): value-function iteration with Howard steps on the tensor grid ``K_1, K_2 in
k_ss linspace(lo, hi, n_k)`` (both households), choices ``(K_1', K_2')`` continuous on the same square:

* ``EV(K_1', K_2'; z_1, z_2) = sum P[z_1, z_1'] P[z_2, z_2'] V(K_1', K_2', z_1', z_2')`` is the tensor-product
  not-a-knot cubic spline through its knot values (C2).
* Improvement step: at every knot the right-hand side is maximised by Newton's method with a backtracking line
  search (exact gradient and Hessian of the return and of the spline), from the previous policy. The return is
  *not* jointly concave in ``(I_1, I_2)`` (``-phi/2 (I_1 + I_2) I_1`` has an indefinite Hessian), and at strongly
  asymmetric states there are several local maxima (one household at the ``I_i = 0`` corner or not), so every
  step also runs an exhaustive, exact search over all feasible pairs of grid choices (``EV`` at the knots, no
  interpolation) and restarts Newton from the grid pair wherever that pair beats the Newton point.
* Evaluation: up to ``howard`` sweeps ``V <- u(C_1) + u(C_2) + beta EV_spline(K_1', K_2')`` at the fixed policy.
* Stop when ``max |T V - V| < tol`` at the knots.

``V`` is symmetrised after each update, ``V(K_1, K_2, z_1, z_2) = V(K_2, K_1, z_2, z_1)`` (the problem is
symmetric under swapping the households). Policies off the grid: bilinear interpolation in ``(K_1, K_2)`` of the
``K'`` tables (capital clamped to the grid), see :meth:`TwoHouseholdSolution.policy`.

Accuracy (default calibration, simulated ergodic states): Euler errors (:func:`euler_errors_two`) have median
``8e-6`` at ``n_k = 61`` (``5e-6`` at 81), falling like ``h^2`` (the bilinear policy interpolation); near the
``I_i = 0`` corner, where the policy has a kink, up to ``2e-3``. Long-run mean ``K / k_ss`` is ``1.00053`` at
``n_k = 61`` and ``1.00054`` at 81 (64 paths x 1000 periods), against ``0.99763`` for the constant steady-state
share rule; the planner shifts investment towards the high-TFP household (``sd(K / k_ss)`` 0.070 against 0.038).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import interpolate
from torch import Tensor

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment_groups import steady_state_capital, steady_state_spending_share
from abm_markets.engine.preferences import crra_utility
from abm_markets.engine.shocks import persistent_chain
from abm_markets.errors import ConfigError

__all__ = [
    "TwoHouseholdSolution",
    "euler_errors_two",
    "share_rule",
    "simulate_two",
    "solve_vfi_two",
]

_DTYPE = torch.float64
Policy = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]


# ----------------------------------------------------------------------------------------------------------------
# Economy pieces
# ----------------------------------------------------------------------------------------------------------------


def _check(cfg: InvestmentConfig) -> None:
    problems = []
    if cfg.n_households != 2:
        problems.append(f"n_households = {cfg.n_households} (expected 2)")
    if cfg.n_capital_goods != 1:
        problems.append(f"n_capital_goods = {cfg.n_capital_goods} (expected 1)")
    if cfg.formulation != "planner":
        problems.append(f"formulation = {cfg.formulation!r} (expected 'planner')")
    if cfg.action != "shares":
        problems.append(f"action = {cfg.action!r} (expected 'shares')")
    if len(cfg.agg_tfp_values) != 1:
        problems.append(f"agg_tfp_values = {cfg.agg_tfp_values!r} (expected one state: no aggregate shock)")
    if problems:
        raise ConfigError("solve_vfi_two supports the two-household, one-good planner only; got " + "; ".join(problems))


def _chain(cfg: InvestmentConfig) -> tuple[Tensor, Tensor]:
    """One household's TFP chain ``(values [S], transition [S, S])`` as the engine builds it (aggregate level folded
    into the values)."""
    chain = persistent_chain(cfg.tfp_values, cfg.tfp_persistence)
    return chain.values.to(_DTYPE) * float(cfg.agg_tfp_values[0]), chain.transition.to(_DTYPE)


def _flows(
    k1: Tensor, k2: Tensor, y1: Tensor, y2: Tensor, kn1: Tensor, kn2: Tensor, delta: float, phi: float
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Investments ``I_i = K_i' - (1-delta) K_i`` and consumptions ``C_i = Y_i - phi/2 (I_1 + I_2) I_i``."""
    i1 = kn1 - (1.0 - delta) * k1
    i2 = kn2 - (1.0 - delta) * k2
    tot = i1 + i2
    return i1, i2, y1 - 0.5 * phi * tot * i1, y2 - 0.5 * phi * tot * i2


def _expect(trans: Tensor, v: Tensor) -> Tensor:
    """``EV[s1, s2] = sum_{t1, t2} P[s1, t1] P[s2, t2] V[t1, t2]`` for ``v [S, S, ...]``."""
    s = trans.shape[0]
    rest = v.shape[2:]
    w = v.reshape(s, s, -1)
    w = (trans[:, :, None, None] * w[None, :, :, :]).sum(1)  # over t1
    w = (trans[None, :, :, None] * w[:, None, :, :]).sum(2)  # over t2
    return w.reshape(s, s, *rest)


def _symmetrise(v: Tensor) -> Tensor:
    """Average ``v[s1, s2, i1, i2]`` with its household swap ``v[s2, s1, i2, i1]``."""
    return 0.5 * (v + v.permute(1, 0, 3, 2))


# ----------------------------------------------------------------------------------------------------------------
# Tensor-product cubic spline on the uniform capital grid
# ----------------------------------------------------------------------------------------------------------------


def _slope_matrix(grid: np.ndarray) -> Tensor:
    """``D`` with ``D @ y`` = knot slopes of the not-a-knot cubic spline through ``y``."""
    cs = interpolate.CubicSpline(grid, np.eye(grid.shape[0]), axis=0, bc_type="not-a-knot")
    return torch.as_tensor(cs(grid, 1), dtype=_DTYPE)


def _basis(x: Tensor, x0: float, h: float, n: int, order: int) -> tuple[Tensor, list[Tensor]]:
    """Cell ``k`` of each point and the cubic Hermite basis ``[h00, h h10, h01, h h11]`` (value/slope weights at
    knots ``k``, ``k + 1``), with its first and second ``x``-derivatives up to ``order``; bases ``[..., 2, 2]``
    indexed (knot, value/slope)."""
    u = (x - x0) / h
    k = torch.clamp(torch.floor(u), 0, n - 2).long()
    t = u - k
    t2 = t * t
    t3 = t2 * t
    out = [torch.stack([2 * t3 - 3 * t2 + 1, h * (t3 - 2 * t2 + t), -2 * t3 + 3 * t2, h * (t3 - t2)], -1)]
    if order >= 1:
        out.append(
            torch.stack([6 * t2 - 6 * t, h * (3 * t2 - 4 * t + 1), 6 * t - 6 * t2, h * (3 * t2 - 2 * t)], -1) / h
        )
    if order >= 2:
        out.append(torch.stack([12 * t - 6, h * (6 * t - 4), 6 - 12 * t, h * (6 * t - 2)], -1) / (h * h))
    return k, [b.reshape(*b.shape[:-1], 2, 2) for b in out]


class _Spline:
    """Tensor-product not-a-knot cubic spline of ``f [R, n, n]`` on the uniform grid, in Hermite form.

    ``coef [R * n * n, 4]`` holds, per knot, ``(F, dF/dx, dF/dy, d2F/dxdy)`` with ``dF/dx = D F``,
    ``dF/dy = F D^T``, ``d2F/dxdy = D F D^T`` (``D``: knot slopes of the 1-D spline); on a cell the bicubic
    Hermite interpolant of these data is the tensor-product spline (C2).
    """

    def __init__(self, f: Tensor, dmat: Tensor, x0: float, h: float):
        r, n, _ = f.shape
        fx = torch.matmul(dmat, f)
        fy = torch.matmul(f, dmat.T)
        fxy = torch.matmul(fx, dmat.T)
        self.coef = torch.stack([f, fx, fy, fxy], -1).reshape(r * n * n, 4)
        self.n, self.x0, self.h = n, x0, h
        self.offsets = torch.tensor([0, 1, n, n + 1])

    def _gather(self, row: Tensor, kx: Tensor, ky: Tensor) -> Tensor:
        """Hermite data of the cells ``[..., 2 (x knot), 2 (y knot), 2 (y deriv), 2 (x deriv)]``."""
        base = (row * self.n + kx) * self.n + ky
        vals = self.coef[base.unsqueeze(-1) + self.offsets]  # [..., corner, type]
        return vals.reshape(*base.shape, 2, 2, 2, 2)

    def __call__(self, row: Tensor, x: Tensor, y: Tensor, order: int = 0) -> list[Tensor]:
        """``[value]`` (``order = 0``) or ``[value, f_x, f_y, f_xx, f_xy, f_yy]`` (``order = 2``) at ``(x, y)``."""
        kx, bx = _basis(x, self.x0, self.h, self.n, order)
        ky, by = _basis(y, self.x0, self.h, self.n, order)
        g = self._gather(row, kx, ky)

        # contract the x basis first: [..., 2 (y knot), 2 (y deriv)] per x-derivative order
        gx = [(g * b[..., :, None, None, :]).sum((-4, -1)) for b in bx]

        def c(a: Tensor, b: Tensor) -> Tensor:
            return (a * b).sum((-2, -1))

        if order == 0:
            return [c(gx[0], by[0])]
        return [c(gx[0], by[0]), c(gx[1], by[0]), c(gx[0], by[1]), c(gx[2], by[0]), c(gx[1], by[1]), c(gx[0], by[2])]

    def fixed_points(self, row: Tensor, x: Tensor, y: Tensor) -> Callable[[_Spline], Tensor]:
        """Evaluator at fixed points for splines on the same grid (Howard sweeps): ``other -> values``."""
        kx, bx = _basis(x, self.x0, self.h, self.n, 0)
        ky, by = _basis(y, self.x0, self.h, self.n, 0)
        idx = ((row * self.n + kx) * self.n + ky).unsqueeze(-1) + self.offsets
        w = (bx[0][..., :, None, None, :] * by[0][..., None, :, :, None]).reshape(*idx.shape[:-1], 16)

        def ev(other: _Spline) -> Tensor:
            return (other.coef[idx].reshape(w.shape) * w).sum(-1)

        return ev


# ----------------------------------------------------------------------------------------------------------------
# The discretised problem
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Problem:
    """Grid, chain and flat state arrays ``[N]``, ``N = S S n n``, in the order ``(z_1, z_2, K_1, K_2)``."""

    grid: Tensor
    tfp: Tensor
    trans: Tensor
    dmat: Tensor
    k1: Tensor
    k2: Tensor
    y1: Tensor
    y2: Tensor
    row: Tensor
    lo1: Tensor
    lo2: Tensor
    alpha: float
    beta: float
    delta: float
    phi: float
    crra: float

    @property
    def n(self) -> int:
        return int(self.grid.shape[0])

    @property
    def s(self) -> int:
        return int(self.tfp.shape[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self.s, self.s, self.n, self.n)

    @property
    def x0(self) -> float:
        return float(self.grid[0])

    @property
    def hi(self) -> float:
        return float(self.grid[-1])

    @property
    def h(self) -> float:
        return float(self.grid[1] - self.grid[0])

    def reward(self, idx: Tensor | slice, kn1: Tensor, kn2: Tensor) -> Tensor:
        """``u(C_1) + u(C_2)`` at states ``idx`` for choices ``K'`` (``-inf`` where some ``C_i <= 0``)."""
        _, _, c1, c2 = _flows(self.k1[idx], self.k2[idx], self.y1[idx], self.y2[idx], kn1, kn2, self.delta, self.phi)
        ok = (c1 > 0) & (c2 > 0)
        r = crra_utility(c1, self.crra, 1e-300) + crra_utility(c2, self.crra, 1e-300)
        return torch.where(ok, r, -torch.inf)

    def spline(self, v: Tensor) -> _Spline:
        """Spline of ``EV`` for values ``v [S, S, n, n]``."""
        ev = _expect(self.trans, v)
        return _Spline(ev.reshape(self.s * self.s, self.n, self.n), self.dmat, self.x0, self.h)

    def clamp(self, kn1: Tensor, kn2: Tensor, idx: Tensor | slice = slice(None)) -> tuple[Tensor, Tensor]:
        """Project choices on ``[max((1-delta) K_i, K_min), K_max]``."""
        return kn1.clamp(max=self.hi).maximum(self.lo1[idx]), kn2.clamp(max=self.hi).maximum(self.lo2[idx])


def _problem(cfg: InvestmentConfig, n_k: int, k_bounds: tuple[float, float]) -> _Problem:
    _check(cfg)
    lo, hi = k_bounds
    if n_k < 5 or not 0.0 < lo < 1.0 < hi:
        raise ConfigError(
            f"solve_vfi_two n_k = {n_k}, k_bounds = {k_bounds!r} are invalid; expected n_k >= 5 and 0 < lo < 1 < hi"
        )
    grid_np = steady_state_capital(cfg) * np.linspace(lo, hi, n_k)
    grid = torch.as_tensor(grid_np, dtype=_DTYPE)
    tfp, trans = _chain(cfg)
    s = tfp.shape[0]
    shape = (s, s, n_k, n_k)
    k1 = grid[None, None, :, None].expand(shape).reshape(-1)
    k2 = grid[None, None, None, :].expand(shape).reshape(-1)
    y1 = (tfp[:, None, None, None] * grid[None, None, :, None].pow(cfg.alpha)).expand(shape).reshape(-1)
    y2 = (tfp[None, :, None, None] * grid[None, None, None, :].pow(cfg.alpha)).expand(shape).reshape(-1)
    row = (torch.arange(s)[:, None] * s + torch.arange(s)[None, :])[:, :, None, None].expand(shape).reshape(-1)
    g0 = float(grid[0])
    lo1 = ((1.0 - cfg.delta) * k1).clamp_min(g0)
    lo2 = ((1.0 - cfg.delta) * k2).clamp_min(g0)
    return _Problem(
        grid, tfp, trans, _slope_matrix(grid_np), k1, k2, y1, y2, row, lo1, lo2,
        cfg.alpha, cfg.beta, cfg.delta, cfg.phi, cfg.crra,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------------------------
# Exhaustive search over grid choices (global check)
# ----------------------------------------------------------------------------------------------------------------


def _grid_search(pb: _Problem, ev: Tensor, chunk_elems: int = 4_000_000) -> tuple[Tensor, Tensor, Tensor]:
    """``max_{j_1, j_2} u(C_1) + u(C_2) + beta EV[z_1, z_2, j_1, j_2]`` over all feasible pairs of grid choices.

    Exact and global: ``EV`` at the knots (no interpolation), no concavity assumed. Feasible choices of household
    ``i`` satisfy ``0 <= I_i < sqrt(2 Y_i / phi)`` (``I_i >= 0``, and ``C_i > 0`` needs ``phi/2 I_i^2 <=
    phi/2 (I_1 + I_2) I_i < Y_i``), a window of ``W`` consecutive knots from the first with ``I_i >= 0``; only
    those are searched (infeasible window entries are excluded). ``ev [S, S, n, n]`` must be symmetric under the
    household swap: only ``z_1 <= z_2`` is searched, the rest is the swap. Chunked over ``K_1``.

    Returns:
        ``(value, j_1, j_2)``, each ``[S, S, n, n]`` (``j``: knot indices of ``K_1', K_2'``).
    """
    n, s, phi, d, g = pb.n, pb.s, pb.phi, pb.delta, pb.grid
    y = pb.tfp[:, None] * g[None, :].pow(pb.alpha)  # [s, i]
    inv_all = g[None, :] - (1.0 - d) * g[:, None]  # [i, j]
    i_max = torch.sqrt(2.0 * y.max(0).values / phi)  # [i]
    feas_all = (inv_all >= 0.0) & (inv_all < i_max[:, None])
    j_lo = (inv_all < 0.0).sum(1)  # first knot with I >= 0
    width = max(1, int(feas_all.sum(1).max()))
    cand = j_lo[:, None] + torch.arange(width)[None, :]  # [i, w]
    valid = cand < n
    cand = cand.clamp_max(n - 1)
    inv = torch.gather(inv_all, 1, cand)
    feas = valid & torch.gather(feas_all, 1, cand)
    inv = inv.clamp_min(0.0)
    value = torch.empty(s, s, n, n, dtype=_DTYPE)
    j1 = torch.empty(s, s, n, n, dtype=torch.long)
    j2 = torch.empty(s, s, n, n, dtype=torch.long)
    c = max(1, chunk_elems // (n * width * width))
    inv2 = inv[None, :, None, :]  # [1, i2, 1, w2]
    feas2 = feas[None, :, None, :]
    for s1 in range(s):
        for s2 in range(s1, s):
            for a in range(0, n, c):
                sl = slice(a, min(a + c, n))
                inv1 = inv[sl][:, None, :, None]  # [c, 1, w1, 1]
                tot = inv1 + inv2
                c1 = y[s1, sl][:, None, None, None] - 0.5 * phi * tot * inv1
                c2 = y[s2][None, :, None, None] - 0.5 * phi * tot * inv2
                ok = (c1 > 0) & (c2 > 0) & feas[sl][:, None, :, None] & feas2
                r = crra_utility(c1, pb.crra, 1e-300) + crra_utility(c2, pb.crra, 1e-300)
                cont = ev[s1, s2][cand[sl][:, None, :, None], cand[None, :, None, :]]  # [c, n, w1, w2]
                obj = torch.where(ok, r + pb.beta * cont, -torch.inf)
                m, idx = obj.reshape(obj.shape[0], n, width * width).max(-1)
                w1, w2 = idx // width, idx % width
                value[s1, s2, sl] = m
                j1[s1, s2, sl] = torch.gather(cand[sl], 1, w1)
                j2[s1, s2, sl] = cand[torch.arange(n)[None, :], w2]
            if s2 != s1:
                value[s2, s1] = value[s1, s2].T
                j1[s2, s1], j2[s2, s1] = j2[s1, s2].T, j1[s1, s2].T
    return value, j1, j2


# ----------------------------------------------------------------------------------------------------------------
# Maximisation over continuous choices and policy evaluation
# ----------------------------------------------------------------------------------------------------------------


def _newton(
    pb: _Problem, ev: _Spline, kn1: Tensor, kn2: Tensor, states: Tensor | None = None, max_steps: int = 60
) -> tuple[Tensor, Tensor, Tensor]:
    """Maximise the Bellman right-hand side over continuous ``(K_1', K_2')`` at every state, from feasible starts.

    Gradient and Hessian of the return (``I_i = K_i' - (1-delta) K_i``, ``u'' = -sigma u' / C``)::

        dC_1/dI_1 = -phi/2 (2 I_1 + I_2),  dC_1/dI_2 = -phi/2 I_1,  d2C_1/dI_1^2 = -phi,  d2C_1/dI_1 dI_2 = -phi/2
        dC_2/dI_2 = -phi/2 (I_1 + 2 I_2),  dC_2/dI_1 = -phi/2 I_2,  d2C_2/dI_2^2 = -phi,  d2C_2/dI_1 dI_2 = -phi/2

    plus ``beta`` times the gradient and Hessian of the ``EV`` spline. Direction ``-(H - mu I)^{-1} g`` with
    ``mu >= 0`` just large enough to make it negative definite (``mu = 0``: Newton); a coordinate at a bound of
    :meth:`_Problem.clamp` with the gradient pointing out is held there (Newton in the other one). Far from the
    optimum the step is halved until the objective does not decrease; close to it (concave, step below
    ``1e-6 K_max``) full Newton steps are taken, to rounding. Iterates are projected on the bounds. A state stops
    when its step is below ``1e-12 K_max`` or no step size improves it.

    Args:
        states: Flat indices of the states to solve (default: all); ``kn1``, ``kn2`` are the starts there.

    Returns:
        ``(K_1', K_2', value)`` at ``states``.
    """
    phi, sigma, beta, hi = pb.phi, pb.crra, pb.beta, pb.hi
    states = torch.arange(pb.k1.shape[0]) if states is None else states
    x1, x2 = pb.clamp(kn1.clone(), kn2.clone(), states)
    f = pb.reward(states, x1, x2) + beta * ev(pb.row[states], x1, x2)[0]
    act = torch.arange(x1.shape[0])  # positions in ``states`` still iterating
    for _ in range(max_steps):
        if act.numel() == 0:
            break
        a1, a2 = x1[act], x2[act]
        st = states[act]
        i1, i2, c1, c2 = _flows(pb.k1[st], pb.k2[st], pb.y1[st], pb.y2[st], a1, a2, pb.delta, phi)
        mu1, mu2 = c1.pow(-sigma), c2.pow(-sigma)
        dmu1, dmu2 = -sigma * mu1 / c1, -sigma * mu2 / c2
        p1, q1 = -0.5 * phi * (2.0 * i1 + i2), -0.5 * phi * i1  # dC_1/dI_1, dC_1/dI_2
        p2, q2 = -0.5 * phi * i2, -0.5 * phi * (i1 + 2.0 * i2)  # dC_2/dI_1, dC_2/dI_2
        _, ex, ey, exx, exy, eyy = ev(pb.row[st], a1, a2, order=2)
        g1 = mu1 * p1 + mu2 * p2 + beta * ex
        g2 = mu1 * q1 + mu2 * q2 + beta * ey
        h11 = dmu1 * p1 * p1 - phi * mu1 + dmu2 * p2 * p2 + beta * exx
        h22 = dmu1 * q1 * q1 + dmu2 * q2 * q2 - phi * mu2 + beta * eyy
        h12 = dmu1 * p1 * q1 + dmu2 * p2 * q2 - 0.5 * phi * (mu1 + mu2) + beta * exy
        half_tr = 0.5 * (h11 + h22)
        lam_max = half_tr + torch.sqrt((half_tr * half_tr - (h11 * h22 - h12 * h12)).clamp_min(0.0))
        shift = (lam_max + 1e-6 * (h11.abs() + h22.abs())).clamp_min(0.0)
        m11, m22 = h11 - shift, h22 - shift
        det = m11 * m22 - h12 * h12
        d1 = -(m22 * g1 - h12 * g2) / det
        d2 = -(m11 * g2 - h12 * g1) / det
        # active bounds (at a bound with the gradient pointing out): Newton in the other coordinate only
        fix1 = ((a1 <= pb.lo1[st]) & (g1 < 0)) | ((a1 >= hi) & (g1 > 0))
        fix2 = ((a2 <= pb.lo2[st]) & (g2 < 0)) | ((a2 >= hi) & (g2 > 0))
        neg11 = torch.minimum(h11, -(h11.abs() * 1e-6 + 1e-300))
        neg22 = torch.minimum(h22, -(h22.abs() * 1e-6 + 1e-300))
        d1 = torch.where(fix1, 0.0, torch.where(fix2, -g1 / neg11, d1))
        d2 = torch.where(fix2, 0.0, torch.where(fix1, -g2 / neg22, d2))
        concave = torch.where(fix1, fix2 | (h22 < 0), torch.where(fix2, h11 < 0, shift == 0))
        size = torch.maximum(d1.abs(), d2.abs())
        local = concave & (size < 1e-6 * hi)
        fa = f[act]
        n1, n2, nf = a1.clone(), a2.clone(), fa.clone()
        done = torch.zeros_like(local)
        pend = torch.arange(act.shape[0])
        t = 1.0
        for _ in range(30):  # backtracking: every pending state tries the same step size
            ia = st[pend]
            c1_, c2_ = pb.clamp(a1[pend] + t * d1[pend], a2[pend] + t * d2[pend], ia)
            fc = pb.reward(ia, c1_, c2_) + beta * ev(pb.row[ia], c1_, c2_)[0]
            ok = (fc >= fa[pend]) | local[pend]
            sel = pend[ok]
            n1[sel], n2[sel], nf[sel], done[sel] = c1_[ok], c2_[ok], fc[ok], True
            pend = pend[~ok]
            if pend.numel() == 0:
                break
            t *= 0.5
        moved = torch.maximum((n1 - a1).abs(), (n2 - a2).abs())
        x1[act], x2[act], f[act] = n1, n2, nf
        act = act[done & (moved > 1e-12 * hi)]
    return x1, x2, f


def _evaluate(pb: _Problem, kn1: Tensor, kn2: Tensor, v: Tensor, sweeps: int, tol: float) -> Tensor:
    """Howard sweeps ``V <- u(C_1) + u(C_2) + beta EV_spline(K_1', K_2')`` for a fixed continuous policy (flat)."""
    rp = pb.reward(slice(None), kn1, kn2).reshape(pb.shape)
    at_policy = pb.spline(v).fixed_points(pb.row, kn1, kn2)
    for _ in range(sweeps):
        vn = _symmetrise(rp + pb.beta * at_policy(pb.spline(v)).reshape(pb.shape))
        change = float((vn - v).abs().max())
        v = vn
        if change < tol:
            break
    return v


# ----------------------------------------------------------------------------------------------------------------
# Solution
# ----------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TwoHouseholdSolution:
    """Solution of the two-household planner on the capital grid (see the module docstring for the equations).

    Tensors are indexed ``[z_1, z_2, K_1, K_2]`` (TFP state indices of the engine's chain, capital grid indices).

    Attributes:
        grid: Capital knots ``k_ss * linspace(lo, hi, n_k)``, the same for both households, ``[n_k]``.
        k_ss: Deterministic steady-state capital per household (``steady_state_capital(cfg)``).
        tfp: TFP levels of one household's chain ``[S]``; transition: ``P[z, z']`` ``[S, S]``.
        value: ``V`` at the knots ``[S, S, n_k, n_k]``.
        next_capital: Continuous policy ``(K_1', K_2')`` at the knots ``[2, S, S, n_k, n_k]``.
        grid_policy: Best pair of grid choices under the final ``EV`` (the discrete-VFI policy), knot indices
            ``[2, S, S, n_k, n_k]`` (long).
        alpha, beta, delta, phi, crra: Parameters.
        iterations: Policy-improvement steps.
        bellman_residual: ``max |T V - V|`` at the knots at the last improvement step (value error at most
            ``bellman_residual / (1 - beta)``).
        grid_gain: ``max (T_grid V - T V)`` at the last step: how much the best grid pair beats the continuous
            policy (``<= 0`` up to rounding by construction).
        seconds: Wall time of the solve.
    """

    grid: Tensor
    k_ss: float
    tfp: Tensor
    transition: Tensor
    value: Tensor
    next_capital: Tensor
    grid_policy: Tensor
    alpha: float
    beta: float
    delta: float
    phi: float
    crra: float
    iterations: int
    bellman_residual: float
    grid_gain: float
    seconds: float

    @property
    def n_states(self) -> int:
        return int(self.tfp.shape[0])

    def policy(
        self, k1: Tensor | float, k2: Tensor | float, z1_idx: Tensor | int, z2_idx: Tensor | int
    ) -> tuple[Tensor, Tensor]:
        """``(K_1', K_2')`` at arbitrary capitals: bilinear interpolation in ``(K_1, K_2)`` of the knot policy.

        Capital outside the grid is clamped to it (the grid spans ``k_ss [0.5, 1.5]`` by default, far beyond the
        ergodic set). Bilinear interpolation reproduces the linear bound ``(1-delta) K``, so ``I_i >= 0`` holds.
        Inputs broadcast; outputs float64 of the broadcast shape.
        """
        k1, k2, z1, z2 = torch.broadcast_tensors(
            torch.as_tensor(k1, dtype=_DTYPE),
            torch.as_tensor(k2, dtype=_DTYPE),
            torch.as_tensor(z1_idx, dtype=torch.long),
            torch.as_tensor(z2_idx, dtype=torch.long),
        )
        n = self.grid.shape[0]
        x0, h = float(self.grid[0]), float(self.grid[1] - self.grid[0])

        def cell(k: Tensor) -> tuple[Tensor, Tensor]:
            u = (k.clamp(float(self.grid[0]), float(self.grid[-1])) - x0) / h
            i = torch.clamp(torch.floor(u), 0, n - 2).long()
            return i, u - i

        i1, t1 = cell(k1)
        i2, t2 = cell(k2)
        tab = self.next_capital
        out = (
            (1 - t1) * (1 - t2) * tab[:, z1, z2, i1, i2]
            + t1 * (1 - t2) * tab[:, z1, z2, i1 + 1, i2]
            + (1 - t1) * t2 * tab[:, z1, z2, i1, i2 + 1]
            + t1 * t2 * tab[:, z1, z2, i1 + 1, i2 + 1]
        )
        return torch.maximum(out[0], (1 - self.delta) * k1), torch.maximum(out[1], (1 - self.delta) * k2)

    def spending_shares(
        self, k1: Tensor | float, k2: Tensor | float, z1_idx: Tensor | int, z2_idx: Tensor | int
    ) -> Tensor:
        """Engine actions implementing :meth:`policy`, ``[..., 2]``: ``s_i = x_i / Y_i``, ``x_i = phi/2 I I_i``."""
        k1, k2, z1, z2 = torch.broadcast_tensors(
            torch.as_tensor(k1, dtype=_DTYPE),
            torch.as_tensor(k2, dtype=_DTYPE),
            torch.as_tensor(z1_idx, dtype=torch.long),
            torch.as_tensor(z2_idx, dtype=torch.long),
        )
        kn1, kn2 = self.policy(k1, k2, z1, z2)
        return _shares(k1, k2, self.tfp[z1], self.tfp[z2], kn1, kn2, self.alpha, self.delta, self.phi)

    def fixed_point(
        self, z1_idx: int = 0, z2_idx: int = 0, *, start: tuple[float, float] | None = None, periods: int = 5000
    ) -> tuple[float, float]:
        """Iterate the policy with TFP held at ``(z_1, z_2)`` from ``start`` (default ``(k_ss, k_ss)``); the limit.

        With a single TFP state this is the deterministic steady state of the DP policy.
        """
        k1 = torch.tensor(self.k_ss if start is None else start[0], dtype=_DTYPE)
        k2 = torch.tensor(self.k_ss if start is None else start[1], dtype=_DTYPE)
        for _ in range(periods):
            k1, k2 = self.policy(k1, k2, z1_idx, z2_idx)
        return float(k1), float(k2)


def _shares(
    k1: Tensor, k2: Tensor, z1: Tensor, z2: Tensor, kn1: Tensor, kn2: Tensor, alpha: float, delta: float, phi: float
) -> Tensor:
    i1 = (kn1 - (1.0 - delta) * k1).clamp_min(0.0)
    i2 = (kn2 - (1.0 - delta) * k2).clamp_min(0.0)
    tot = i1 + i2
    return torch.stack([0.5 * phi * tot * i1 / (z1 * k1.pow(alpha)), 0.5 * phi * tot * i2 / (z2 * k2.pow(alpha))], -1)


def solve_vfi_two(
    cfg: InvestmentConfig,
    n_k: int = 61,
    k_bounds: tuple[float, float] = (0.5, 1.5),
    tol: float = 1e-7,
    max_iter: int = 5000,
    *,
    howard: int = 50,
) -> TwoHouseholdSolution:
    """Solve the two-household planner (module docstring) by value-function iteration with Howard steps.

    Start: the constant steady-state share rule (:func:`share_rule`), evaluated. Each improvement step maximises the
    Bellman right-hand side over continuous ``(K_1', K_2')`` against the tensor-product cubic spline of ``EV``
    (Newton from the previous policy); an exhaustive search over all feasible grid pairs (``EV`` at the knots, no
    interpolation, no concavity assumed) runs alongside, and wherever a grid pair beats the Newton point Newton is
    restarted from it (the return is not concave; several local maxima exist at very asymmetric states). Up to
    ``howard`` evaluation sweeps follow; stops when ``max |T V - V| < tol`` at the knots. The last grid search's
    argmax is kept as ``grid_policy``.

    Cost (one core, default calibration): about 1 s at ``n_k = 31``, 4 s at 61, 7-9 s at 81.

    Args:
        cfg: Two households, one capital good, planner formulation, share actions, no aggregate shock.
        n_k: Knots per household; the grid is ``k_ss * linspace(*k_bounds, n_k)`` for both.
        k_bounds: Grid bounds in units of ``k_ss`` (``lo < 1 < hi``).
        tol: Stopping bound on ``max |T V - V|``.
        max_iter: Maximal improvement steps.
        howard: Evaluation sweeps per improvement step (fewer once a sweep changes ``V`` by less than ``tol / 10``).

    Raises:
        ConfigError: Unsupported config or grid.
        RuntimeError: No convergence within ``max_iter`` steps.
    """
    t0 = time.perf_counter()
    pb = _problem(cfg, n_k, k_bounds)
    k_ss = steady_state_capital(cfg)
    z1 = torch.arange(pb.s)[:, None, None, None].expand(pb.shape).reshape(-1)
    z2 = torch.arange(pb.s)[None, :, None, None].expand(pb.shape).reshape(-1)
    kn1, kn2 = pb.clamp(*share_rule(cfg)(pb.k1, pb.k2, z1, z2))
    c_ss = k_ss**cfg.alpha - cfg.phi * (cfg.delta * k_ss) ** 2
    v0 = 2.0 * float(crra_utility(torch.tensor(c_ss, dtype=_DTYPE), cfg.crra)) / (1.0 - cfg.beta)
    v = _evaluate(pb, kn1, kn2, torch.full(pb.shape, v0, dtype=_DTYPE), 2000, tol)
    res, gain = float("inf"), float("nan")
    j1 = j2 = torch.zeros(pb.shape, dtype=torch.long)
    for it in range(1, max_iter + 1):  # noqa: B007
        spl = pb.spline(v)
        kn1, kn2, tv = _newton(pb, spl, kn1, kn2)
        # global safeguard: where the best grid pair beats the Newton point, restart Newton from that pair
        gv, j1, j2 = _grid_search(pb, _expect(pb.trans, v))
        gv = gv.reshape(-1)
        idx = (gv > tv + 1e-12 * tv.abs().clamp_min(1.0)).nonzero()[:, 0]
        if idx.numel() > 0:
            b1, b2, bv = _newton(pb, spl, pb.grid[j1.reshape(-1)[idx]], pb.grid[j2.reshape(-1)[idx]], idx)
            take = bv > tv[idx]
            kn1[idx[take]], kn2[idx[take]], tv[idx[take]] = b1[take], b2[take], bv[take]
        gain = float((gv - tv).max())
        tv = _symmetrise(tv.reshape(pb.shape))
        res = float((tv - v).abs().max())
        if res < tol:
            break
        v = _evaluate(pb, kn1, kn2, tv, howard, 0.1 * tol)
    else:
        raise RuntimeError(f"solve_vfi_two did not converge in {max_iter} steps: max|TV - V| = {res:.3e} > {tol:.1e}")
    return TwoHouseholdSolution(
        grid=pb.grid,
        k_ss=k_ss,
        tfp=pb.tfp,
        transition=pb.trans,
        value=v,
        next_capital=torch.stack([kn1, kn2]).reshape(2, *pb.shape),
        grid_policy=torch.stack([j1, j2]),
        alpha=cfg.alpha,
        beta=cfg.beta,
        delta=cfg.delta,
        phi=cfg.phi,
        crra=cfg.crra,
        iterations=it,
        bellman_residual=res,
        grid_gain=gain,
        seconds=time.perf_counter() - t0,
    )


# ----------------------------------------------------------------------------------------------------------------
# Rules, Euler errors, simulation
# ----------------------------------------------------------------------------------------------------------------


def share_rule(cfg: InvestmentConfig, share: float | None = None) -> Policy:
    """The policy of the rule "each household spends ``share`` of its output" (default: the deterministic
    steady-state share), as ``(K_1, K_2, z_1, z_2) -> (K_1', K_2')``.

    ``x_i = share Y_i``, ``R = x_1 + x_2``, ``I_i = x_i / sqrt(phi R / 2)``, ``K_i' = (1 - delta) K_i + I_i``.
    """
    _check(cfg)
    s = steady_state_spending_share(cfg) if share is None else float(share)
    tfp, _ = _chain(cfg)
    a, d, phi = cfg.alpha, cfg.delta, cfg.phi

    def rule(k1: Tensor, k2: Tensor, z1: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
        x1 = s * tfp[z1] * k1.pow(a)
        x2 = s * tfp[z2] * k2.pow(a)
        scale = torch.sqrt(0.5 * phi * (x1 + x2))
        return (1.0 - d) * k1 + x1 / scale, (1.0 - d) * k2 + x2 / scale

    return rule


def euler_errors_two(cfg: InvestmentConfig, policy: Policy, k1: Tensor, k2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Unit-free errors of the planner's Euler equations ``[..., 2]`` for a policy at given states.

    For household 1 (household 2 by symmetry), with ``I_i = K_i' - (1-delta) K_i``, ``C_i = Y_i - phi/2 (I_1 + I_2)
    I_i`` and the marginal cost of ``K_1'`` in utility, ``M_1 = phi/2 [u'(C_1) (2 I_1 + I_2) + u'(C_2) I_2]``::

        error_1 = M_1 / (beta sum_{z'} P[z_1, z_1'] P[z_2, z_2'] (u'(C_1') alpha Y_1' / K_1' + (1 - delta) M_1')) - 1

    next-period quantities from ``policy`` at ``(K_1', K_2', z')`` for every ``z'`` (exact expectation). Derived from
    the first-order condition ``M_1 = beta E V_1(K', z')`` and the envelope condition
    ``V_1 = u'(C_1) alpha Y_1 / K_1 + (1 - delta) M_1``; it uses nothing of the VFI solver. For log utility and one
    household this is Judd's ``C_implied / C - 1``. Valid where ``I_i > 0`` (no corner).
    """
    tfp, trans = _chain(cfg)
    a, b, d, phi, sig = cfg.alpha, cfg.beta, cfg.delta, cfg.phi, cfg.crra
    s = tfp.shape[0]

    def marginal(k1_: Tensor, k2_: Tensor, z1_: Tensor, z2_: Tensor) -> tuple[Tensor, ...]:
        kn1, kn2 = policy(k1_, k2_, z1_, z2_)
        y1, y2 = tfp[z1_] * k1_.pow(a), tfp[z2_] * k2_.pow(a)
        i1, i2, c1, c2 = _flows(k1_, k2_, y1, y2, kn1, kn2, d, phi)
        mu1, mu2 = c1.pow(-sig), c2.pow(-sig)
        m1 = 0.5 * phi * (mu1 * (2.0 * i1 + i2) + mu2 * i2)
        m2 = 0.5 * phi * (mu2 * (i1 + 2.0 * i2) + mu1 * i1)
        return kn1, kn2, m1, m2, mu1 * a * y1 / k1_, mu2 * a * y2 / k2_

    k1, k2, z1, z2 = torch.broadcast_tensors(
        torch.as_tensor(k1, dtype=_DTYPE), torch.as_tensor(k2, dtype=_DTYPE), torch.as_tensor(z1), torch.as_tensor(z2)
    )
    kn1, kn2, m1, m2, _, _ = marginal(k1, k2, z1, z2)
    rhs1 = torch.zeros_like(m1)
    rhs2 = torch.zeros_like(m2)
    for t1 in range(s):
        for t2 in range(s):
            p = trans[z1, t1] * trans[z2, t2]
            _, _, m1n, m2n, r1n, r2n = marginal(kn1, kn2, torch.full_like(z1, t1), torch.full_like(z2, t2))
            rhs1 = rhs1 + p * (r1n + (1.0 - d) * m1n)
            rhs2 = rhs2 + p * (r2n + (1.0 - d) * m2n)
    return torch.stack([m1 / (b * rhs1) - 1.0, m2 / (b * rhs2) - 1.0], -1)


def simulate_two(
    cfg: InvestmentConfig,
    sol: TwoHouseholdSolution | Policy,
    periods: int,
    paths: int,
    seed: int,
    *,
    k0: float | None = None,
    return_paths: bool = False,
) -> dict[str, Any]:
    """Simulate a policy in the engine (``InvestmentEconomy(cfg).step``) from ``K_i = k0`` (default ``k_ss``).

    Each period the policy's ``(K_1', K_2')`` is turned into the engine's actions, the spending shares
    ``s_i = phi/2 (I_1 + I_2) I_i / Y_i``; the engine draws the TFP chains (initial states from the stationary
    distribution) from ``torch.Generator().manual_seed(seed)``, so the same seed gives the same shocks for every
    policy (common random numbers). The engine's next capital is compared with the policy's (``engine_gap``).

    Args:
        cfg: The economy (as :func:`solve_vfi_two`).
        sol: A solution (its :meth:`~TwoHouseholdSolution.policy`) or any policy ``(K_1, K_2, z_1, z_2) -> (K_1',
            K_2')`` such as :func:`share_rule`.
        periods, paths: Simulation length and number of independent economies.
        seed: Seed of the shocks.
        k0: Initial capital of both households.
        return_paths: Also return ``capital`` (start of period, ``[T, B, 2]``), ``z_idx`` ``[T, B, 2]`` and
            ``consumption`` ``[T, B, 2]``.

    Returns:
        ``mean_capital_ratio`` and ``sd_capital_ratio`` (``K / k_ss`` pooled over households, paths and the second
        half of the periods), ``mean_consumption``, ``mean_output``, ``mean_share`` (spending / output) over the
        same window; ``welfare`` (mean over paths of ``sum_t beta^t (u(C_1t) + u(C_2t))`` from ``t = 0``) and its
        standard error ``welfare_se``; ``engine_gap``: ``max |K'_engine - K'_policy| / k_ss``.
    """
    from abm_markets.engine.investment import InvestmentEconomy

    _check(cfg)
    policy = sol.policy if isinstance(sol, TwoHouseholdSolution) else sol
    eco = InvestmentEconomy(cfg)
    k_ss = steady_state_capital(cfg)
    gen = torch.Generator().manual_seed(seed)
    state = eco.initial_state(paths, gen)
    state = dataclasses.replace(state, capital=torch.full_like(state.capital, k_ss if k0 is None else k0))
    a, d, phi = cfg.alpha, cfg.delta, cfg.phi
    caps, zs, cons, outs, shares = [], [], [], [], []
    welfare = torch.zeros(paths, dtype=_DTYPE)
    gap = 0.0
    disc = 1.0
    for _ in range(periods):
        k = state.capital[:, :, 0]
        z = state.z_idx
        kn1, kn2 = policy(k[:, 0], k[:, 1], z[:, 0], z[:, 1])
        tfp = eco.tfp(state)
        s = _shares(k[:, 0], k[:, 1], tfp[:, 0], tfp[:, 1], kn1, kn2, a, d, phi)
        nxt, out = eco.step(state, {"households": s.unsqueeze(-1)}, gen)
        gap = max(gap, float((nxt.capital[:, :, 0] - torch.stack([kn1, kn2], -1)).abs().max()) / k_ss)
        caps.append(k / k_ss)
        zs.append(z)
        cons.append(out.consumption)
        outs.append(out.output)
        shares.append(out.spending.sum(-1) / out.output)
        welfare += disc * out.reward_planner
        disc *= cfg.beta
        state = nxt
    half = periods // 2
    cap = torch.stack(caps)
    res: dict[str, Any] = {
        "mean_capital_ratio": float(cap[half:].mean()),
        "sd_capital_ratio": float(cap[half:].std()),
        "mean_consumption": float(torch.stack(cons)[half:].mean()),
        "mean_output": float(torch.stack(outs)[half:].mean()),
        "mean_share": float(torch.stack(shares)[half:].mean()),
        "welfare": float(welfare.mean()),
        "welfare_se": float(welfare.std() / math.sqrt(paths)) if paths > 1 else float("nan"),
        "engine_gap": gap,
    }
    if return_paths:
        res["capital"] = cap * k_ss
        res["z_idx"] = torch.stack(zs)
        res["consumption"] = torch.stack(cons)
    return res
