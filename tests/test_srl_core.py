"""Structural-RL core: discretisation, lottery, clearing, gradients, determinism.

Each test checks numbers against an independent computation: closed-form AR(1)
moments, a direct sum over the distribution, a linear excess-supply function
with a known root, finite differences, a second code path.
"""

from __future__ import annotations

import math

import pytest
import torch

from abm_markets.srl import grids
from abm_markets.srl.huggett import HuggettConfig, HuggettModel
from abm_markets.srl.solver import (
    SRLConfig,
    interp_axis1,
    policy_gradient,
    rollout,
    simulate_markov,
    solve,
)


def _chain_moments(x: torch.Tensor, P: torch.Tensor) -> tuple[float, float, float]:
    pi = grids.stationary_distribution(P)
    mean = float(pi @ x)
    var = float(pi @ (x - mean) ** 2)
    cov = float(((pi[:, None] * P) * torch.outer(x - mean, x - mean)).sum())
    return mean, var, cov / var


@pytest.mark.parametrize("n", [2, 3, 7])
def test_rouwenhorst_matches_ar1_moments(n: int) -> None:
    rho, sigma, mu = 0.9, 0.02, 0.3
    x, P = grids.rouwenhorst(n, rho, sigma, mu)
    assert torch.allclose(P.sum(1), torch.ones(n, dtype=P.dtype))
    mean, var, ac = _chain_moments(x, P)
    assert mean == pytest.approx(mu, abs=1e-12)
    assert var == pytest.approx(sigma**2 / (1 - rho**2), rel=1e-10)
    assert ac == pytest.approx(rho, abs=1e-10)


def test_tauchen_approximates_ar1() -> None:
    x, P = grids.tauchen(41, 0.6, 0.2, m=4.0)
    mean, var, ac = _chain_moments(x, P)
    assert mean == pytest.approx(0.0, abs=1e-12)
    assert var == pytest.approx(0.2**2 / (1 - 0.36), rel=0.03)
    assert ac == pytest.approx(0.6, abs=0.01)


def test_lottery_push_forward_conserves_mass_and_mean() -> None:
    g = torch.Generator().manual_seed(3)
    grid = grids.asset_grid(-1.0, 20.0, 60, dtype=torch.float64)
    B, nb, ny = 5, 60, 3
    dist = torch.rand(B, nb, ny, generator=g, dtype=torch.float64)
    dist = dist / dist.sum(dim=(1, 2), keepdim=True)
    b_next = -1.0 + 21.0 * torch.rand(B, nb, ny, generator=g, dtype=torch.float64)
    _, P = grids.rouwenhorst(ny, 0.6, 0.2)
    for power in (None, 2.0):
        j, w = grids.lottery(b_next, grid, power=power)
        new = grids.push_forward(dist, j, w, P)
        # direct computation: total mass, E[b'] = sum g(b, y) b'(b, y), income marginal = marginal @ P
        assert torch.allclose(new.sum(dim=(1, 2)), torch.ones(B, dtype=torch.float64), atol=1e-13)
        direct_mean = (dist * b_next).sum(dim=(1, 2))
        assert torch.allclose((new * grid[None, :, None]).sum(dim=(1, 2)), direct_mean, atol=1e-12)
        assert torch.allclose(new.sum(1), dist.sum(1) @ P, atol=1e-13)
    # the analytic bracket of the power grid reproduces the binary search
    j1, w1 = grids.lottery(b_next, grid)
    j2, w2 = grids.lottery(b_next, grid, power=2.0)
    assert torch.allclose(grid[j1] + w1 * (grid[j1 + 1] - grid[j1]), grid[j2] + w2 * (grid[j2 + 1] - grid[j2]))


def test_clear_on_grid_finds_root_of_linear_excess_supply() -> None:
    p = torch.linspace(1.0, 2.0, 11, dtype=torch.float64)
    roots = torch.tensor([1.234, 1.95, 1.0001, 3.0, 0.5], dtype=torch.float64)
    excess = 2.0 * (p[None, :] - roots[:, None])
    clr = grids.clear_on_grid(excess, p)
    assert torch.allclose(clr.price[:3], roots[:3], atol=1e-12)
    assert clr.bracketed.tolist() == [True, True, True, False, False]
    assert clr.price[3] == 2.0 and clr.price[4] == 1.0  # no root on the grid: the end with the smaller |excess|


def test_interp_axis1_matches_manual_interpolation() -> None:
    x = torch.arange(2 * 5 * 3, dtype=torch.float64).reshape(2, 5, 3) ** 1.5
    j = torch.tensor([1, 3])
    w = torch.tensor([0.25, 0.9], dtype=torch.float64)
    out = interp_axis1(x, j, w)
    manual = torch.stack([(1 - w[n]) * x[n, j[n]] + w[n] * x[n, j[n] + 1] for n in range(2)])
    assert torch.allclose(out, manual)


def test_simulate_markov_transition_frequencies() -> None:
    _, P = grids.rouwenhorst(3, 0.6, 0.2)
    z = simulate_markov(P, torch.zeros(4000, dtype=torch.long), 50, torch.Generator().manual_seed(1))
    a, b = z[:, :-1].reshape(-1), z[:, 1:].reshape(-1)
    counts = torch.zeros(3, 3, dtype=torch.float64).index_put_((a, b), torch.ones_like(a, dtype=torch.float64), True)
    freq = counts / counts.sum(1, keepdim=True)
    assert torch.allclose(freq, P, atol=0.01)


def _tiny(equilibrium: str, n_lags: int = 0) -> HuggettModel:
    cfg = HuggettConfig(
        equilibrium=equilibrium,
        n_assets=25,
        asset_max=8.0,
        n_income=2,
        n_tfp=2 if equilibrium == "general" else 1,
        n_r=3,
        n_prices=6,
        n_lags=n_lags,
    )
    return HuggettModel(cfg, dtype=torch.float64)


@pytest.mark.parametrize("equilibrium", ["partial", "general"])
def test_policy_gradient_matches_finite_differences(equilibrium: str) -> None:
    """Taped gathers + price taking: gradient = d/dtheta of the objective with prices held at their path."""
    model = _tiny(equilibrium)
    dev, dt = torch.device("cpu"), torch.float64
    g = torch.Generator().manual_seed(0)
    theta = model.init_params(dev, dt)["savings_logit"]
    # move choices off the grid points (the lottery has kinks there, where finite differences are one-sided)
    theta = theta + 0.1 * torch.randn(theta.shape, generator=g, dtype=dt)
    N, T = 3, 8
    dist0 = model.initial_distribution(N, "random", g, dev, dt)
    z = simulate_markov(model.agg_transition, torch.zeros(N, dtype=torch.long), T, g)
    tables = {"savings_logit": theta.clone().requires_grad_(True)}
    roll = rollout(model, tables, z, dist0, model.initial_carry(N, z[:, 0], dev, dt))
    grad = policy_gradient(roll, tables, model.param_groups())["savings_logit"]

    # finite differences with the price path frozen at the baseline (households take prices as given)
    with torch.no_grad():
        base = rollout(model, {"savings_logit": theta}, z, dist0, model.initial_carry(N, z[:, 0], dev, dt))
    r_path = base.logs["r"] + 1.0

    def objective(th: torch.Tensor) -> float:
        dist, total = dist0, torch.zeros(N, dtype=dt)
        for t in range(T):
            R = r_path[:, t]
            if model.partial:
                share = torch.sigmoid(th[z[:, t]])
            else:  # the policy interpolates saving shares linearly between grid prices
                j, w = grids.interp_weights(R, model.price_grid)
                share = interp_axis1(torch.sigmoid(th[z[:, t]]), j, w)
            income = (model.Z[z[:, t]][:, None] * model.y[None, :])[:, None, :]
            x = R.view(-1, 1, 1) * model.b[:, None] + income
            bn = torch.clamp(model.b_lim + share * (x - model.b_lim), max=model.b_max)
            total = total + model.beta**t * (dist * model.utility(x - bn)).sum(dim=(1, 2))
            jj, ww = grids.lottery(bn, model.b, power=model.cfg.grid_power)
            dist = grids.push_forward(dist, jj, ww, model.Py)
        return float(total.mean())

    flat_grad = -grad.reshape(-1)
    idx = torch.argsort(flat_grad.abs(), descending=True)[:6]
    eps = 1e-6
    for k in idx.tolist():
        tp, tm = theta.clone().reshape(-1), theta.clone().reshape(-1)
        tp[k] += eps
        tm[k] -= eps
        fd = (objective(tp.reshape(theta.shape)) - objective(tm.reshape(theta.shape))) / (2 * eps)
        assert fd == pytest.approx(float(flat_grad[k]), rel=1e-4, abs=1e-9)


def test_solve_is_deterministic_for_a_seed() -> None:
    model = _tiny("general")
    cfg = SRLConfig(n_paths=4, horizon=12, tail=4, max_epochs=6, warmup_epochs=2, min_epochs=0, dtype="float64")
    a = solve(model, cfg, generator=torch.Generator().manual_seed(11))
    b = solve(model, cfg, generator=torch.Generator().manual_seed(11))
    c = solve(model, cfg, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a.params["savings_logit"], b.params["savings_logit"])
    assert [h["objective_household"] for h in a.history] == [h["objective_household"] for h in b.history]
    assert not torch.equal(a.params["savings_logit"], c.params["savings_logit"])
    assert all(math.isfinite(h["update"]) for h in a.history)
