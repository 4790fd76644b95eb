"""HANK for structural RL: calibration, market clearing and the firms' Phillips-curve gradient."""

from __future__ import annotations

import pytest
import torch

from abm_markets.srl.hank import HANKEconomyConfig, HANKModel, simulate_path
from abm_markets.srl.solver import PeriodInput

SMALL = {"n_b": 50, "n_R": 7, "n_w": 7}


@pytest.fixture(scope="module")
def model():
    return HANKModel(HANKEconomyConfig(**SMALL), dtype=torch.float64)


def test_calibrated_steady_state_clears_bond_and_goods_markets(model):
    """beta is calibrated so that stationary bond demand is B at R_ss; goods then clear by Walras' law."""
    cfg = model.cfg
    g = model.dist_ss
    assert float((g.sum(1) * model.b).sum()) == pytest.approx(cfg.bond_supply, rel=1e-5)
    assert 0.9 < model.beta < 1 / cfg.R_ss
    # independent goods-market check at the steady state: C = Y with Pi = 0, w = m*, N = 1
    w = torch.tensor(model.m_star, dtype=torch.float64)
    n, N = model.labour(w)
    assert float(N) == pytest.approx(1.0, abs=1e-12)
    y, Y, _ = model.income(torch.tensor(cfg.R_ss, dtype=torch.float64), w, torch.zeros((), dtype=torch.float64))
    x = cfg.R_ss * model.b[:, None] + y
    c = x - model.b_next_ss + cfg.frisch / (1 + cfg.frisch) * w * model.e * n
    assert float((g * c).sum()) == pytest.approx(float(Y), abs=1e-5)


def test_markets_clear_on_the_price_grid_from_the_steady_state(model):
    """Initial policies, 30 periods from the steady state at the middle shock: Taylor rule and bond
    market clear. (Path 0 also takes a contractionary shock at t = 10, which the untrained policies
    cannot absorb within the wage grid; only accounting and the rate are checked on it.)"""
    params = model.init_params(model.device, model.dtype)
    m_path = torch.tensor([[1] * 10 + [2] + [1] * 20, [1] * 31])
    logs, dists = simulate_path(model, params, m_path, model.dist_ss.expand(2, -1, -1).contiguous())
    assert bool((logs["bracketed"][1] == 1).all())
    assert float(logs["resid_bond"][1].abs().max()) < 5e-3 * model.cfg.bond_supply
    assert float(logs["resid_taylor"][1].abs().max()) < 1e-8
    # Walras' law: C + B' = R B_t + Y (1 - theta/2 Pi^2) - (R - 1) B, so that
    # resid_goods + resid_bond = R (B_t - B) with B_t the bonds held at the start of the period
    held = (dists[:, 1:-1].sum(3) * model.b).sum(2) - model.cfg.bond_supply
    gap = logs["resid_goods"][:, 1:] + logs["resid_bond"][:, 1:]
    assert float((gap - logs["R"][:, 1:] * held).abs().max()) < 1e-8
    # the contractionary shock raises the real rate on impact
    assert float(logs["R"][0, 10]) > float(logs["R"][1, 10])


@pytest.mark.parametrize("interpolation", ["savings", "share"])
def test_interpolating_savings_clears_the_bond_market_exactly(interpolation):
    """With a rough saving-share table (as after learning), interpolating b' between the price-grid
    corners clears the bond market on the interpolated supply curve exactly (float64 rounding);
    interpolating the share leaves a residual of second order in the grid spacing."""
    m = HANKModel(HANKEconomyConfig(**SMALL, policy_interpolation=interpolation), dtype=torch.float64)
    params = m.init_params(m.device, m.dtype)
    gen = torch.Generator().manual_seed(0)
    params["savings_logit"] = params["savings_logit"] + 0.3 * torch.randn(
        params["savings_logit"].shape, generator=gen, dtype=torch.float64
    )
    params["inflation"] = 0.05 * torch.randn(params["inflation"].shape, generator=gen, dtype=torch.float64)
    logs, _ = simulate_path(m, params, torch.ones(1, 21, dtype=torch.long), m.dist_ss[None])
    assert bool((logs["bracketed"] == 1).all())
    resid = float(logs["resid_bond"].abs().max())
    if interpolation == "savings":
        assert resid < 1e-10
        assert float(logs["resid_goods"][:, 1:].abs().max()) < 1e-10  # Walras
    else:
        assert resid > 1e-4


def test_firm_gradient_is_the_rotemberg_first_order_condition(model):
    """d(firm payoff)/d(table) by autograd equals the Rotemberg FOC terms times d x_t / d table.

    For a two-period rollout the derivative of ``sum_t D_t payoff_t`` with respect to the own
    log relative price ``x_0`` is ``D_0 Y_0 [(1-eps) + eps w_0 - theta Pi_0 (1+Pi_0)]
    + D_1 Y_1 theta Pi_1 (1+Pi_1)`` (and the period-1 terms for ``x_1``).
    """
    cfg = model.cfg
    params = model.init_params(model.device, model.dtype)
    params["inflation"] = 0.3 * torch.randn(params["inflation"].shape, generator=torch.Generator().manual_seed(0),
                                            dtype=torch.float64)  # fmt: skip
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    prep = model.prepare(params)
    dist = model.dist_ss[None]
    carry = model.initial_carry(1, None, model.device, model.dtype)
    mi = torch.tensor([1])
    total = 0.0
    facts = []
    for t in range(2):
        out = model.period(PeriodInput(t, mi, mi, dist, carry, params, prep))
        total = total + model.beta**t * out.reward["firm"]
        _, w, corners, _ = model.clear(dist.detach(), mi, prep)
        facts.append((out.log["Pi"], out.log["Y"], w, out.carry["disc"], corners))
        dist, carry = out.dist_next, dict(out.carry)
    (grad,) = torch.autograd.grad(total.sum(), params["inflation"])
    eps, theta = cfg.epsilon, cfg.theta
    expect = torch.zeros_like(grad).reshape(-1)
    for t, (Pi, Y, w, D, corners) in enumerate(facts):
        dpay = D * Y * ((1 - eps) + eps * w - theta * Pi * (1 + Pi))
        if t == 0:
            Pi1, Y1, _, D1, _ = facts[1]
            dpay = dpay + D1 * Y1 * theta * Pi1 * (1 + Pi1)
        for i, j, wt in corners:
            cell = (mi * cfg.n_R + i) * cfg.n_w + j
            expect.index_add_(0, cell, dpay * wt * cfg.firm_scale / (1 + Pi))
    assert torch.allclose(grad.reshape(-1), expect, rtol=1e-6, atol=1e-10)
    assert float(expect.abs().max()) > 1e-3  # not a vacuous comparison


def test_hank_srl_scenario_smoke(tmp_path):
    """The scenario runs end to end on a tiny grid and reports residuals, Phillips curve and impulse responses."""
    import json

    from abm_markets.runner import run_scenario

    out = run_scenario(
        "hank-srl",
        overrides={
            **SMALL, "max_epochs": 3, "min_epochs": 0, "warmup_epochs": 1, "horizon": 20, "tail": 5, "n_paths": 4,
            "eval_paths": 2, "eval_periods": 10, "eval_burn_in": 5, "irf_periods": 5, "irf_burn_in": 5, "irf_paths": 8,
            "pc_periods": 5,
        },
        out=tmp_path / "run",
        progress=False,
    )  # fmt: skip
    s = json.loads((out / "summary.json").read_text())
    for key in ("converged", "epochs", "wall_s", "resid_bond_max", "resid_goods_max", "resid_taylor_max",
                "pc_resid_mean_abs", "irf_R_impact_bp", "irf_Pi_impact_bp"):  # fmt: skip
        assert key in s
    assert s["resid_taylor_max"] < 1e-4
    # the comparison with sequence-space Jacobians (docs/irf_ssj.md), or the reason it was skipped
    assert ("irf_gap_vs_ssj_pct" in s) != ("irf_vs_ssj_skipped" in s)
    assert s["irf_shock_m"] > 0  # the impulse is the top (contractionary) state of the shock chain
    assert (out / "plots" / "hank_irf.png").exists()
