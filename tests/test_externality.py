"""Steady states and perfect-foresight paths of the investment economy with an aggregate production externality,
against searches that do not use the solver's formulas.

* the steady states (price takers and households who know their price impact): the households' Euler equation with
  the price and the own price impact measured through the engine's Walrasian market, the marginal product by
  autograd of the engine's technology (mean capital detached, as households take it as given), a sign-change scan
  and Brent's method;
* the engine's externality, by simulating the economy with households who spend the competitive steady-state share:
  both outer steady states are its rest points and the middle one divides their basins;
* perfect-foresight paths by two methods: the stable manifold traced backwards and Newton's method on the stacked
  Euler equations agree on which steady states are reachable from where and on the first step; the stable root of
  the linearisation is the rate at which the Newton path converges.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from _market_vfi import euler_gap
from scipy import optimize

from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.engine.investment_groups import steady_state_spending_share
from abm_markets.engine.technology import externality, output
from abm_markets.solvers import externality as ex

T = torch.float64
CFG = ex.default_config()


def _mpk(cfg, k: float) -> float:
    """dY_i / dK_i of one household at the symmetric state K (all households at k), by autograd of the engine's
    technology with mean capital detached."""
    cap = torch.full((1, cfg.n_households, 1), k, dtype=T, requires_grad=True)
    ext = externality(cap, cfg.externality_high, cfg.externality_threshold, cfg.externality_width)
    y = output(cap, torch.ones(1, cfg.n_households, dtype=T), cfg.alpha) * ext.unsqueeze(-1)
    (g,) = torch.autograd.grad(y[0, 0], cap)
    return float(g[0, 0, 0])


def _euler_gap(cfg, k: float, own_impact: bool) -> float:
    return euler_gap(cfg, k, own_impact, _mpk(cfg, k))


@pytest.mark.parametrize("strategic", [False, True])
def test_steady_states_against_the_engine_euler_search(strategic: bool) -> None:
    grid = np.linspace(4.0, 14.0, 101)
    gap = np.array([_euler_gap(CFG, k, strategic) for k in grid])
    found = [
        optimize.brentq(lambda k: _euler_gap(CFG, k, strategic), grid[i], grid[i + 1], xtol=1e-12)
        for i in np.flatnonzero(np.sign(gap[:-1]) != np.sign(gap[1:]))
    ]
    info = ex.steady_states(CFG, strategic)
    assert len(found) == len(info) == 3
    for k, s in zip(found, info, strict=True):
        assert s.capital == pytest.approx(k, rel=1e-6)
    assert [s.kind for s in info] == ["saddle", "source", "saddle"]
    # the buyer-side steady states: outer ones below the price takers', the middle one above (A rises there)
    if strategic:
        comp = ex.steady_states(CFG, False)
        assert info[0].capital < comp[0].capital and info[2].capital < comp[2].capital
        assert info[1].capital > comp[1].capital


def test_the_engine_economy_has_the_outer_steady_states_as_rest_points_and_the_middle_one_as_divide() -> None:
    """Households spending the competitive steady-state share c delta alpha of output: their rest points are the
    price takers' steady states (the share is the same at every one of them)."""
    ks = [s.capital for s in ex.steady_states(CFG)]
    eco = InvestmentEconomy(CFG)
    share = steady_state_spending_share(CFG)
    starts = torch.tensor([ks[0], ks[2], ks[1] * 0.99, ks[1] * 1.01, 4.0, 14.0], dtype=T)
    state = eco.initial_state(starts.numel())
    state = dataclasses.replace(state, capital=starts.view(-1, 1, 1).expand(-1, CFG.n_households, 1).clone())
    a = torch.full((starts.numel(), CFG.n_households, 1), share, dtype=T)
    first = None
    for t in range(3000):
        state, _ = eco.step(state, {"households": a})
        if t == 0:
            first = state.capital[:2, 0, 0].clone()
    end = state.capital[:, 0, 0]
    assert first[0] == pytest.approx(ks[0], rel=1e-9) and first[1] == pytest.approx(ks[2], rel=1e-9)
    np.testing.assert_allclose(end.numpy(), [ks[0], ks[2], ks[0], ks[2], ks[0], ks[2]], rtol=1e-4)


def test_perfect_foresight_paths_by_the_stable_manifold_and_by_newton_agree() -> None:
    model = ex.ExternalityModel(CFG)
    pf = ex.perfect_foresight(CFG, samples=8)
    info = pf.steady_states
    k_low, k_mid, k_high = (s.capital for s in info)
    # history decides at this calibration: the middle steady state is a source with real roots
    assert pf.overlap is None
    assert pf.reach["low"][1] == pytest.approx(k_mid, rel=1e-6)
    assert pf.reach["high"][0] == pytest.approx(k_mid, rel=1e-6)
    targets = {"low": k_low, "high": k_high}
    for k0 in (4.0, 7.0, 7.6, 7.95, 9.0, 13.0):
        reach = pf.reachable(k0)
        assert len(reach) == 1
        for name, k_star in targets.items():
            path = ex.shooting_path(model, k0, k_star, periods=400)
            assert (path is not None) == (name in reach), (k0, name)
            if path is None:
                continue
            m = pf.manifolds[name]
            side = m["branch"] == (1.0 if k0 > k_star else -1.0)
            order = np.argsort(m["k"][side])
            k1 = np.interp(k0, m["k"][side][order], m["k_next"][side][order])
            assert path[1] == pytest.approx(k1, rel=1e-5), (k0, name)
            # the path converges at the stable root of the linearisation
            mu = min(abs(z) for z in model.eigenvalues(k_star))
            t = 150
            rate = (path[t + 1] - k_star) / (path[t] - k_star)
            assert rate == pytest.approx(mu, rel=1e-3)


def test_cli_prints_the_steady_states_and_rejects_bad_input(tmp_path) -> None:
    import json

    run = subprocess.run(
        [sys.executable, "-m", "abm_markets", "steady-state", "investment-externality", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(run.stdout)
    assert [round(s["capital"], 6) for s in data["steady_states"]] == [
        round(s.capital, 6) for s in ex.steady_states(CFG)
    ]
    assert [s["stability"] for s in data["steady_states_strategic"]][1] == "unstable"
    assert data["perfect_foresight"]["overlap"] is None
    bad = subprocess.run(
        [sys.executable, "-m", "abm_markets", "steady-state", "investment-externality", "--set", "formulation=planner"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "externality_high" in bad.stderr and not bad.stdout
    assert math.isfinite(data["steady_states"][0]["price"])
