"""PettingZoo and Gymnasium front ends over any protocol economy (``EconomyParallelEnv``, ``EconomyEnv``).

* official checkers on the logit duopoly (grid and continuous prices) and on an investment market with deciding
  firms and a subgroup information structure (``parallel_api_test``, ``parallel_seed_test``, ``check_env``);
* the envs driven with fixed actions reproduce the engine's ``initial_state(1, g)`` / ``step(..., g)`` with the
  same seed bit for bit;
* the investment env's firms observe through the protocol exactly what ``firm_observation`` computes;
* one-line errors on misuse.
"""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

from abm_markets.agents.firm import firm_observation
from abm_markets.engine import InvestmentConfig, make_economy
from abm_markets.engine.pricing import LogitDuopolyConfig
from abm_markets.envs import EconomyEnv, EconomyParallelEnv, InvestmentParallelEnv
from abm_markets.errors import ConfigError, UserError

SEED = 7

MARKET_INFO = InvestmentConfig(
    formulation="market",
    n_households=3,
    firms="decision",
    market="posted",
    information=("households[:1]=own_capital+own_tfp+all_capital", "households[1:]=own_capital+own_tfp"),
    horizon=30,
)


def _duopoly(action: str, **kw):
    return make_economy("LogitDuopoly-v1", LogitDuopolyConfig(action=action, **kw))


def _market():
    return make_economy("InvestmentMarket-v1", MARKET_INFO)


def _quiet_check_env(env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unbounded observations, no render fps: advisory only
        check_env(env)


# ------------------------------------------------------------------------------------ PettingZoo
@pytest.mark.parametrize(
    "make",
    [lambda: _duopoly("grid"), lambda: _duopoly("continuous", observation="noisy", memory=2), _market],
    ids=["duopoly-grid", "duopoly-continuous-noisy", "market-deciding-subgroups"],
)
def test_parallel_env_passes_pettingzoo_checkers(make):
    env = EconomyParallelEnv(make(), horizon=30)
    parallel_api_test(env, num_cycles=70)
    parallel_seed_test(lambda: EconomyParallelEnv(make(), horizon=30), num_cycles=70)
    assert env.metadata["name"] == env.economy.env_id
    env.reset(seed=0)
    steps = 0
    while env.agents:
        _, _, term, trunc, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps == env.horizon and all(trunc.values()) and not any(term.values())


def test_parallel_env_agents_spaces_and_infos():
    grid = EconomyParallelEnv(_duopoly("grid"))
    assert grid.possible_agents == ["firm_0", "firm_1"] and grid.horizon == 200
    assert isinstance(grid.action_space("firm_0"), gymnasium.spaces.Discrete)
    assert grid.action_space("firm_0") is grid.action_space("firm_0")
    assert grid.action_space("firm_0") is not grid.action_space("firm_1")
    cont = EconomyParallelEnv(_duopoly("continuous"), render_mode="ansi")
    assert cont.action_space("firm_1").shape == ()
    cont.reset(seed=1)
    _, rew, _, _, info = cont.step({"firm_0": np.float32(1.5), "firm_1": np.float32(1.7)})
    assert set(info["firm_0"]) == {"price", "quantity", "profit", "profit_gain"}
    assert info["firm_0"]["price"] == 1.5 and info["firm_1"]["price"] == pytest.approx(1.7)
    assert rew["firm_0"] == info["firm_0"]["profit"] and rew["firm_0"] > rew["firm_1"]
    assert info["firm_0"]["profit_gain"] == info["firm_1"]["profit_gain"]
    assert cont.render().startswith("t=1 mean price=1.6")
    assert cont.state().shape == (2,) and cont.state().dtype == np.float32

    market = EconomyParallelEnv(_market())
    hh = [f"household_{i}" for i in range(3)]
    assert market.possible_agents == [*hh, "firm_0_0"]
    # subgroup information: own capital, own TFP, everybody's capital, one flag
    assert market.observation_space("household_0").shape == (1 + 1 + 3 + 1,)
    obs, _ = market.reset(seed=2)
    assert obs["household_0"][-1] == 1.0 and obs["household_1"][-1] == 0.0
    assert np.all(obs["household_1"][2:5] == 0.0) and np.all(obs["household_0"][2:5] > 0.0)
    assert market.observation_space("firm_0_0").shape == (4,)


def test_parallel_env_reproduces_the_engine_bit_for_bit():
    eco = _duopoly("continuous", observation="noisy", memory=2)
    env = EconomyParallelEnv(eco, horizon=25)
    rng = np.random.default_rng(3)
    acts = rng.uniform(eco.p_lo, eco.p_hi, size=(25, 2)).astype(np.float32)
    g = torch.Generator().manual_seed(SEED)
    state = eco.initial_state(1, g)
    obs, _ = env.reset(seed=SEED)
    for a in acts:
        np.testing.assert_array_equal(obs["firm_1"], eco.observe(state, "firms")[0, 1].numpy().astype(np.float32))
        obs, rew, _, _, _ = env.step({"firm_0": a[0], "firm_1": a[1]})
        state, out = eco.step(state, {"firms": torch.as_tensor(a, dtype=torch.float64).reshape(1, 2)}, g)
        assert [rew["firm_0"], rew["firm_1"]] == out.profits[0].tolist()
        for name in ("prices", "noise", "t"):
            assert torch.equal(getattr(env._state, name), getattr(state, name)), name


def test_investment_firms_observe_through_the_protocol():
    cfg = InvestmentConfig(
        formulation="market", n_households=3, n_capital_goods=2, firms="decision", firms_per_good=2, k_init_spread=0.3
    )
    env = InvestmentParallelEnv(cfg)
    obs, _ = env.reset(seed=4)
    for _ in range(3):
        old = firm_observation(env.economy, env._state)[0].reshape(-1, 4).numpy().astype(np.float32)
        for k, a in enumerate(env.firm_agents):
            np.testing.assert_array_equal(obs[a], old[k])
        obs, *_, info = env.step({a: env.action_space(a).sample() for a in env.agents})
    assert {"price", "sold", "produced", "welfare"} <= set(info["firm_1_0"])
    assert {"consumption", "output", "investment", "welfare"} <= set(info["household_2"])


# ------------------------------------------------------------------------------------- Gymnasium
def test_economy_env_passes_check_env():
    planner = make_economy("InvestmentPlanner-v1", InvestmentConfig(n_households=1, n_capital_goods=2, horizon=30))
    _quiet_check_env(EconomyEnv(planner))
    for action in ("grid", "continuous"):
        eco = _duopoly(action)
        rival = eco.cfg.grid_size // 2 if action == "grid" else eco.p_nash
        rival_tensor = torch.tensor([[0, rival]], dtype=torch.long if action == "grid" else torch.float64)
        env = EconomyEnv(eco, group="firm_0", fixed={"firms": lambda s, r=rival_tensor: r}, horizon=30)
        assert env.action_space == eco.group("firms").action_space
        _quiet_check_env(env)
    # a planner acting for three households: one slot, three stacked actions
    env = EconomyEnv(
        make_economy("InvestmentPlanner-v1", InvestmentConfig(n_households=3, horizon=30)), group="planner"
    )
    assert env.action_space.shape == (3, 1) and env.observation_space.shape == (3 * 2,)
    _quiet_check_env(env)
    # a household of a market with deciding firms, the firm following a fixed rule
    market = make_economy(
        "InvestmentMarket-v1", InvestmentConfig(formulation="market", n_households=1, firms="decision", horizon=30)
    )
    env = EconomyEnv(market, fixed={"firms": lambda s: torch.tensor([[[1.0, 0.5]]], dtype=torch.float64)})
    _quiet_check_env(env)


@pytest.mark.parametrize("action", ["grid", "continuous"])
def test_economy_env_reproduces_the_engine_bit_for_bit(action):
    eco = _duopoly(action, observation="noisy", memory=2)
    rng = np.random.default_rng(9)
    if action == "grid":
        mine = rng.integers(0, eco.cfg.grid_size, size=30)
        rival = torch.as_tensor(rng.integers(0, eco.cfg.grid_size, size=30))
    else:
        mine = rng.uniform(eco.p_lo, eco.p_hi, size=30).astype(np.float32)
        rival = torch.as_tensor(rng.uniform(eco.p_lo, eco.p_hi, size=30))

    def fixed(state):  # firm 0 (the rival) follows a price path; slot 1 is the agent's
        return torch.stack([rival[int(state.t[0])], torch.zeros_like(rival[0])]).reshape(1, 2)

    env = EconomyEnv(eco, group="firm_1", fixed={"firms": fixed}, horizon=30)
    g = torch.Generator().manual_seed(SEED)
    state = eco.initial_state(1, g)
    obs, _ = env.reset(seed=SEED)
    for t in range(30):
        np.testing.assert_array_equal(obs, eco.observe(state, "firms")[0, 1].numpy().astype(np.float32))
        obs, reward, terminated, truncated, info = env.step(mine[t])
        both = torch.stack([rival[t], torch.as_tensor(mine[t]).to(rival.dtype)]).reshape(1, 2)
        state, out = eco.step(state, {"firms": both}, g)
        assert reward == out.profits[0, 1].item() and info["profit"] == reward
        assert not terminated and truncated == (t == 29)
        for name in ("prices", "noise", "t"):
            assert torch.equal(getattr(env._state, name), getattr(state, name)), name


def test_planner_view_reproduces_the_engine():
    cfg = InvestmentConfig(n_households=3, n_capital_goods=2, k_init_spread=0.3, horizon=15)
    eco = make_economy("InvestmentPlanner-v1", cfg)
    env = EconomyEnv(eco, group="planner", render_mode="ansi")
    acts = np.random.default_rng(1).uniform(0.0, 0.25, size=(15, 3, 2)).astype(np.float32)
    g = torch.Generator().manual_seed(SEED)
    state = eco.initial_state(1, g)
    env.reset(seed=SEED)
    for a in acts:
        _, reward, _, _, info = env.step(a)
        state, out = eco.step(state, {"households": torch.as_tensor(a, dtype=torch.float64).unsqueeze(0)}, g)
        assert reward == out.reward_planner[0].item()
        assert info["consumption"] == out.consumption[0].tolist() and info["welfare"] == reward
    assert torch.equal(env._state.capital, state.capital)
    assert env.render().startswith("t=15 mean capital=")


# ---------------------------------------------------------------------------------------- errors
def test_misuse_raises_one_line_errors():
    duo = _duopoly("grid")
    with pytest.raises(ConfigError, match=r"has 2 slots.*firm_0"):
        EconomyEnv(duo, group="firms")
    with pytest.raises(ConfigError, match=r"other agents' actions under action key 'firms'"):
        EconomyEnv(duo, group="firm_0")
    with pytest.raises(ConfigError, match="unknown group or agent"):
        EconomyEnv(duo, group="firm_2")
    with pytest.raises(ConfigError, match="unknown action key"):
        EconomyEnv(duo, group="firm_0", fixed={"firms": torch.zeros(1, 2, dtype=torch.long), "buyers": None})
    planner = make_economy("InvestmentPlanner-v1", InvestmentConfig(n_households=1))
    with pytest.raises(ConfigError, match="itself"):
        EconomyEnv(planner, fixed={"households": torch.zeros(1, 1, 1)})
    with pytest.raises(ConfigError, match=r"conflicts with the economy's cfg\.horizon"):
        EconomyParallelEnv(planner, horizon=7)
    with pytest.raises(ConfigError, match="positive integer"):
        EconomyParallelEnv(duo, horizon=0)
    with pytest.raises(UserError, match="render_mode"):
        EconomyParallelEnv(duo, render_mode="human")
    market = make_economy(
        "InvestmentMarket-v1", InvestmentConfig(formulation="market", n_households=1, firms="decision")
    )
    with pytest.raises(ConfigError, match=r"under action key 'firms'; expected fixed="):
        EconomyEnv(market)

    env = EconomyEnv(duo, group="firm_0", fixed={"firms": torch.zeros(3, dtype=torch.long)})
    with pytest.raises(UserError, match="before reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(UserError, match=r"fixed\['firms'\] has shape \(3,\); expected \(1, 2\)"):
        env.step(0)
    par = EconomyParallelEnv(duo)
    par.reset(seed=0)
    with pytest.raises(UserError, match="integer action indices"):
        par.step({"firm_0": 1.5, "firm_1": 2})
    with pytest.raises(UserError, match="missing for firm_1"):
        par.step({"firm_0": 1})
    cont = EconomyParallelEnv(_duopoly("continuous"))
    cont.reset(seed=0)
    with pytest.raises(UserError, match=r"action of firm_1 has shape \(2,\); expected \(\)"):
        cont.step({"firm_0": 1.5, "firm_1": np.ones(2)})
