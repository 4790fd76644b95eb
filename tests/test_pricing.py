"""Logit pricing reference answers: FOCs, published values, closed forms, profit gain."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize, special

from abm_markets.errors import ConfigError
from abm_markets.solvers.pricing import (
    LogitMarket,
    bertrand_nash,
    best_response_index,
    joint_monopoly,
    logit_demand,
    logit_profit,
    price_grid,
    profit_gain,
    profit_table,
)

BASE = LogitMarket()  # Calvano et al. (2020) baseline: a=2, a0=0, c=1, mu=0.25, n=2


def _own_derivative(p: np.ndarray, market: LogitMarket, i: int, h: float = 1e-6) -> float:
    up, dn = p.copy(), p.copy()
    up[i] += h
    dn[i] -= h
    return (logit_profit(up, market)[i] - logit_profit(dn, market)[i]) / (2 * h)


def test_demand_shares_sum_below_one_and_match_formula() -> None:
    p = np.array([1.5, 1.8])
    q = logit_demand(p, BASE)
    e = np.exp((2.0 - p) / 0.25)
    np.testing.assert_allclose(q, e / (e.sum() + 1.0), rtol=1e-14)


def test_nash_price_matches_paper_and_zeroes_own_derivative() -> None:
    p_n = bertrand_nash(BASE)
    assert p_n == pytest.approx([1.473, 1.473], abs=5e-4)  # Calvano et al. (2020), Section II
    for i in range(2):
        assert abs(_own_derivative(p_n, BASE, i)) < 1e-8
    # No profitable unilateral deviation on a fine grid.
    for dev in np.linspace(1.0, 2.5, 301):
        p = p_n.copy()
        p[0] = dev
        assert logit_profit(p, BASE)[0] <= logit_profit(p_n, BASE)[0] + 1e-12


def test_monopoly_price_matches_paper_and_maximises_joint_profit() -> None:
    p_m = joint_monopoly(BASE)
    assert p_m == pytest.approx([1.925, 1.925], abs=5e-4)
    direct = optimize.minimize(lambda p: -logit_profit(p, BASE).sum(), x0=[1.5, 1.6], method="BFGS", tol=1e-12)
    np.testing.assert_allclose(p_m, direct.x, atol=1e-5)
    assert logit_profit(p_m, BASE).sum() >= -direct.fun - 1e-12


def test_single_firm_monopoly_matches_lambert_w_closed_form() -> None:
    # Single-product logit monopoly: p - c = mu (1 + W(exp((a - c - a0)/mu - 1))).
    for a, c, mu in [(2.0, 1.0, 0.25), (3.0, 0.5, 1.0)]:
        mk = LogitMarket(n_firms=1, a=(a,), c=(c,), mu=mu)
        closed = c + mu * (1.0 + special.lambertw(np.exp((a - c) / mu - 1.0)).real)
        assert joint_monopoly(mk)[0] == pytest.approx(closed, abs=1e-10)
        assert bertrand_nash(mk)[0] == pytest.approx(closed, abs=1e-10)


def test_profit_gain_of_known_strategy_pairs() -> None:
    p_n, p_m = bertrand_nash(BASE), joint_monopoly(BASE)
    pi_n, pi_m = logit_profit(p_n, BASE)[0], logit_profit(p_m, BASE)[0]
    assert pi_n == pytest.approx(0.2229, abs=1e-4)
    assert pi_m == pytest.approx(0.3375, abs=1e-4)
    assert profit_gain(logit_profit(p_n, BASE).mean(), pi_n, pi_m) == pytest.approx(0.0, abs=1e-12)
    assert profit_gain(logit_profit(p_m, BASE).mean(), pi_n, pi_m) == pytest.approx(1.0, abs=1e-12)
    # Both at the lowest grid price (below Nash) -> negative gain.
    grid = price_grid(p_n[0], p_m[0])
    assert profit_gain(logit_profit(grid[[0, 0]], BASE).mean(), pi_n, pi_m) < 0


def test_grid_and_profit_table_layout() -> None:
    p_n, p_m = bertrand_nash(BASE)[0], joint_monopoly(BASE)[0]
    grid = price_grid(p_n, p_m)
    assert grid[0] == pytest.approx(p_n - 0.1 * (p_m - p_n))
    assert grid[-1] == pytest.approx(p_m + 0.1 * (p_m - p_n))
    tab = profit_table(grid, BASE)
    assert tab.shape == (2, 225)
    a0, a1 = 3, 11
    np.testing.assert_allclose(tab[:, a0 * 15 + a1], logit_profit(grid[[a0, a1]], BASE))
    # Static best response on the grid lies next to the continuous Nash price when the rival prices at Nash.
    br = best_response_index(tab, 15, 0, np.arange(15))
    assert br.shape == (15,)
    assert np.all(np.diff(br) >= 0)  # prices are strategic complements


def test_bad_market_is_rejected() -> None:
    with pytest.raises(ConfigError, match="n_firms"):
        LogitMarket(n_firms=3, a=(2.0, 2.0))


def test_matches_an_independent_implementation() -> None:
    # Figures asserted by the tests of AlgorithmicCompetition.jl (an independent Julia/JuMP
    # implementation of the same model): p_N = 1.47293, p_M = 1.92498, q(p_N) = 0.47138, q(p_M) = 0.36486.
    p_n, p_m = bertrand_nash(BASE), joint_monopoly(BASE)
    assert p_n[0] == pytest.approx(1.47293, abs=1e-5)
    assert p_m[0] == pytest.approx(1.92498, abs=1e-5)
    np.testing.assert_allclose(logit_demand(p_n, BASE), 0.47138, atol=1e-5)
    np.testing.assert_allclose(logit_demand(p_m, BASE), 0.36486, atol=1e-5)
