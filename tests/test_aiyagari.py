"""Stationary Krusell-Smith (Aiyagari) equilibrium against independent checks."""

from __future__ import annotations

import math

import pytest
import torch

from abm_markets.errors import ConfigError
from abm_markets.solvers.aiyagari import (
    AiyagariConfig,
    capital_demand,
    interp_rows,
    lottery,
    push_forward,
    rouwenhorst,
    solve_stationary,
)


@pytest.fixture(scope="module")
def coarse():
    cfg = AiyagariConfig(n_a=200, a_max=40.0, tol_r=1e-8)
    return cfg, solve_stationary(cfg)


def test_rouwenhorst_matches_ar1_moments():
    rho, sd = 0.6, 0.2
    x, P = rouwenhorst(5, rho, sd)
    pi = torch.linalg.matrix_power(P, 500)[0]
    var = float(pi @ x**2 - (pi @ x) ** 2)
    cov = float(pi @ (x * (P @ x)))
    assert var == pytest.approx(sd**2 / (1 - rho**2), rel=1e-10)
    assert cov / var == pytest.approx(rho, rel=1e-10)


def test_markets_clear_and_distribution_invariant(coarse):
    cfg, ss = coarse
    K_d = capital_demand(ss.r, cfg.alpha, cfg.delta)
    assert abs(ss.K - K_d) / K_d < 1e-5
    i, w = lottery(ss.a_grid, ss.a_next)
    g1 = push_forward(ss.dist, i, w, ss.P_e)
    assert float((g1 - ss.dist).abs().sum()) < 1e-9
    # efficiency marginals are the stationary ones and labour supply is 1
    assert torch.allclose(ss.dist.sum(0), ss.pi_e, atol=1e-10)
    assert float(ss.pi_e @ ss.e) == pytest.approx(1.0, abs=1e-12)


def test_precautionary_saving_lowers_r(coarse):
    cfg, ss = coarse
    assert -cfg.delta < ss.r < 1 / cfg.beta - 1  # Aiyagari (1994): r below the complete-markets rate
    assert capital_demand(1 / cfg.beta - 1, cfg.alpha, cfg.delta) < ss.K


def test_egm_policy_solves_euler_equation_off_grid(coarse):
    """Euler residuals at midpoints between grid points (where EGM never evaluated it)."""
    cfg, ss = coarse
    a = 0.5 * (ss.a_grid[1:] + ss.a_grid[:-1])
    a = a[a < 20.0]
    n_e = ss.e.shape[0]
    R = 1 + ss.r
    rows = ss.a_grid.expand(n_e, -1)
    ap = interp_rows(rows, ss.a_next.T, a.expand(n_e, -1))  # (n_e, m)
    c = R * a[None] + ss.w * ss.e[:, None] - ap
    c_next = R * ss.a_grid[:, None] + ss.w * ss.e[None] - ss.a_next  # (n_a, n_e')
    emu = torch.zeros_like(c)
    for k in range(n_e):
        cn = interp_rows(rows, c_next.T, ap[k].expand(n_e, -1))  # (n_e', m)
        emu[k] = (ss.P_e[k][:, None] * cn ** (-cfg.sigma)).sum(0)
    c_impl = (cfg.beta * R * emu) ** (-1 / cfg.sigma)
    unconstrained = ap > 1e-6
    err = (1 - c_impl / c).abs()[unconstrained]
    # linear interpolation of the policy between grid points; largest next to the kink where
    # the borrowing constraint starts to bind
    assert float(err.max()) < 1e-2
    assert float(err.quantile(0.95)) < 1e-3
    assert float(err.mean()) < 3e-4


def test_monte_carlo_households_reproduce_K(coarse):
    """Independent check of Young's method: 20,000 simulated households with continuous assets.

    Households start from the solved distribution and follow the interpolated policy for
    200 periods; their mean assets must stay at K within sampling error (plus 0.5 % for the
    difference between the lottery and continuous assets on a 200-point grid).
    """
    _, ss = coarse
    gen = torch.Generator().manual_seed(1)
    n, T = 20_000, 200
    n_e = ss.e.shape[0]
    cell = torch.multinomial(ss.dist.reshape(-1), n, replacement=True, generator=gen)
    a, s = ss.a_grid[cell // n_e].clone(), cell % n_e
    cum = ss.P_e.cumsum(1)
    rows = ss.a_grid.expand(n_e, -1)
    for _ in range(T):
        ap_all = interp_rows(rows, ss.a_next.T, a.expand(n_e, -1).contiguous())  # (n_e, n)
        a = ap_all.gather(0, s[None])[0].clamp(min=0.0)
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        s = torch.searchsorted(cum[s], u[:, None]).squeeze(1).clamp(max=n_e - 1)
    mean, se = float(a.mean()), float(a.std()) / math.sqrt(n)
    assert abs(mean - ss.K) < 4 * se + 0.005 * ss.K


def test_bad_config_is_rejected():
    with pytest.raises(ConfigError, match="a_max"):
        AiyagariConfig(a_min=1.0, a_max=0.5)
