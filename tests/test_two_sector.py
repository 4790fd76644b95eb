"""Seed 001's two-sector model: the closed-form steady state (prices from the households' and firms' conditions)
against the planner's steady state found by a root search on the planner's first-order conditions (marginal
products by autograd of the two production functions, no prices), for the seed's calibration and others; the
budget and market clearing; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import optimize

from abm_markets.cli import main
from abm_markets.solvers.two_sector import TwoSectorConfig, steady_state


def _planner(cfg: TwoSectorConfig) -> dict[str, float]:
    def produce(z: float, a: float, k: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        return z * k**a * n ** (1 - a)

    def parts(x: np.ndarray):
        v = torch.tensor(np.exp(x), dtype=torch.float64, requires_grad=True)
        kc, kx, lc, lx = v
        yc, yx = produce(cfg.z_c, cfg.alpha_c, kc, lc), produce(cfg.z_x, cfg.alpha_x, kx, lx)
        (gc,) = torch.autograd.grad(yc, v, retain_graph=True)
        (gx,) = torch.autograd.grad(yx, v)
        return v.detach().numpy(), float(yc.detach()), float(yx.detach()), gc.numpy(), gx.numpy()

    def residuals(x: np.ndarray) -> np.ndarray:
        (kc, kx, lc, lx), yc, yx, gc, gx = parts(x)
        labour = lc + lx
        return np.array(
            [
                cfg.beta * (gx[1] + 1 - cfg.delta) - 1.0,  # Euler, capital valued in investment goods
                gc[0] / gx[1] - gc[2] / gx[3],  # equal rates of transformation of capital and of labour
                cfg.chi * labour ** (1 / cfg.eta) * yc / gc[2] - 1.0,  # labour supply: chi L^(1/eta) = MPL_c / C
                yx / (cfg.delta * (kc + kx)) - 1.0,  # investment replaces depreciation
            ]
        )

    sol = optimize.root(residuals, np.log([1.0, 1.0, 0.5, 0.2]), method="hybr", tol=1e-13)
    assert np.max(np.abs(residuals(sol.x))) < 1e-12, sol.message
    (kc, kx, lc, lx), yc, _, gc, gx = parts(sol.x)
    return {
        "capital": kc + kx,
        "labour": lc + lx,
        "consumption": yc,
        "price_investment": gc[0] / gx[1],
        "rental_rate": gc[0],
        "wage": gc[2],
        "capital_investment_sector": kx,
    }


@pytest.mark.parametrize(
    "changes",
    [{}, {"eta": 0.5, "chi": 2.0}, {"alpha_c": 0.4, "alpha_x": 0.25, "z_x": 1.3}, {"beta": 0.99, "delta": 0.025}],
)
def test_closed_form_steady_state_against_the_planners_first_order_conditions(changes: dict[str, float]) -> None:
    cfg = TwoSectorConfig(**changes)
    ss = steady_state(cfg)
    ref = _planner(cfg)
    for key, value in ref.items():
        assert getattr(ss, key) == pytest.approx(value, rel=1e-9), key
    # the household's budget holds and the goods and factor markets clear
    assert ss.consumption + ss.price_investment * ss.investment == pytest.approx(
        ss.rental_rate * ss.capital + ss.wage * ss.labour, rel=1e-12
    )
    assert ss.capital_consumption_sector + ss.capital_investment_sector == pytest.approx(ss.capital, rel=1e-14)
    assert ss.labour_consumption_sector + ss.labour_investment_sector == pytest.approx(ss.labour, rel=1e-14)


def test_steady_state_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["steady-state", "two-sector", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("capital", "labour", "price_investment", "rental_rate", "wage", "consumption"):
        assert data[key] > 0
    assert data["capital"] == pytest.approx(steady_state().capital)
    assert main(["steady-state", "two-sector", "--set", "alpha_x=1.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "alpha_x" in err
