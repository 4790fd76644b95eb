"""Batched DQN and PPO duopolists and the equal-budget scenario ``collusion-budgets`` (docs/collusion_budgets.md)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from abm_markets.engine.pricing import LogitDuopoly, LogitDuopolyConfig
from abm_markets.errors import ConfigError
from abm_markets.learn import batched_pricing as bp
from abm_markets.learn import tabular as tq
from abm_markets.solvers import pricing

TINY = bp.BatchedDQNConfig(periods=600, eps_beta=8 / 600, hidden=(16, 16), batch_size=8, train_every=2,
                           target_update=20)  # fmt: skip


@pytest.fixture(scope="module")
def economy() -> LogitDuopoly:
    torch.set_num_threads(1)
    return LogitDuopoly(LogitDuopolyConfig(action="grid", memory=1))


def test_batched_sessions_equal_separate_runs(economy: LogitDuopoly) -> None:
    """Three sessions trained in one batch give the numbers of three runs with S = 1 (same session seeds): the
    same actions (hence states, training profits and greedy tables); the parameters agree to float32 rounding
    (the batched matrix product may block its sums differently for another batch size)."""
    keys = tq.session_seeds(0, 3)
    full = bp.train_dqn_sessions(TINY, keys=keys, economy=economy)
    assert full.gradient_steps == (600 - 8) // 2 + 1
    for b in range(3):
        one = bp.train_dqn_sessions(TINY, keys=keys[b : b + 1], economy=economy)
        np.testing.assert_array_equal(one.greedy[0], full.greedy[b])
        assert one.state[0] == full.state[b]
        assert one.profit_gain_train[0] == pytest.approx(full.profit_gain_train[b], abs=1e-12)
        for p1, pf in zip(one.params, full.params, strict=True):
            torch.testing.assert_close(p1[0:2], pf[2 * b : 2 * b + 2], atol=1e-6, rtol=0)
    # the sessions differ from each other (the seeds reach the networks and the play)
    assert len({tuple(full.greedy[b].ravel()) for b in range(3)}) == 3


def test_same_seed_same_numbers(economy: LogitDuopoly) -> None:
    keys = tq.session_seeds(7, 2)
    a = bp.train_dqn_sessions(TINY, keys=keys, economy=economy)
    b = bp.train_dqn_sessions(TINY, keys=keys, economy=economy)
    np.testing.assert_array_equal(a.greedy, b.greedy)
    for p, q in zip(a.params, b.params, strict=True):
        assert torch.equal(p, q)


def test_hash_uniform_is_per_session() -> None:
    keys = tq.session_seeds(0, 50)
    u = bp.hash_uniform(keys, 3, 4, 1000)
    np.testing.assert_array_equal(u[7:9], bp.hash_uniform(keys[7:9], 3, 4, 1000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005 and abs(u.var() - 1 / 12) < 0.002
    assert not np.array_equal(u, bp.hash_uniform(keys, 4, 4, 1000))


def test_dqn_learns_best_response_to_a_fixed_rival(economy: LogitDuopoly) -> None:
    """Against a rival that always posts grid price 7, the optimal policy is the static best response in every
    state. From untrained networks that lose on average more than 2% of the best-response profit, 3,000 periods
    bring every state of every session within 1% of it (the profit curve is flat near its top: the grid
    neighbours of the best response lose 0.2% and 0.8%)."""
    m, rival = 15, 7
    table = pricing.profit_table(economy.grid.numpy(), economy.market)
    own = table[0].reshape(m, m)[:, rival]  # firm 0's profit of each price against the rival's price 7
    states = np.arange(m) * m + rival  # own last price a, rival's last price 7
    cfg = bp.BatchedDQNConfig(periods=3000, eps_beta=5 / 3000, fixed_rival=rival, hidden=(32, 32))
    keys = tq.session_seeds(1, 6)
    feats = bp.observation_features(economy)
    g0 = bp.greedy_tables(bp.initial_params(cfg, keys), feats, len(keys))[:, 0, states]
    loss0 = 1 - own[g0] / own.max()
    assert loss0.mean() > 0.02  # a failing start
    res = bp.train_dqn_sessions(cfg, keys=keys, economy=economy)
    loss = 1 - own[res.greedy[:, 0, states]] / own.max()
    assert loss.max() < 0.01, loss
    assert np.all(res.greedy[:, 1] == rival)


def test_ppo_batched_sessions_equal_separate_runs(economy: LogitDuopoly) -> None:
    cfg = bp.BatchedPPOConfig(periods=320, hidden=(16, 16), rollout=16)
    keys = tq.session_seeds(3, 2)
    full = bp.train_ppo_sessions(cfg, keys=keys, economy=economy)
    assert full.gradient_steps == 320 // 16 * 4
    for b in range(2):
        one = bp.train_ppo_sessions(cfg, keys=keys[b : b + 1], economy=economy)
        np.testing.assert_array_equal(one.greedy[0], full.greedy[b])
        assert one.state[0] == full.state[b]
        assert one.profit_gain_train[0] == pytest.approx(full.profit_gain_train[b], abs=1e-12)
        for p1, pf in zip(one.params, full.params, strict=True):
            torch.testing.assert_close(p1[0:2], pf[2 * b : 2 * b + 2], atol=1e-5, rtol=0)


def test_ppo_learns_best_response_to_a_fixed_rival(economy: LogitDuopoly) -> None:
    """PPO against a rival fixed at grid price 7: from untrained policies (modes losing > 2% of the best-response
    profit on average) to within 1% in every state and session after 6,000 periods."""
    m, rival = 15, 7
    table = pricing.profit_table(economy.grid.numpy(), economy.market)
    own = table[0].reshape(m, m)[:, rival]
    states = np.arange(m) * m + rival
    cfg = bp.BatchedPPOConfig(periods=6000, fixed_rival=rival, hidden=(32, 32))
    keys = tq.session_seeds(1, 6)
    g0 = bp.greedy_tables(bp.initial_params(cfg, keys), bp.observation_features(economy), len(keys))[:, 0, states]
    assert (1 - own[g0] / own.max()).mean() > 0.02
    res = bp.train_ppo_sessions(cfg, keys=keys, economy=economy)
    loss = 1 - own[res.greedy[:, 0, states]] / own.max()
    assert loss.max() < 0.01, loss


def test_config_rejects_bad_rival() -> None:
    with pytest.raises(ConfigError, match="fixed_rival"):
        bp.BatchedDQNConfig(fixed_rival=15)


def test_economy_rejects_continuous_actions() -> None:
    eco = LogitDuopoly(LogitDuopolyConfig(action="continuous", memory=1))
    with pytest.raises(ConfigError, match="action = 'grid'"):
        bp.train_dqn_sessions(TINY, keys=tq.session_seeds(0, 1), economy=eco)


def test_scenario_small(tmp_path) -> None:
    """A tiny run: every cell is there with a 95% interval around its mean; the fixed-budget tabular cell equals a
    plain run_q_learning stopped at the budget (the snapshots taken for the stability check change nothing)."""
    from abm_markets.runner import run_scenario

    over = {"dqn_budgets": "300", "ppo_budgets": "320", "tabular_budgets": "2000", "dqn_sessions": "3",
            "ppo_sessions": "3", "tabular_sessions": "8", "baseline_sessions": "4", "baseline_beta": "4e-5",
            "conv_window": "20000", "hidden": "8,8"}  # fmt: skip
    out = run_scenario("collusion-budgets", overrides=over, seed=0, out=tmp_path / "run", progress=False)
    cells = pl.read_parquet(out / "budgets.parquet")
    assert sorted(zip(cells["learner"], cells["budget"], strict=True)) == [
        ("dqn", 0), ("dqn", 300), ("ppo", 0), ("ppo", 320), ("tabular", 0), ("tabular", 2000),
        ("tabular-calvano", -1),
    ]  # fmt: skip
    assert (cells["profit_gain_lo"] <= cells["profit_gain_mean"]).all()
    assert (cells["profit_gain_mean"] <= cells["profit_gain_hi"]).all()
    sess = pl.read_parquet(out / "sessions.parquet")
    tab = sess.filter((pl.col("learner") == "tabular") & (pl.col("budget") == 2000)).sort("session")

    market = pricing.LogitMarket(n_firms=2, a=(2.0,), a0=0.0, c=(1.0,), mu=0.25)
    p_n, p_m = float(pricing.bertrand_nash(market)[0]), float(pricing.joint_monopoly(market)[0])
    grid = pricing.price_grid(p_n, p_m, 15, 0.1)
    table = pricing.profit_table(grid, market)
    st = tq.run_q_learning(table, m=15, n_sessions=8, alpha=0.15, beta=8 / 2000, delta=0.95, conv_window=10**6,
                           max_periods=2000, seed=0, seed_offset=30_000_000)  # fmt: skip
    cyc = tq.greedy_cycle(st.greedy, st.s, table, 15)
    pi_n = pricing.logit_profit(np.array([p_n, p_n]), market)[0]
    pi_m = pricing.logit_profit(np.array([p_m, p_m]), market)[0]
    gain = pricing.profit_gain(cyc["profit"].mean(axis=1), pi_n, pi_m)
    np.testing.assert_allclose(tab["profit_gain"].to_numpy(), gain, atol=1e-9)
    steps = pl.read_parquet(out / "steps.parquet")
    assert set(steps["case"].unique()) >= {"dqn|T=300", "tabular|T=2000", "tabular-calvano|converged"}


def test_run_leaves_subnormal_floats_on(tmp_path) -> None:
    """The scenario flushes denormals while it runs and switches that process-wide state off again."""
    from abm_markets.runner import run_scenario

    small = {"dqn_budgets": "300", "ppo_budgets": "320", "tabular_budgets": "2000", "dqn_sessions": "2",
             "ppo_sessions": "2", "tabular_sessions": "4", "baseline_sessions": "0", "hidden": "8,8"}  # fmt: skip
    run_scenario("collusion-budgets", overrides=small, seed=0, out=tmp_path / "r", progress=False)
    assert torch.tensor([1e-40], dtype=torch.float32).item() != 0.0
