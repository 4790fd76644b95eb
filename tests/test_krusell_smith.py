"""Krusell-Smith algorithm on a coarse grid: accuracy of the law of motion and limiting cases."""

from __future__ import annotations

import pytest
import torch

from abm_markets.solvers.krusell_smith import KSConfig, simulate_distribution, solve_krusell_smith

COARSE = {"n_a": 80, "n_K": 8, "T": 700, "burn": 100, "tol_egm": 1e-8, "tol_coef": 1e-5}


@pytest.fixture(scope="module")
def ks():
    return solve_krusell_smith(KSConfig(**COARSE))


def test_law_of_motion_is_accurate(ks):
    assert ks.converged
    assert bool((ks.r2 > 0.99).all())
    assert ks.den_haan_max < 2.0  # percent
    # the law of motion is stable (|b1| < 1) and its fixed points straddle the mean capital
    assert bool((ks.coef[:, 1].abs() < 1).all())
    K_fix = torch.exp(ks.coef[:, 0] / (1 - ks.coef[:, 1]))
    K_mean = float(ks.K_path[COARSE["burn"] :].mean())
    assert float(K_fix.min()) < K_mean < float(K_fix.max())
    # higher TFP -> more saving next period at the same K
    assert bool((K_fix[1:] > K_fix[:-1]).all())


def test_fixed_point_of_the_simulation(ks):
    """Re-simulating with the final policy reproduces the path the regressions were run on."""
    K, C, _ = simulate_distribution(ks.a_next, ks.a_grid, ks.K_grid, ks.P_e, ks.e, ks.z, ks.z_idx, ks.dist0, 0.36, 0.08)
    assert torch.allclose(K, ks.K_path, rtol=1e-12)
    # resource constraint: C + K' = Y + (1 - delta) K, exact under the lottery inside the grid
    Y = ks.z[ks.z_idx] * K**0.36
    resid = C[:-1] + K[1:] - Y[:-1] - 0.92 * K[:-1]
    assert float(resid.abs().max()) < 1e-6  # mass lottered beyond a_max is clamped


def test_vanishing_aggregate_risk_recovers_stationary_equilibrium():
    ks = solve_krusell_smith(KSConfig(**COARSE, sd_z=1e-5, max_outer=20))
    assert float(ks.K_path.mean()) == pytest.approx(ks.stationary_K, rel=2e-3)


def test_euler_errors_small_and_detect_a_wrong_policy(ks):
    """The KS policy satisfies the Euler equation along the path; a 5 % perturbed policy does not."""
    from abm_markets.solvers.krusell_smith import euler_errors, interp_policy_K

    _, _, dists = simulate_distribution(
        ks.a_next, ks.a_grid, ks.K_grid, ks.P_e, ks.e, ks.z, ks.z_idx, ks.dist0, 0.36, 0.08
    )
    sl = slice(100, 250)
    args = (ks.a_grid, ks.e, ks.P_e, ks.z, ks.P_z, ks.K_path[sl], ks.z_idx[sl], dists[sl], 0.95, 3.0, 0.36, 0.08)

    def good(K, zi):
        return interp_policy_K(ks.a_next[..., zi], ks.K_grid, K).clamp(min=0.0)

    def bad(K, zi):
        return 0.95 * good(K, zi)

    ok = euler_errors(good, *args)
    off = euler_errors(bad, *args)
    assert ok["euler_mean_log10"] < -3.5
    assert off["euler_mean_log10"] > ok["euler_mean_log10"] + 1.0
