"""collusion-calvano and monopolist-q scenarios on small configurations that still check numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from abm_markets.errors import ConfigError
from abm_markets.learn import tabular as tq
from abm_markets.runner import run_scenario
from abm_markets.solvers import pricing

SMALL = {
    "n_sessions": "12",
    "beta": "4e-5",  # 10x faster exploration decay than the baseline
    "conv_window": "20000",
    "max_periods": "2000000",
    "heatmap_alphas": "0.15",
    "heatmap_betas": "4e-5,8e-5",
    "heatmap_sessions": "3",
}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return run_scenario("collusion-calvano", overrides=SMALL, out=tmp_path_factory.mktemp("c") / "run", progress=False)


def test_summary_has_computed_benchmarks_and_consistent_gain(small_run: Path) -> None:
    s = json.loads((small_run / "summary.json").read_text())
    for key in ("nash_price", "monopoly_price", "profit_gain_mean", "profit_gain_quantiles", "converged_share",
                "periods_to_converge_mean", "wall_s", "impulse", "heatmap"):  # fmt: skip
        assert key in s, key
    assert s["nash_price"] == pytest.approx(1.473, abs=5e-4)
    assert s["monopoly_price"] == pytest.approx(1.925, abs=5e-4)
    assert s["converged_share"] == 1.0
    # Recompute Delta of every session from its logged cycle profits and the closed-form benchmarks.
    tab = pl.read_parquet(small_run / "sessions.parquet")
    gain = ((tab["profit_0"] + tab["profit_1"]) / 2 - s["nash_profit"]) / (s["monopoly_profit"] - s["nash_profit"])
    np.testing.assert_allclose(tab["profit_gain"], gain, rtol=1e-12)
    assert s["profit_gain_mean"] == pytest.approx(float(gain.mean()))
    # Supra-competitive prices are learned even with fast exploration decay (paper: Delta > 0 throughout).
    assert 0.3 < s["profit_gain_mean"] < 1.0
    assert s["profit_gain_quantiles"]["q05"] <= s["profit_gain_quantiles"]["q50"] <= s["profit_gain_quantiles"]["q95"]
    assert (small_run / "plots" / "profit_gain_hist.png").exists()
    assert (small_run / "plots" / "impulse_response.png").exists()
    assert (small_run / "plots" / "delta_heatmap.png").exists()
    heat = pl.read_parquet(small_run / "heatmap.parquet")
    assert heat.shape[0] == 2 and (heat["sessions"] == 3).all()


def test_impulse_response_deviation_is_static_best_response(small_run: Path) -> None:
    s = json.loads((small_run / "summary.json").read_text())
    imp = pl.read_parquet(small_run / "impulse.parquet")
    assert imp["tau"].max() == 16
    # Firm 1's deviation price is below its pre-shock price (undercutting is the profitable deviation).
    assert s["impulse"]["deviation_price_firm1"] < s["impulse"]["pre_shock_price"][0]


def test_static_best_response_matches_brute_force() -> None:
    mk = pricing.LogitMarket()
    grid = pricing.price_grid(pricing.bertrand_nash(mk)[0], pricing.joint_monopoly(mk)[0])
    tab = pricing.profit_table(grid, mk)
    acts = np.array([[0, 14], [7, 3], [14, 9]])
    for agent in (0, 1):
        br = tq.static_best_response(tab, 15, agent, acts)
        for row, a in zip(acts, br, strict=True):
            other = row[1 - agent]
            prof = [
                pricing.logit_profit(grid[[x, other]] if agent == 0 else grid[[other, x]], mk)[agent] for x in range(15)
            ]
            assert a == int(np.argmax(prof))
    np.testing.assert_array_equal(
        tq.static_best_response(tab, 15, 0, acts), pricing.best_response_index(tab, 15, 0, acts[:, 1])
    )


def test_impulse_response_of_grim_trigger_strategy() -> None:
    # Constructed strategies: both price at index 12 after (12, 12), else both at index 1 (Nash-ish) forever.
    mk = pricing.LogitMarket()
    grid = pricing.price_grid(pricing.bertrand_nash(mk)[0], pricing.joint_monopoly(mk)[0])
    tab = pricing.profit_table(grid, mk)
    greedy = np.full((1, 2, 225), 1, dtype=np.int64)
    greedy[0, :, 12 * 15 + 12] = 12
    path = tq.impulse_response(greedy, np.array([12 * 15 + 12]), tab, 15, periods=4)[0]
    br = int(tq.static_best_response(tab, 15, 0, np.array([[12, 12]]))[0])
    np.testing.assert_array_equal(path[:, 0], [12, br, 1, 1, 1, 1])
    np.testing.assert_array_equal(path[:, 1], [12, 12, 1, 1, 1, 1])


def test_monopolist_scenario_learns_grid_optimum(tmp_path: Path) -> None:
    out = run_scenario("monopolist-q", overrides={"n_sessions": "10"}, out=tmp_path / "m", progress=False)
    s = json.loads((out / "summary.json").read_text())
    assert s["monopoly_price"] == pytest.approx(1.80198, abs=1e-5)  # analytic single-firm logit optimum
    assert s["share_at_grid_optimum"] == 1.0
    assert (out / "metrics.parquet").exists() and (out / "plots" / "learned_prices.png").exists()
    assert abs(s["grid_optimal_price"] - s["monopoly_price"]) <= s["grid_step"] / 2
    # Q starts at 0, so the initial greedy price is the lowest one (1.0), which is not optimal: learning moved it.
    assert s["grid_optimal_price"] > 1.0 + s["grid_step"] / 2


def test_bad_settings_are_rejected() -> None:
    from abm_markets.scenarios.collusion import CalvanoScenarioConfig

    with pytest.raises(ConfigError, match="alpha"):
        CalvanoScenarioConfig.from_overrides({"alpha": "1.5"})
    with pytest.raises(ConfigError, match="memory"):
        CalvanoScenarioConfig(memory=2, grid_size=25)


def test_torch_backend_gives_the_same_summary(tmp_path: Path) -> None:
    tiny = {"n_sessions": "3", "alpha": "0.5", "delta": "0.5", "beta": "5e-3", "conv_window": "200",
            "max_periods": "5000", "heatmap_sessions": "0"}  # fmt: skip
    a = run_scenario("collusion-calvano", overrides=tiny, out=tmp_path / "a", progress=False)
    b = run_scenario("collusion-calvano", overrides={**tiny, "backend": "torch"}, out=tmp_path / "b", progress=False)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    assert sa["converged_share"] == 1.0
    for key in ("profit_gain_mean", "periods_to_converge_mean", "converged_share", "impulse"):
        assert sa[key] == sb[key], key
    assert pl.read_parquet(a / "sessions.parquet").equals(pl.read_parquet(b / "sessions.parquet"))
