"""Deep-RL pricing: the LogitDuopoly-v1 economy, its information structures, and DQN/PPO pricing firms."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
import torch

from abm_markets.engine.pricing import LogitDuopoly, LogitDuopolyConfig, PricingState
from abm_markets.errors import ConfigError
from abm_markets.learn.pricing_rl import DeepPricingConfig, evaluate_greedy, pricing_trainer
from abm_markets.solvers import pricing


def _eco(**kw) -> LogitDuopoly:
    return LogitDuopoly(LogitDuopolyConfig(**kw))


def _state(prices: np.ndarray, noise: np.ndarray | None = None) -> PricingState:
    p = torch.as_tensor(prices, dtype=torch.float64)
    n = torch.zeros_like(p) if noise is None else torch.as_tensor(noise, dtype=torch.float64)
    return PricingState(p, n, torch.zeros(p.shape[0], dtype=torch.long))


# ------------------------------------------------------------------------------------------------ economy
def test_profits_match_solver_on_grid_and_continuous() -> None:
    eco = _eco()
    market = pricing.LogitMarket(n_firms=2)
    table = pricing.profit_table(eco.grid.numpy(), market)  # independent NumPy implementation
    g = torch.Generator().manual_seed(1)
    s = eco.initial_state(225, g)
    idx = torch.stack(torch.meshgrid(torch.arange(15), torch.arange(15), indexing="ij"), -1).reshape(-1, 2)
    _, out = eco.step(s, idx, g)
    np.testing.assert_allclose(out.profits.numpy().T, table, rtol=1e-12, atol=1e-14)
    # continuous prices, including out-of-range ones, which are clipped to [p_lo, p_hi]
    ec = _eco(action="continuous")
    p = np.random.default_rng(0).uniform(1.0, 2.5, (500, 2))
    _, out = ec.step(ec.initial_state(500, g), torch.as_tensor(p), g)
    clipped = np.clip(p, ec.p_lo, ec.p_hi)
    np.testing.assert_allclose(out.prices.numpy(), clipped)
    np.testing.assert_allclose(out.profits.numpy(), pricing.logit_profit(clipped, market), rtol=1e-12)
    # reference prices and profit gain agree with the solver module (and with the paper's 1.473 / 1.925)
    assert eco.p_nash == pytest.approx(1.4729, abs=1e-4) and eco.p_monopoly == pytest.approx(1.9250, abs=1e-4)
    pi = torch.tensor([eco.pi_nash, eco.pi_monopoly, 0.3], dtype=torch.float64)
    np.testing.assert_allclose(
        eco.profit_gain(pi).numpy(), pricing.profit_gain(pi.numpy(), eco.pi_nash, eco.pi_monopoly), rtol=1e-12
    )
    np.testing.assert_allclose(eco.profit_gain(pi[:2]).numpy(), [0.0, 1.0], atol=1e-12)


def test_step_is_pure_and_shifts_history() -> None:
    eco = _eco(memory=2)
    g = torch.Generator().manual_seed(0)
    s = eco.initial_state(4, g)
    before = s.prices.clone()
    nxt, out = eco.step(s, torch.tensor([[0, 14]] * 4), g)
    assert torch.equal(s.prices, before)  # input state untouched
    assert torch.equal(nxt.prices[:, 0], out.prices) and torch.equal(nxt.prices[:, 1:], before[:, :-1])
    assert torch.equal(nxt.t, s.t + 1)
    with pytest.raises(ConfigError, match="integer price indices"):
        eco.step(s, torch.zeros(4, 2), g)


def test_observations_reveal_what_they_should() -> None:
    k = 2
    rng = np.random.default_rng(3)
    prices = rng.uniform(1.4, 2.0, (64, k + 1, 2))
    noise = rng.normal(0, 0.05, (64, k + 1, 2))
    other = prices.copy()
    other[..., 1] = rng.uniform(1.4, 2.0, (64, k + 1))  # firm 1's whole history changed
    s, s_other = _state(prices, noise), _state(other, noise)

    own = _eco(memory=k, observation="own")
    o, o2 = own.observe(s), own.observe(s_other)
    assert o.shape == (64, 2, k) and own.observation_size() == k
    assert torch.equal(o[:, 0], o2[:, 0])  # firm 0's observation carries nothing about firm 1's prices
    np.testing.assert_array_equal(o[:, 0].numpy(), prices[:, :k, 0])
    np.testing.assert_array_equal(o[:, 1].numpy(), prices[:, :k, 1])

    full = _eco(memory=k, observation="full").observe(s).numpy()
    np.testing.assert_array_equal(full[:, 0], np.concatenate([prices[:, :k, 0], prices[:, :k, 1]], -1))
    np.testing.assert_array_equal(full[:, 1], np.concatenate([prices[:, :k, 1], prices[:, :k, 0]], -1))

    lag = _eco(memory=k, observation="lagged")
    lo = lag.observe(s).numpy()
    np.testing.assert_array_equal(lo[:, 0, k:], prices[:, 1 : k + 1, 1])  # rival's t-2 .. t-k-1
    np.testing.assert_array_equal(lo[:, 1, k:], prices[:, 1 : k + 1, 0])
    changed = prices.copy()
    changed[:, 0, 1] += 0.3  # rival's last price is not seen under the lag
    assert torch.equal(lag.observe(_state(changed, noise))[:, 0], lag.observe(s)[:, 0])

    noisy = _eco(memory=k, observation="noisy").observe(s).numpy()
    np.testing.assert_allclose(noisy[:, 0, k:], prices[:, :k, 1] + noise[:, :k, 1])
    np.testing.assert_array_equal(noisy[:, 0, :k], prices[:, :k, 0])  # own prices are seen exactly


def test_observation_noise_has_the_set_sd() -> None:
    eco = _eco(observation="noisy", noise_sd=0.07)
    g = torch.Generator().manual_seed(5)
    s = eco.initial_state(40_000, g)
    nxt, out = eco.step(s, torch.full((40_000, 2), 7), g)
    err = eco.observe(nxt)[:, 0, 1] - out.prices[:, 1]
    assert float(err.std()) == pytest.approx(0.07, rel=0.02)  # se of an sd estimate ~ 0.35% here
    assert abs(float(err.mean())) < 4 * 0.07 / 200


def test_make_economy_by_id() -> None:
    from abm_markets.engine.economy import make_economy

    eco = make_economy("LogitDuopoly-v1", LogitDuopolyConfig(memory=3))
    assert isinstance(eco, LogitDuopoly) and eco.observation_size() == 6


# ---------------------------------------------------------------------------------------------- learning
def test_dqn_firm_learns_static_best_response_to_nash_rival() -> None:
    """A DQN firm facing a rival fixed at the grid price nearest Nash learns its best response (= Nash)."""
    torch.set_num_threads(1)
    eco = _eco()
    nash_idx = int(torch.argmin((eco.grid - eco.p_nash).abs()))
    table = pricing.profit_table(eco.grid.numpy(), eco.market)
    br = int(pricing.best_response_index(table, 15, 0, np.array([nash_idx]))[0])
    cfg = DeepPricingConfig(learner="dqn", n_economies=16, iterations=30, eps_beta=3e-3)
    tr = pricing_trainer(eco, cfg, seed=0, fixed={1: lambda s: torch.full((s.batch_size,), nash_idx)})
    for _ in range(cfg.iterations):
        tr.iteration()
    ev = evaluate_greedy(tr, cfg)
    step = float(eco.grid[1] - eco.grid[0])
    assert np.all(np.abs(ev["price_mean"][:, 0] - eco.p_nash) <= step)  # within one grid step of Nash
    assert np.all(np.abs(ev["price_mean"][:, 0] - float(eco.grid[br])) <= step + 1e-12)


@pytest.mark.parametrize("learner", ["dqn", "ppo"])
def test_same_seed_same_run(learner: str) -> None:
    torch.set_num_threads(1)
    eco = _eco(action="grid" if learner == "dqn" else "continuous", observation="noisy")
    cfg = DeepPricingConfig(learner=learner, n_economies=4, iterations=4, rollout_len=16, minibatch=32)

    def run(seed: int) -> tuple[list[dict], np.ndarray]:
        tr = pricing_trainer(eco, cfg, seed=seed)
        rows: list[dict] = []
        for _ in range(cfg.iterations):
            rows.append({k: v for k, v in tr.iteration().items() if "wall" not in k})
        return rows, evaluate_greedy(tr, cfg)["prices"]

    a, b, c = run(0), run(0), run(1)
    assert a[0] == b[0] and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_learner_needs_matching_action_kind() -> None:
    with pytest.raises(ConfigError, match="continuous"):
        pricing_trainer(_eco(action="grid"), DeepPricingConfig(learner="ppo"))


def test_scenario_summary_consistent_with_tables(tmp_path) -> None:
    from abm_markets.runner import run_scenario

    out = run_scenario(
        "collusion-deeprl",
        overrides={"learner": "ppo", "observation": "lagged", "n_seeds": "2", "n_economies": "4", "iterations": "3"},
        seed=0,
        out=tmp_path / "run",
    )
    s = json.loads((out / "summary.json").read_text())
    market = pricing.LogitMarket(n_firms=2)
    assert s["nash_price"] == pytest.approx(pricing.bertrand_nash(market)[0], rel=1e-12)
    assert s["monopoly_price"] == pytest.approx(pricing.joint_monopoly(market)[0], rel=1e-12)
    sessions = pl.read_parquet(out / "sessions.parquet")
    pi = (sessions["profit_0"] + sessions["profit_1"]).to_numpy() / 2
    pi_n, pi_m = s["nash_profit"], s["monopoly_profit"]
    np.testing.assert_allclose(sessions["profit_gain"].to_numpy(), (pi - pi_n) / (pi_m - pi_n), rtol=1e-9)
    per = sessions.group_by("session").agg(pl.col("profit_gain").mean()).sort("session")["profit_gain"].to_numpy()
    assert s["profit_gain_mean"] == pytest.approx(per.mean(), rel=1e-9)
    assert s["train_env_steps"] == 2 * 4 * 3 * 32
    metrics = pl.read_parquet(out / "metrics.parquet")
    assert metrics.height == 2 * 3 and {"env_steps", "mean_profit_gain"} <= set(metrics.columns)
    assert (out / "plots" / "price_paths.png").exists() and (out / "plots" / "profit_gain.png").exists()


def test_deviation_is_the_static_best_response() -> None:
    from abm_markets.learn.pricing_rl import deviation_response

    eco = _eco()
    tr = pricing_trainer(eco, DeepPricingConfig(learner="dqn", n_economies=15, iterations=1, rollout_len=4), seed=2)
    s = eco.initial_state(15, torch.Generator().manual_seed(0))
    s = PricingState(s.prices.clone(), s.noise, s.t)
    s.prices[:, 0, 1] = eco.grid  # rival's last price: every grid point once
    path = deviation_response(tr, s, periods=3)
    table = pricing.profit_table(eco.grid.numpy(), eco.market)
    br = pricing.best_response_index(table, 15, 0, np.arange(15))
    assert path.shape == (5, 15, 2)
    np.testing.assert_array_equal(path[0, :, 1], eco.grid.numpy())
    np.testing.assert_array_equal(path[1, :, 0], eco.grid.numpy()[br])


def test_scenario_with_one_economy_and_one_session(tmp_path) -> None:
    """All Deltas equal (one value): the summary and the histogram are still written."""
    from abm_markets.runner import run_scenario

    over = {"learner": "ppo", "observation": "own", "n_seeds": "1", "n_economies": "1", "iterations": "1"}
    out = run_scenario("collusion-deeprl", overrides=over, seed=0, out=tmp_path / "run")
    s = json.loads((out / "summary.json").read_text())
    assert s["profit_gain_std"] == 0.0 and s["profit_gain_quantiles"]["q05"] == s["profit_gain_mean"]
    assert (out / "plots" / "profit_gain.png").exists()
