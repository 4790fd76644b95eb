"""Reference solutions of the investment economy against closed forms, hand-derived FOCs and a second method."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.errors import ConfigError
from abm_markets.solvers.investment import (
    closed_form_steady_state,
    consumption_equivalent,
    euler_errors,
    simulate,
    simulate_paths,
    solve_euler_collocation,
    solve_vfi,
    steady_state,
    tfp_chain,
)


def corrected_k(nh: int, nc: int, alpha=0.3, beta=0.98, delta=0.04, phi=0.5) -> float:
    """K^(2-alpha) = alpha beta / (N^c N^h phi delta (1 - beta (1 - delta))), written out independently."""
    return (alpha * beta / (nc * nh * phi * delta * (1 - beta * (1 - delta)))) ** (1 / (2 - alpha))


# ---------------------------------------------------------------------------------------------------------------
# Shock chain
# ---------------------------------------------------------------------------------------------------------------


def test_tfp_chain_tensor_product_idiosyncratic_major():
    cfg = InvestmentConfig(
        tfp_values=(0.9, 1.1), tfp_persistence=0.9, agg_tfp_values=(0.95, 1.05), agg_tfp_persistence=0.8
    )
    values, p = tfp_chain(cfg)
    np.testing.assert_allclose(values.numpy(), [0.9 * 0.95, 0.9 * 1.05, 1.1 * 0.95, 1.1 * 1.05])
    assert p.shape == (4, 4)
    np.testing.assert_allclose(p.sum(1).numpy(), 1.0, atol=1e-15)
    assert p[0, 0].item() == pytest.approx(0.9 * 0.8)  # both stay
    assert p[0, 1].item() == pytest.approx(0.9 * 0.2)  # aggregate moves
    assert p[0, 2].item() == pytest.approx(0.1 * 0.8)  # idiosyncratic moves
    assert p[3, 0].item() == pytest.approx(0.1 * 0.2)


def test_tfp_chain_three_states_and_single_state():
    values, p = tfp_chain(InvestmentConfig(tfp_values=(0.8, 1.0, 1.2), tfp_persistence=0.7))
    np.testing.assert_allclose(values.numpy(), [0.8, 1.0, 1.2])
    np.testing.assert_allclose(p.numpy(), [[0.7, 0.15, 0.15], [0.15, 0.7, 0.15], [0.15, 0.15, 0.7]])
    values, p = tfp_chain(InvestmentConfig(tfp_values=(1.0,)))
    assert values.tolist() == [1.0] and p.tolist() == [[1.0]]


# ---------------------------------------------------------------------------------------------------------------
# Deterministic steady state
# ---------------------------------------------------------------------------------------------------------------

SHAPES = [(1, 1), (4, 1), (100, 1), (2, 2), (3, 5), (10, 10)]


@pytest.mark.parametrize("formulation", ["planner", "market"])
@pytest.mark.parametrize(("nh", "nc"), SHAPES)
def test_numerical_steady_state_matches_corrected_closed_form(nh, nc, formulation):
    cfg = InvestmentConfig(n_households=nh, n_capital_goods=nc, formulation=formulation)
    st = steady_state(cfg)
    k = corrected_k(nh, nc)
    assert st.capital.shape == (nh, nc) and st.price.shape == (nc,) and st.output.shape == (nh,)
    np.testing.assert_allclose(st.capital, k, rtol=1e-11)
    np.testing.assert_allclose(st.price, cfg.phi * nh * cfg.delta * k, rtol=1e-11)
    y = k**cfg.alpha
    np.testing.assert_allclose(st.output, y, rtol=1e-11)
    # Spending per good: market p * I = phi N^h delta^2 K^2; planner (phi/2) N^h delta^2 K^2.
    factor = 1.0 if formulation == "market" else 0.5
    share = factor * cfg.phi * nh * cfg.delta**2 * k**2 / y
    np.testing.assert_allclose(st.saving_share, share, rtol=1e-10)
    np.testing.assert_allclose(st.consumption, y * (1 - nc * share), rtol=1e-10)
    # Total saving share is independent of N^h, N^c: N^c s = factor * delta alpha beta / (1 - beta (1 - delta)).
    total = factor * cfg.delta * cfg.alpha * cfg.beta / (1 - cfg.beta * (1 - cfg.delta))
    np.testing.assert_allclose(st.saving_share.sum(1), total, rtol=1e-10)
    assert st.residual < 1e-12
    cf = closed_form_steady_state(cfg, "corrected")
    np.testing.assert_allclose(cf.capital, st.capital, rtol=1e-11)
    assert cf.residual < 1e-13


@pytest.mark.parametrize("formulation", ["planner", "market"])
def test_steady_state_other_calibration_and_crra(formulation):
    par = {"alpha": 0.4, "beta": 0.95, "delta": 0.1, "phi": 1.3}
    cfg = InvestmentConfig(n_households=3, n_capital_goods=2, formulation=formulation, crra=2.5, **par)
    st = steady_state(cfg)
    np.testing.assert_allclose(st.capital, corrected_k(3, 2, **par), rtol=1e-11)


@pytest.mark.parametrize("formulation", ["planner", "market"])
def test_large_economy_100_households_10_goods(formulation):
    cfg = InvestmentConfig(n_households=100, n_capital_goods=10, formulation=formulation)
    st = steady_state(cfg)
    np.testing.assert_allclose(st.capital, corrected_k(100, 10), rtol=1e-10)
    assert st.residual < 1e-12


@pytest.mark.parametrize("formulation", ["planner", "market"])
def test_seed_closed_form_agrees_for_one_good(formulation):
    for nh in (1, 4, 100):
        cfg = InvestmentConfig(n_households=nh, n_capital_goods=1, formulation=formulation)
        seed = closed_form_steady_state(cfg, "seed")
        assert seed.capital[0, 0] == pytest.approx(corrected_k(nh, 1), rel=1e-13)
        assert seed.residual < 1e-13


@pytest.mark.parametrize("formulation", ["planner", "market"])
@pytest.mark.parametrize(
    ("nh", "nc", "k_seed", "k_true"),
    [(2, 2, 10.726952374434875, 11.341435352257735), (10, 10, 1.5499949370379893, 1.7074593355702046)],
)
def test_seed_closed_form_is_wrong_for_several_goods(formulation, nh, nc, k_seed, k_true):
    cfg = InvestmentConfig(n_households=nh, n_capital_goods=nc, formulation=formulation)
    seed = closed_form_steady_state(cfg, "seed")
    assert seed.capital[0, 0] == pytest.approx(k_seed, rel=1e-12)
    assert steady_state(cfg).capital[0, 0] == pytest.approx(k_true, rel=1e-11)
    assert abs(seed.capital[0, 0] / k_true - 1) > 0.05
    # The seed's K leaves a gap in the true Euler equation of exactly beta alpha delta (N^c - 1)/N^c: the term its
    # envelope derivative dropped (derivation in docs/steady_state.md).
    assert seed.residual == pytest.approx(cfg.beta * cfg.alpha * cfg.delta * (nc - 1) / nc, rel=1e-9)


def test_steady_state_heterogeneous_tfp_market_satisfies_hand_derived_focs():
    nh, nc = 6, 3
    cfg = InvestmentConfig(n_households=nh, n_capital_goods=nc, formulation="market")
    z = np.random.default_rng(0).uniform(0.7, 1.3, nh)
    st = steady_state(cfg, z=z)
    a, b, d, phi = cfg.alpha, cfg.beta, cfg.delta, cfg.phi
    k, p = st.capital, st.price
    y = z * np.prod(k ** (a / nc), axis=1)
    # Household Euler: p_j (1 - beta (1 - delta)) = beta (alpha / N^c) Y_i / K_ij; clearing p_j = phi delta sum_i K_ij.
    lhs = np.broadcast_to(p[None, :] * (1 - b * (1 - d)), k.shape)
    np.testing.assert_allclose(lhs, b * (a / nc) * y[:, None] / k, rtol=1e-11)
    np.testing.assert_allclose(p, phi * d * k.sum(0), rtol=1e-11)
    # More productive households hold more capital: K_i proportional to Z_i^(1/(1-alpha)) given the common price.
    ratio = k[:, 0] / z ** (1 / (1 - a))
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)
    assert np.all(st.consumption > 0)


def test_steady_state_heterogeneous_tfp_planner_satisfies_hand_derived_focs():
    nh, nc = 5, 2
    cfg = InvestmentConfig(n_households=nh, n_capital_goods=nc, formulation="planner", crra=2.0)
    z = np.random.default_rng(1).uniform(0.7, 1.3, nh)
    st = steady_state(cfg, z=z)
    a, b, d, phi, sigma = cfg.alpha, cfg.beta, cfg.delta, cfg.phi, cfg.crra
    k = st.capital
    inv = d * k
    total = inv.sum(0)
    y = z * np.prod(k ** (a / nc), axis=1)
    c = y - (0.5 * phi * total[None, :] * inv).sum(1)
    mu = c**-sigma
    # Planner's marginal cost of I_ij in utils (x_kj = phi/2 I_j I_kj for all k):
    # MC_ij = phi/2 (u'(C_i) I_j + sum_k u'(C_k) I_kj); Euler MC_ij (1 - beta(1-delta)) = beta u'(C_i) a/N^c Y_i/K_ij.
    mc = 0.5 * phi * (mu[:, None] * total[None, :] + (mu[:, None] * inv).sum(0)[None, :])
    np.testing.assert_allclose(mc * (1 - b * (1 - d)), b * mu[:, None] * (a / nc) * y[:, None] / k, rtol=1e-10)
    np.testing.assert_allclose(st.consumption, c, rtol=1e-12)


def test_steady_state_heterogeneous_large_converges():
    cfg = InvestmentConfig(n_households=100, n_capital_goods=10, formulation="planner")
    z = np.random.default_rng(2).uniform(0.8, 1.2, 100)
    st = steady_state(cfg, z=z)
    assert st.residual < 1e-12
    assert np.all(st.consumption > 0) and np.all(st.capital > 0)


def test_steady_state_to_json_and_bad_inputs():
    cfg = InvestmentConfig(n_households=2, n_capital_goods=3, formulation="market")
    js = steady_state(cfg).to_json()
    for key in ("capital", "price", "saving_share", "output", "consumption", "investment", "residual"):
        assert key in js
    assert len(js["capital"]) == 2 and len(js["capital"][0]) == 3 and len(js["price"]) == 3
    with pytest.raises(ConfigError, match="z"):
        steady_state(cfg, z=[1.0, 1.0, 1.0])
    with pytest.raises(ConfigError, match="z"):
        steady_state(cfg, z=[1.0, -1.0])
    with pytest.raises(ConfigError, match="which"):
        closed_form_steady_state(cfg, "paper")


# ---------------------------------------------------------------------------------------------------------------
# Stochastic planner: VFI and Euler collocation
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stochastic():
    cfg = InvestmentConfig(tfp_values=(0.9, 1.1), agg_tfp_values=(0.97, 1.03))
    return cfg, solve_vfi(cfg, n_k=201), solve_euler_collocation(cfg, n_k=61)


@pytest.fixture(scope="module")
def ergodic(stochastic):
    cfg, vfi, _ = stochastic
    paths = simulate_paths(vfi, cfg, 300, 40, torch.Generator().manual_seed(3))
    return paths["capital"][100:].reshape(-1), paths["z_index"][100:].reshape(-1)


def test_vfi_rejects_other_economies():
    for kw in ({"n_households": 2}, {"n_capital_goods": 2}, {"formulation": "market"}):
        with pytest.raises(ConfigError):
            solve_vfi(InvestmentConfig(**kw), n_k=21)
    with pytest.raises(ConfigError):
        solve_euler_collocation(InvestmentConfig(n_households=3), n_k=21)


def test_vfi_deterministic_limit_is_the_steady_state():
    cfg = InvestmentConfig(tfp_values=(1.0,))
    sol = solve_vfi(cfg, n_k=101)
    k_star = corrected_k(1, 1)
    assert sol.fixed_point(0) == pytest.approx(k_star, rel=1e-8)
    # Known value at the steady state: u(C*) / (1 - beta) with C* = K*^alpha - phi/2 (delta K*)^2.
    c_star = k_star**cfg.alpha - 0.5 * cfg.phi * (cfg.delta * k_star) ** 2
    assert sol.value(k_star, 0).item() == pytest.approx(math.log(c_star) / (1 - cfg.beta), abs=1e-8)
    assert sol.saving_share(k_star, 0).item() == pytest.approx(
        0.5 * cfg.phi * (cfg.delta * k_star) ** 2 / k_star**cfg.alpha, rel=1e-7
    )
    paths = simulate_paths(sol, cfg, 50, 3, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(paths["capital"].numpy(), k_star, rtol=1e-8)


def test_vfi_bellman_residual_small(stochastic, ergodic):
    cfg, sol, _ = stochastic
    assert sol.bellman_residual < 1e-9
    # Off the grid: V(K, z) = u(C) + beta sum_z' P[z, z'] V(K', z') with V evaluated by the solution itself.
    k, z = ergodic[0][::7], ergodic[1][::7]
    k_next = sol.next_capital(k, z)
    s = sol.n_states
    v_next = sol.value(k_next[:, None].expand(-1, s), torch.arange(s).expand(k.shape[0], s))
    rhs = torch.log(sol.consumption(k, z)) + cfg.beta * (sol.transition[z] * v_next).sum(1)
    gap = (sol.value(k, z) - rhs).abs().max().item()
    assert gap < 1e-8
    # In consumption units that is far below the 0.1% used for welfare comparisons.
    assert consumption_equivalent(0.0, gap, beta=cfg.beta, crra=cfg.crra).item() < 1e-9


def test_vfi_euler_errors_small(stochastic, ergodic):
    _, sol, _ = stochastic
    err = euler_errors(sol, *ergodic).abs()
    assert err.max().item() < 2e-8  # n_k = 201; measured 8e-9 (docs/steady_state.md)


def test_vfi_and_euler_collocation_agree(stochastic, ergodic):
    _, vfi, coll = stochastic
    k, z = ergodic
    assert coll.residual < 1e-11
    assert euler_errors(coll, k, z).abs().max().item() < 1e-8
    gap = ((vfi.next_capital(k, z) - coll.next_capital(k, z)) / k).abs().max().item()
    assert gap < 1e-9
    np.testing.assert_allclose(vfi.saving_share(k, z).numpy(), coll.saving_share(k, z).numpy(), rtol=1e-7)


def test_vfi_grid_refinement_changes_little(stochastic, ergodic):
    cfg, fine, _ = stochastic
    coarse = solve_vfi(cfg, n_k=101)
    k, z = ergodic
    assert ((coarse.next_capital(k, z) - fine.next_capital(k, z)) / k).abs().max().item() < 1e-8
    lam = consumption_equivalent(fine.value(k, z), coarse.value(k, z), beta=cfg.beta, crra=cfg.crra)
    assert lam.abs().max().item() < 1e-9


def test_simulation_reproducible_and_moments_consistent(stochastic):
    cfg, vfi, coll = stochastic
    m1 = simulate(vfi, cfg, 200, 50, torch.Generator().manual_seed(7), burn_in=100)
    m2 = simulate(vfi, cfg, 200, 50, torch.Generator().manual_seed(7), burn_in=100)
    assert m1 == m2
    m3 = simulate(coll, cfg, 200, 50, torch.Generator().manual_seed(7), burn_in=100)
    for key, val in m1.items():
        assert m3[key] == pytest.approx(val, rel=1e-7, abs=1e-12), key
    # Resource constraint on average: C + phi/2 I^2 = Y, and K's mean is near the steady state.
    paths = simulate_paths(vfi, cfg, 100, 20, torch.Generator().manual_seed(1))
    np.testing.assert_allclose(
        (paths["consumption"] + 0.5 * cfg.phi * paths["investment"] ** 2).numpy(), paths["output"].numpy(), rtol=1e-12
    )
    assert m1["mean_capital"] == pytest.approx(corrected_k(1, 1), rel=0.02)
    # The marginal cost phi I is zero at I = 0, so the irreversibility corner never binds.
    assert m1["corner_share"] == 0.0


def test_market_collocation_one_household():
    cfg = InvestmentConfig(formulation="market", tfp_values=(1.0,))
    sol = solve_euler_collocation(cfg, n_k=31)
    k_star = corrected_k(1, 1)
    assert sol.next_capital(k_star, 0).item() == pytest.approx(k_star, rel=1e-9)
    # Market spending p I = phi (delta K)^2 is twice the planner's: firms' profits are not rebated.
    st = steady_state(cfg)
    assert sol.saving_share(k_star, 0).item() == pytest.approx(st.saving_share[0, 0], rel=1e-8)


def test_consumption_equivalent_known_answers():
    beta = 0.98
    for sigma in (1.0, 2.0, 0.5):
        c = 2.3

        def v(cons, sigma=sigma):
            u = math.log(cons) if sigma == 1.0 else (cons ** (1 - sigma) - 1) / (1 - sigma)
            return u / (1 - beta)

        assert consumption_equivalent(v(c), v(1.001 * c), beta=beta, crra=sigma).item() == pytest.approx(0.001)
