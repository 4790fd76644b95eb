"""Finite-agent Mesa economy vs the distribution method on the same shock path."""

from __future__ import annotations

import numpy as np
import pytest

from abm_markets.solvers.krusell_smith import KSConfig, interp_policy_K, simulate_policy, solve_krusell_smith
from abm_markets.srl.finite_agents import KSAgentEconomy, KSHousehold, run_finite_agents


@pytest.fixture(scope="module")
def ks():
    return solve_krusell_smith(KSConfig(n_a=100, n_K=8, T=500, burn=100, tol_egm=1e-8, tol_coef=1e-5))


def _policy(ks):
    def policy(K, zi):
        return interp_policy_K(ks.a_next[..., zi], ks.K_grid, K).clamp(min=0.0)

    return policy


def test_agents_agree_with_distribution_within_sampling_error(ks):
    """2,000 Mesa households, 50 periods: K_t and C_t within 4 standard errors every period."""
    T = 50
    z_path = ks.z_idx[100 : 100 + T]
    kw = dict(a_grid=ks.a_grid, e=ks.e, P_e=ks.P_e, z=ks.z, z_path=z_path, dist0=ks.dist0, alpha=0.36, delta=0.08)
    out = run_finite_agents(_policy(ks), T, n_households=2000, seed=3, **kw)
    K, C, _ = simulate_policy(_policy(ks), ks.a_grid, ks.P_e, ks.e, ks.z, z_path, ks.dist0, 0.36, 0.08)
    zK = (out["K"] - K.numpy()) / out["se_K"]
    zC = (out["C"] - C.numpy()) / out["se_C"]
    assert np.abs(zK).max() < 4.0
    assert np.abs(zC).max() < 4.0
    # the TFP path really moves the aggregates (so the agreement is not trivial)
    assert C.max() - C.min() > 10 * out["se_C"].mean()


def test_sampling_error_shrinks_with_more_agents(ks):
    """The gap to the continuum at the last period shrinks roughly like 1/sqrt(N) across seeds."""
    T = 10
    z_path = ks.z_idx[100 : 100 + T]
    kw = dict(a_grid=ks.a_grid, e=ks.e, P_e=ks.P_e, z=ks.z, z_path=z_path, dist0=ks.dist0, alpha=0.36, delta=0.08)
    K, _, _ = simulate_policy(_policy(ks), ks.a_grid, ks.P_e, ks.e, ks.z, z_path, ks.dist0, 0.36, 0.08)
    rmse = {}
    for n in (500, 8000):
        errs = [
            run_finite_agents(_policy(ks), T, n_households=n, seed=s, **kw)["K"][-1] - float(K[-1]) for s in range(8)
        ]
        rmse[n] = float(np.sqrt(np.mean(np.square(errs))))
    assert rmse[8000] < rmse[500] / 2  # sqrt(16) = 4 expected; 2 leaves room for 8-seed noise


def test_households_are_mesa_agents_and_seeded(ks):
    kw = dict(a_grid=ks.a_grid, e=ks.e, P_e=ks.P_e, z=ks.z, z_path=ks.z_idx[:5], dist0=ks.dist0, alpha=0.36, delta=0.08)
    m1 = KSAgentEconomy(_policy(ks), n_households=300, seed=7, **kw)
    m2 = KSAgentEconomy(_policy(ks), n_households=300, seed=7, **kw)
    for _ in range(5):
        m1.step()
        m2.step()
    assert len(m1.agents_by_type[KSHousehold]) == 300
    assert np.isclose(np.mean([h.assets for h in m1.agents]), m1.assets.mean())
    assert np.array_equal(m1.assets, m2.assets)
