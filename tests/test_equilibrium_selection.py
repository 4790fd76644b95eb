"""Coordination game: closed-form equilibria vs enumeration; learners' selection; scenario outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from abm_markets.errors import ConfigError
from abm_markets.learn.tabular_games import KINDS, run_game_sessions
from abm_markets.runner import run_scenario
from abm_markets.solvers import coordination as co

GAME = co.CoordinationGame()


def test_closed_form_equilibria_are_fixed_points_and_pareto_ranked() -> None:
    eq = co.symmetric_equilibria(GAME)
    for e in eq.values():
        assert co.theta(e, GAME) == pytest.approx(e, abs=1e-14)
    # theta(e) - e changes sign only at the three closed-form points (fine grid scan).
    e = np.linspace(GAME.e_low + 1e-6, GAME.e_high - 1e-6, 200_000)  # 0.5 is not a node
    d = co.theta(e, GAME) - e
    roots = e[np.nonzero(np.diff(np.sign(d)))[0]]
    np.testing.assert_allclose(roots, [eq["mid"]], atol=1e-5)  # plus the two end points
    # Stability: slope of the best response at the fixed points (numerical derivative).
    h = 1e-6
    slope = {n: (co.theta(x + h, GAME) - co.theta(x - h, GAME)) / (2 * h) for n, x in eq.items()}
    assert slope["mid"] == pytest.approx(15 / 8, rel=1e-6)
    assert abs(slope["low"]) < 1e-6 and abs(slope["high"]) < 1e-6
    payoffs = [0.5 * eq[n] ** 2 for n in ("low", "mid", "high")]
    assert payoffs == sorted(payoffs)


def test_grid_enumeration_finds_exactly_the_analytic_equilibria() -> None:
    p = co.payoff_matrix(GAME)
    idx = [round(e * 10) for e in co.symmetric_equilibria(GAME).values()]
    assert co.pure_nash_equilibria(p) == [(i, i) for i in sorted(idx)]
    # Payoff at a symmetric equilibrium is e^2 / 2 (from theta(e) = e).
    for i in idx:
        assert p[i, i] == pytest.approx(0.5 * GAME.grid[i] ** 2)
    # Best-response dynamics from symmetric profiles below/above the middle go low/high.
    out = co.best_response_dynamics(p, np.arange(11), np.arange(11))
    np.testing.assert_array_equal(out[:, 0], [2, 2, 2, 2, 2, 5, 8, 8, 8, 8, 8])


@pytest.mark.parametrize("kind", list(KINDS))
def test_learners_select_the_equilibrium_of_their_beliefs_basin(kind: str) -> None:
    p = co.payoff_matrix(GAME)
    n = 24
    belief = np.repeat([[1, 1], [9, 9], [3, 4], [7, 6]], 6, axis=0)  # clear low / high basins
    res = run_game_sessions(
        p, kind=np.full(n, KINDS[kind]), alpha=np.full(n, 0.1), beta=np.full(n, 1e-3), eps0=0.1,
        tau0=np.full(n, 0.01), w0=np.full(n, 10.0), belief=belief, seed=3, conv_window=5_000, max_periods=500_000,
    )  # fmt: skip
    assert res["converged"].all()
    final = co.best_response_dynamics(p, res["actions"][:, 0], res["actions"][:, 1])
    expect = np.repeat([2, 8, 2, 8], 6)
    assert (final[:, 0] == expect).mean() >= 0.9
    assert (final[:, 1] == expect).mean() >= 0.9


def test_game_sessions_deterministic() -> None:
    p = co.payoff_matrix(GAME)
    kw = dict(
        kind=np.array([0, 1, 2, 0]), alpha=np.full(4, 0.1), beta=np.full(4, 1e-3), tau0=np.full(4, 0.02),
        w0=np.full(4, 5.0), belief=np.array([[5, 5], [4, 6], [6, 4], [0, 10]]), conv_window=2_000, max_periods=50_000,
    )  # fmt: skip
    a, b = run_game_sessions(p, seed=1, **kw), run_game_sessions(p, seed=1, **kw)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_scenario_writes_basin_table_and_plot(tmp_path: Path) -> None:
    out = run_scenario(
        "equilibrium-selection",
        overrides={"betas": "0.001", "sessions_per_cell": "1", "kinds": "q-egreedy,fictitious-play"},
        out=tmp_path / "run", progress=False,
    )  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["equilibria"]["high"]["effort"] == pytest.approx(0.8)
    assert summary["grid_equilibria"] == [[0.2, 0.2], [0.5, 0.5], [0.8, 0.8]]
    tab = pl.read_parquet(out / "basins.parquet")
    assert len(tab) == 2 * 121
    assert set(tab["selected"].unique()) <= {"low", "mid", "high", "none"}
    for key, v in summary["by_kind_beta"].items():
        assert v["agrees_with_br_prediction"] >= 0.8, key  # clear basins are found by both kinds
    assert (out / "plots" / "basins.png").exists()
    assert (out / "metrics.parquet").exists()


def test_bad_config_is_rejected() -> None:
    from abm_markets.scenarios.equilibrium_selection import EquilibriumSelectionConfig

    with pytest.raises(ConfigError, match="kinds"):
        EquilibriumSelectionConfig(kinds=("sarsa-lambda",))
    with pytest.raises(ConfigError, match="e_low"):
        EquilibriumSelectionConfig(e_low=0.9, e_high=0.1)


def test_regret_is_zero_exactly_at_equilibria(tmp_path: Path) -> None:
    out = run_scenario(
        "equilibrium-selection",
        overrides={"betas": "0.01", "sessions_per_cell": "1", "kinds": "fictitious-play", "conv_window": "3000"},
        out=tmp_path / "run", progress=False,
    )  # fmt: skip
    tab = pl.read_parquet(out / "basins.parquet")
    regret = tab["regret_1"] + tab["regret_2"]
    assert (regret.filter(tab["exact_nash"]) < 1e-12).all()
    assert (regret.filter(~tab["exact_nash"]) > 0).all()


def test_neither_equilibrium_risk_dominates_and_q_learners_fall_low_because_the_optimist_moves() -> None:
    """Restricted to the two stable efforts, the deviation losses at the low and the high equilibrium are equal
    (0.18 each), so neither risk-dominates (Harsanyi-Selten); what sends Q-learners from miscoordinated beliefs to
    the low equilibrium is that the player who starts high is disappointed in every action it tries (only the played
    action is revised) while the one who starts low is pleasantly surprised and stays: the optimist moves, the
    pessimist does not. Fictitious players revise their belief about the other: both move."""
    p = co.payoff_matrix(GAME)
    lo, hi = 2, 8
    assert p[lo, lo] - p[hi, lo] == pytest.approx(0.18) and p[hi, hi] - p[lo, hi] == pytest.approx(0.18)
    n = 24
    belief = np.repeat([[1, 9], [3, 7], [9, 1], [7, 3]], 6, axis=0)  # player 1 pessimist, then optimist
    start = np.stack([co.theta(GAME.grid[belief[:, 0]], GAME), co.theta(GAME.grid[belief[:, 1]], GAME)], 1)
    moves = {}
    for kind in ("q-egreedy", "fictitious-play"):
        res = run_game_sessions(
            p, kind=np.full(n, KINDS[kind]), alpha=np.full(n, 0.1), beta=np.full(n, 1e-3), eps0=0.2,
            tau0=np.full(n, 0.02), w0=np.full(n, 10.0), belief=belief, seed=5, conv_window=10_000,
            max_periods=1_000_000,
        )  # fmt: skip
        move = np.abs(GAME.grid[res["actions"]] - start)
        optimist = start[:, 1] > start[:, 0]
        moves[kind] = (
            np.where(optimist, move[:, 1], move[:, 0]).mean(),
            np.where(optimist, move[:, 0], move[:, 1]).mean(),
        )
    q_opt, q_pess = moves["q-egreedy"]
    fp_opt, fp_pess = moves["fictitious-play"]
    assert q_opt > 5.0 * q_pess  # measured: 0.56 against 0.03 effort units
    assert fp_pess > 0.5 * fp_opt  # measured: 0.22 against 0.36: both move
