"""HANK against sequence-space Jacobians: SSJ's steady state, its responses and the gap measure.

The oracle (:mod:`abm_markets.solvers.hank_ssj`) solves the project's HANK calibration with
``sequence-jacobian``; these tests check it against the project's own steady state, against
accounting it does not target, and check that the comparison fails wrong answers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

pytest.importorskip("sequence_jacobian")

from abm_markets.scenarios.ks_hank import _hank_vs_ssj
from abm_markets.solvers.hank_ssj import VARIABLES, hank_ssj, shock_chain
from abm_markets.solvers.transition import irf_gap_pct
from abm_markets.srl.hank import HANKEconomyConfig, HANKModel

COARSE = {"n_b": 50, "n_R": 7, "n_w": 7}
SMALL_SHOCK = 1e-4


@pytest.fixture(scope="module")
def cfg():
    return HANKEconomyConfig(**COARSE)


@pytest.fixture(scope="module")
def ssj(cfg):
    m_top, _ = shock_chain(cfg)
    return hank_ssj(cfg, T=200, nonlinear_shocks=(SMALL_SHOCK, -SMALL_SHOCK, m_top))


def test_shock_chain_is_the_ar1_of_the_config(cfg):
    """Rouwenhorst keeps E[m' | m] = rho_m m; the top state is sqrt(n - 1) sd / sqrt(1 - rho^2)."""
    m_top, rho = shock_chain(cfg)
    assert rho == pytest.approx(cfg.rho_m, abs=1e-12)
    assert m_top == pytest.approx(math.sqrt(cfg.n_m - 1) * cfg.sd_m / math.sqrt(1 - cfg.rho_m**2), rel=1e-12)


def test_ssj_steady_state_is_the_projects(cfg, ssj):
    """SSJ calibrates beta and w itself; the project calibrates beta by EGM + bisection and sets w = m*."""
    model = HANKModel(cfg, dtype=torch.float64)
    ss = ssj.steady
    assert ss["beta"] == pytest.approx(model.beta, abs=2e-7)  # the project's bisection tolerance is 1e-7
    assert ss["w"] == pytest.approx(model.m_star, abs=1e-9)
    assert ss["R"] == pytest.approx(cfg.R_ss, abs=1e-12)
    assert ss["Y"] == pytest.approx(1.0, abs=1e-9)
    assert abs(ss["asset_mkt"]) < 1e-8
    # the project's consumption at its own stationary policy, summed independently of SSJ
    w = torch.tensor(model.m_star, dtype=torch.float64)
    n, _ = model.labour(w)
    y, Y, _ = model.income(torch.tensor(cfg.R_ss, dtype=torch.float64), w, torch.zeros((), dtype=torch.float64))
    k = cfg.R_ss * model.b[:, None] + y - model.b_next_ss
    C = float((model.dist_ss * (k + cfg.frisch / (1 + cfg.frisch) * w * model.e * n)).sum())
    assert ss["C"] == pytest.approx(C, abs=1e-5)
    assert ss["C"] == pytest.approx(float(Y), abs=1e-6)  # Walras' law in SSJ's own steady state


def test_ssj_responses_obey_accounting_they_do_not_target(cfg, ssj):
    """Targets are the bond market and the Phillips curve; goods clear (Walras) and the Taylor rule holds."""
    lin = ssj.linear
    peak = np.abs(lin["Y"][:20]).max()
    assert np.abs(lin["C"] - lin["Y"]).max() < 1e-4 * peak  # dC = dY to first order (Pi_ss = 0)
    taylor = cfg.R_ss * (cfg.phi_pi * lin["Pi"] + ssj.rho_m ** np.arange(len(lin["R"])))
    assert np.abs(lin["R"] - taylor).max() < 1e-10
    assert np.abs(lin["A"]).max() < 1e-8  # constant real debt
    # a contractionary shock: the rate rises, inflation, output and the wage fall on impact
    assert lin["R"][0] > 0 and lin["Pi"][0] < 0 and lin["Y"][0] < 0 and lin["w"][0] < 0


def test_ssj_first_order_agrees_with_its_own_nonlinear_transition_at_a_small_shock(ssj):
    """Fake-news Jacobians against SSJ's Newton transition at +-1e-4 (central differences cancel the
    second-order term and the ~2e-7 drift of the zero-shock path from SSJ's steady-state tolerances;
    measured 0.03 %)."""
    up, down = ssj.nonlinear[SMALL_SHOCK], ssj.nonlinear[-SMALL_SHOCK]
    central = {k: torch.as_tensor((up[k] + down[k]) / 2) for k in VARIABLES}
    linear = {k: torch.as_tensor(v) for k, v in ssj.linear.items()}
    assert irf_gap_pct(central, linear, variables=VARIABLES)["max"] < 0.1
    # at the chain's top state (+44 bp) the economy is visibly nonlinear
    top = {k: torch.as_tensor(v) for k, v in ssj.nonlinear[ssj.m_top].items()}
    assert 3.0 < irf_gap_pct(top, linear, variables=VARIABLES)["max"] < 30.0


def test_gap_measure_fails_wrong_responses(cfg, ssj):
    """The scenario's comparison: SSJ's own response passes, a late one and a wrong persistence fail."""
    m0 = ssj.m_top
    T = 20

    def as_srl(path):
        irf = {k: m0 * np.asarray(path[k][:T]) for k in VARIABLES}
        irf["m"] = m0 * ssj.rho_m ** np.arange(T)
        return irf

    _, good = _hank_vs_ssj(cfg, as_srl(ssj.linear), m0)
    assert good["irf_gap_vs_ssj_pct"] < 0.01  # the scenario truncates at T = 300, this fixture at 200
    late = {k: np.concatenate([[0.0], v[:-1]]) for k, v in ssj.linear.items()}
    _, bad = _hank_vs_ssj(cfg, as_srl(late), m0)
    assert bad["irf_gap_vs_ssj_pct"] > 50
    wrong_rho = hank_ssj(HANKEconomyConfig(**COARSE, rho_m=0.5), T=200)
    _, bad = _hank_vs_ssj(cfg, as_srl(wrong_rho.linear), m0)
    assert bad["irf_gap_vs_ssj_pct"] > 10


def test_comparison_is_skipped_with_a_reason_without_the_package(cfg, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "sequence_jacobian" else real(n, *a))
    ssj, entries = _hank_vs_ssj(cfg, {}, 0.0044)
    assert ssj is None and "irf_gap_vs_ssj_pct" not in entries
    assert "sequence_jacobian" in entries["irf_vs_ssj_skipped"]
