"""Front ends over the one engine: Mesa model, PettingZoo and Gymnasium environments.

* official checkers: ``parallel_api_test``, ``parallel_seed_test``, ``check_env``;
* the engine, the Mesa model, the PettingZoo env and the Gym env, driven with the same
  seed and actions, give identical trajectories;
* the Mesa model's plain-Python ``agents`` mode (a second implementation of the
  economics) matches the engine to 1e-10 (planner, Walrasian, posted price, bilateral,
  with quantity actions and deciding firms too);
* decision rules: the steady-state share keeps the deterministic economy at the
  steady state; ``PostedMarkup(0)`` deciding firms reproduce the competitive posted rule;
* DataCollector output shape.
"""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

from abm_markets.agents import (
    CapitalFirm,
    CompetitiveSupply,
    FixedShare,
    Household,
    PostedMarkup,
    RandomShare,
    SteadyStateShare,
    steady_state_share,
)
from abm_markets.engine import InvestmentConfig, InvestmentEconomy
from abm_markets.envs import ENV_ID, InvestmentParallelEnv, InvestmentPlannerEnv
from abm_markets.errors import ConfigError
from abm_markets.model import InvestmentModel

SEED = 11


# --------------------------------------------------------------- checkers
@pytest.mark.parametrize(
    "overrides",
    [
        {"formulation": "planner", "n_households": 3},
        {"formulation": "market", "n_households": 3, "n_capital_goods": 2, "market": "walrasian"},
        {
            "formulation": "market",
            "n_households": 3,
            "n_capital_goods": 2,
            "market": "posted",
            "firms": "decision",
            "firms_per_good": 2,
        },
        {
            "formulation": "market",
            "n_households": 2,
            "market": "bilateral",
            "action": "quantities",
            "firms_per_good": 2,
        },
    ],
    ids=["planner", "walrasian", "posted-deciding", "bilateral-quantities"],
)
def test_parallel_env_passes_pettingzoo_checkers(overrides):
    cfg = InvestmentConfig(horizon=60, **overrides)
    env = InvestmentParallelEnv(cfg)
    parallel_api_test(env, num_cycles=200)
    parallel_seed_test(lambda: InvestmentParallelEnv(cfg), num_cycles=200)
    assert env.metadata["name"] == ("InvestmentPlanner-v1" if cfg.formulation == "planner" else "InvestmentMarket-v1")
    # episodes end at the horizon, with every agent truncated
    env.reset(seed=0)
    steps = 0
    while env.agents:
        _, _, term, trunc, _ = env.step({a: env.action_space(a).sample() for a in env.agents})
        steps += 1
    assert steps == cfg.horizon and all(trunc.values()) and not any(term.values())


def test_gym_env_passes_check_env_and_is_registered():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # infinite observation bound, no render fps: advisory only
        check_env(InvestmentPlannerEnv())
        check_env(InvestmentPlannerEnv(InvestmentConfig(n_capital_goods=2, horizon=20)))
        env = gymnasium.make(ENV_ID)
    assert isinstance(env.unwrapped, InvestmentPlannerEnv)
    obs, _ = env.reset(seed=3)
    # observation = (K / K_ss, Z): capital starts at the steady state, Z is one of the TFP states
    assert obs[0] == pytest.approx(1.0, rel=1e-6)
    assert min(abs(float(obs[1]) - z) for z in InvestmentConfig().tfp_values) < 1e-6


def test_gym_env_rejects_several_households():
    with pytest.raises(ConfigError, match="n_households"):
        InvestmentPlannerEnv(InvestmentConfig(n_households=2))


# ------------------------------------------- same seed, same actions, same path
def _actions(t_len: int, h: int, j: int) -> np.ndarray:
    """Random spending shares, exactly representable in float32 (the envs' action dtype)."""
    rng = np.random.default_rng(5)
    return rng.uniform(0.0, 0.5 / j, size=(t_len, h, j)).astype(np.float32).astype(np.float64)


def _engine_path(cfg: InvestmentConfig, acts: np.ndarray) -> dict[str, np.ndarray]:
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(SEED)
    state = eco.initial_state(1, g)
    rows: dict[str, list] = {"capital": [], "consumption": [], "reward": []}
    for a in acts:
        state, out = eco.step(state, {"households": torch.as_tensor(a).unsqueeze(0)}, g)
        rows["capital"].append(state.capital[0].sum(-1).tolist())
        rows["consumption"].append(out.consumption[0].tolist())
        rows["reward"].append(out.reward_households[0].tolist())
    return {k: np.asarray(v) for k, v in rows.items()}


def _model_path(cfg: InvestmentConfig, acts: np.ndarray, mode: str) -> dict[str, np.ndarray]:
    model = InvestmentModel(cfg, seed=SEED, mode=mode)
    rows: dict[str, list] = {"capital": [], "consumption": [], "reward": []}
    for a in acts:
        model.step({"households": a})
        r = model.trajectory_row()
        for k in rows:
            rows[k].append(r[k])
    return {k: np.asarray(v) for k, v in rows.items()}


def _parallel_path(cfg: InvestmentConfig, acts: np.ndarray) -> dict[str, np.ndarray]:
    env = InvestmentParallelEnv(cfg)
    env.reset(seed=SEED)
    rows: dict[str, list] = {"capital": [], "consumption": [], "reward": []}
    for a in acts:
        _, rew, _, _, info = env.step({f"household_{i}": a[i].astype(np.float32) for i in range(cfg.n_households)})
        hs = [f"household_{i}" for i in range(cfg.n_households)]
        rows["capital"].append(env._state.capital[0].sum(-1).tolist())
        rows["consumption"].append([info[h]["consumption"] for h in hs])
        rows["reward"].append([rew[h] for h in hs])
    return {k: np.asarray(v) for k, v in rows.items()}


def _gym_path(cfg: InvestmentConfig, acts: np.ndarray) -> dict[str, np.ndarray]:
    env = InvestmentPlannerEnv(cfg)
    env.reset(seed=SEED)
    rows: dict[str, list] = {"capital": [], "consumption": [], "reward": []}
    for a in acts:
        _, rew, _, _, info = env.step(a[0].astype(np.float32))
        rows["capital"].append([sum(info["capital"])])
        rows["consumption"].append([info["consumption"]])
        rows["reward"].append([rew])
    return {k: np.asarray(v) for k, v in rows.items()}


@pytest.mark.parametrize(
    "overrides",
    [
        {"formulation": "planner", "n_households": 1, "household_obs": ("own_capital", "own_tfp")},
        {"formulation": "planner", "n_households": 3, "n_capital_goods": 2},
        {"formulation": "market", "n_households": 3, "n_capital_goods": 2, "market": "walrasian"},
        {"formulation": "market", "n_households": 3, "market": "bilateral", "firms_per_good": 2, "network": "ring"},
    ],
    ids=["planner-1", "planner-3x2", "walrasian-3x2", "bilateral"],
)
def test_all_front_ends_give_identical_trajectories(overrides):
    cfg = InvestmentConfig(k_init_spread=0.3, agg_tfp_values=(0.95, 1.05), horizon=40, **overrides)
    acts = _actions(40, cfg.n_households, cfg.n_capital_goods)
    ref = _engine_path(cfg, acts)
    paths = {"mesa": _model_path(cfg, acts, "engine"), "pettingzoo": _parallel_path(cfg, acts)}
    if cfg.n_households == 1:
        paths["gym"] = _gym_path(cfg, acts)
    for name, path in paths.items():
        for key in ref:
            np.testing.assert_array_equal(path[key], ref[key], err_msg=f"{name}: {key}")
    # the path is not trivial: TFP shocks and spending moved capital around
    assert np.ptp(ref["capital"]) > 0.05 * ref["capital"].mean()


# ----------------------------------------- agents mode: a second implementation
AGENT_CASES = {
    "planner": {"formulation": "planner"},
    "planner-quantities": {"formulation": "planner", "action": "quantities"},
    "walrasian": {"formulation": "market", "market": "walrasian"},
    "walrasian-quantities-M2": {"formulation": "market", "action": "quantities", "firms_per_good": 2},
    "posted-M2": {"formulation": "market", "market": "posted", "firms_per_good": 2},
    "posted-quantities": {"formulation": "market", "market": "posted", "action": "quantities"},
    "posted-deciding": {"formulation": "market", "market": "posted", "firms": "decision", "firms_per_good": 2},
    "walrasian-deciding": {"formulation": "market", "firms": "decision", "firms_per_good": 2},
    "bilateral-random-M3": {"formulation": "market", "market": "bilateral", "firms_per_good": 3, "network": "random"},
    "bilateral-ring-quantities": {
        "formulation": "market",
        "market": "bilateral",
        "firms_per_good": 2,
        "network": "ring",
        "action": "quantities",
        "bargaining_power": 0.3,
    },
    "bilateral-deciding": {
        "formulation": "market",
        "market": "bilateral",
        "firms": "decision",
        "firms_per_good": 2,
        "network": "random",
        "network_p": 0.6,
    },
}


@pytest.mark.parametrize("case", list(AGENT_CASES))
def test_agents_mode_matches_engine_mode(case):
    cfg = InvestmentConfig(
        n_households=3, n_capital_goods=2, k_init_spread=0.3, agg_tfp_values=(0.95, 1.05), **AGENT_CASES[case]
    )
    t_len = 40
    rng = np.random.default_rng(2)
    high = 0.5 if cfg.action == "quantities" else 0.3
    acts = rng.uniform(0.0, high, size=(t_len, 3, 2))
    firm_rule = PostedMarkup(cfg, 0.25)
    runs = {}
    for mode in ("engine", "agents"):
        model = InvestmentModel(
            cfg, seed=SEED, mode=mode, rules={"firms": firm_rule} if cfg.firms == "decision" else None
        )
        rows = []
        for a in acts:
            model.step({"households": a})
            hs, fs = model.households, [f for row in model.firms for f in row]
            rows.append(
                [k for h in hs for k in h.capital]
                + [h.consumption for h in hs]
                + [h.reward for h in hs]
                + [h.overshoot for h in hs]
                + model.last_price
                + [f.sold for f in fs]
                + [f.profit for f in fs]
            )
        runs[mode] = np.asarray(rows)
        state = model.to_state()
    np.testing.assert_allclose(runs["agents"], runs["engine"], rtol=1e-10, atol=1e-10)
    assert np.isfinite(runs["engine"]).all()
    assert int(state.t[0]) == t_len


def test_agents_mode_with_rules_and_random_order_matches_engine():
    """Rules read observations (all blocks); posted-price arrival order comes from Mesa's shuffle."""
    blocks = ("own_capital", "own_tfp", "agg_capital", "agg_tfp", "all_capital", "all_tfp", "prices", "time")
    cfg = InvestmentConfig(
        n_households=4, formulation="market", market="posted", firms_per_good=2, k_init_spread=0.5, household_obs=blocks
    )

    class ObsShare:
        """Share that depends on every observation entry (so the observations must agree)."""

        def act(self, obs):
            return np.array([0.1 + 0.05 * np.tanh(np.sum(obs) - 10.0)])

    paths = {}
    for mode in ("engine", "agents"):
        model = InvestmentModel(cfg, seed=4, mode=mode, rules=ObsShare())
        path = []
        for _ in range(30):
            model.step()
            path.append([h.consumption for h in model.households] + [f.sold for row in model.firms for f in row])
        paths[mode] = np.asarray(path)
    np.testing.assert_allclose(paths["agents"], paths["engine"], rtol=1e-10, atol=1e-12)
    # with 2 firms posting different prices, the arrival order matters: a different seed gives another path
    other = InvestmentModel(cfg, seed=5, rules=ObsShare())
    other.step()
    assert other.households[0].consumption != pytest.approx(paths["engine"][0][0], rel=1e-12)


def test_agents_mode_matches_engine_on_random_configurations():
    """Random economies (sizes, formulation, market, actions, budget rule, CRRA, shocks, firms)."""
    rng = np.random.default_rng(0)
    for trial in range(12):
        form = str(rng.choice(["planner", "market"]))
        kw = {
            "n_households": int(rng.integers(1, 5)),
            "n_capital_goods": int(rng.integers(1, 4)),
            "formulation": form,
            "action": str(rng.choice(["shares", "quantities"])),
            "budget": str(rng.choice(["scale", "penalty"])),
            "crra": float(rng.choice([1.0, 2.0, 0.5])),
            "k_init_spread": 0.5,
            "tfp_values": (0.8, 1.0, 1.2),
            "tfp_persistence": 0.7,
            "agg_tfp_values": (0.9, 1.1),
            "agg_tfp_persistence": 0.8,
            "delta": float(rng.uniform(0.02, 0.3)),
            "phi": float(rng.uniform(0.2, 2.0)),
        }
        if form == "market":
            kw["market"] = str(rng.choice(["walrasian", "posted", "bilateral"]))
            kw["network"] = str(rng.choice(["complete", "random", "ring"]))
            kw["bargaining_power"] = float(rng.uniform(0.0, 1.0))
            kw["firms"] = str(rng.choice(["competitive", "decision"]))
            kw["firms_per_good"] = int(rng.integers(1, 4))
        cfg = InvestmentConfig(**kw)
        h, j = cfg.shape
        high = (1.0 if cfg.action == "shares" else 3.0) * 1.5 / j  # shares may sum above 1: scaled onto the simplex
        acts = rng.uniform(0.0, high, (20, h, j))
        rules = {"firms": PostedMarkup(cfg, float(rng.uniform(0.0, 0.5)))} if cfg.firms == "decision" else None
        paths = {}
        for mode in ("engine", "agents"):
            model = InvestmentModel(cfg, seed=trial, mode=mode, rules=rules)
            rows = []
            for a in acts:
                model.step({"households": a})
                fs = [f for row in model.firms for f in row]
                rows.append(
                    [k for hh in model.households for k in hh.capital]
                    + [hh.reward for hh in model.households]
                    + [hh.consumption for hh in model.households]
                    + model.last_price
                    + [f.profit for f in fs]
                    + [f.last_demand for f in fs]
                )
            paths[mode] = np.asarray(rows)
        np.testing.assert_allclose(paths["agents"], paths["engine"], rtol=1e-10, atol=1e-10, err_msg=str(kw))


def test_activation_order_is_the_posted_price_arrival_order():
    """One seller with capacity for 1.5 orders: the household Mesa activates first is served in full,
    the second gets the rest, the others nothing."""
    cfg = InvestmentConfig(n_households=4, formulation="market", market="posted", firms="decision", tfp_values=(1.0,))
    model = InvestmentModel(cfg, seed=7)
    share, price = 0.1, 1.0
    orders = set()
    for _ in range(6):
        y = model.k_ss**cfg.alpha if model.period == 0 else max(h.output for h in model.households)
        cap = 1.5 * share * y / price
        model.step({"households": np.full((4, 1), share), "firms": np.array([[[price, cap]]])})
        order = [h.index for h in model.arrivals]
        orders.add(tuple(order))
        hs = [model.households[i] for i in order]
        got = [h.total_investment for h in hs]
        assert got[0] == pytest.approx(share * hs[0].output / price, rel=1e-12)
        assert sum(got) == pytest.approx(min(cap, share * sum(h.output for h in hs) / price), rel=1e-12)
        assert got[-1] == 0.0
    assert len(orders) > 1  # the activation order is redrawn every period


# ------------------------------------------------------------ decision rules
@pytest.mark.parametrize(
    "overrides",
    [
        {"formulation": "planner", "n_households": 3, "n_capital_goods": 2},
        {"formulation": "market", "n_households": 3, "n_capital_goods": 2},
        {"formulation": "market", "n_households": 2, "firms_per_good": 3},
    ],
)
def test_steady_state_share_keeps_deterministic_economy_at_steady_state(overrides):
    """Known answer: with Z = 1 and K = K_ss, spending phi N^h delta^2 K^2 / (M Y) (half for the planner)
    buys exactly delta K, so capital stays at K_ss."""
    cfg = InvestmentConfig(tfp_values=(1.0,), **overrides)
    model = InvestmentModel(cfg, seed=0, mode="agents")
    k_ss = model.k_ss
    for _ in range(20):
        model.step()
    caps = np.array([h.capital for h in model.households])
    np.testing.assert_allclose(caps, k_ss, rtol=1e-12)
    s = steady_state_share(cfg)
    y = k_ss**cfg.alpha
    assert model.households[0].consumption == pytest.approx((1 - cfg.n_capital_goods * s) * y, rel=1e-12)


def test_posted_markup_zero_reproduces_competitive_posting():
    cfg_c = InvestmentConfig(n_households=3, formulation="market", market="posted", firms_per_good=2, k_init_spread=0.4)
    cfg_d = InvestmentConfig(
        n_households=3, formulation="market", market="posted", firms_per_good=2, k_init_spread=0.4, firms="decision"
    )
    a = InvestmentModel(cfg_c, seed=1)
    b = InvestmentModel(cfg_d, seed=1, rules={"firms": CompetitiveSupply(cfg_d)})
    c = InvestmentModel(cfg_d, seed=1, rules={"firms": PostedMarkup(cfg_d, 0.3)})
    for _ in range(15):
        for m in (a, b, c):
            m.step()
    np.testing.assert_allclose(
        [h.total_capital for h in b.households], [h.total_capital for h in a.households], rtol=1e-12
    )
    # a markup raises the price and lowers what is produced
    assert c.last_price[0] > 1.1 * a.last_price[0]
    assert sum(f.produced for f in c.firms[0]) < sum(f.produced for f in a.firms[0])


def test_rules_work_on_numpy_and_torch_batches():
    cfg = InvestmentConfig(n_capital_goods=3)
    obs_np = np.ones((5, 4, 7))
    obs_t = torch.ones((5, 4, 7))
    for rule in (FixedShare(0.2, 3), SteadyStateShare(cfg), RandomShare(np.random.default_rng(0), 3)):
        a_np, a_t = rule.act(obs_np), rule.act(obs_t)
        assert a_np.shape == (5, 4, 3) and isinstance(a_np, np.ndarray)
        assert tuple(a_t.shape) == (5, 4, 3) and isinstance(a_t, torch.Tensor)
        assert (a_np >= 0).all() and (a_np.sum(-1) <= 1 + 1e-12).all()
    with pytest.raises(ConfigError):
        FixedShare(0.6, 2)


# ------------------------------------------------------------ DataCollector
def test_datacollector_shapes_and_values():
    cfg = InvestmentConfig(n_households=3, n_capital_goods=2, formulation="market", market="posted", firms_per_good=2)
    model = InvestmentModel(cfg, seed=0)
    assert len(model.agents_by_type[Household]) == 3 and len(model.agents_by_type[CapitalFirm]) == 4
    for _ in range(6):
        model.step()
    mv = model.datacollector.get_model_vars_dataframe()
    assert mv.shape == (6, 6)
    assert list(mv.columns) == ["capital", "output", "consumption", "investment", "price", "welfare"]
    hv = model.datacollector.get_agenttype_vars_dataframe(Household)
    fv = model.datacollector.get_agenttype_vars_dataframe(CapitalFirm)
    assert hv.shape == (6 * 3, 8) and fv.shape == (6 * 4, 6)
    # model-level means are the means of the agent-level records
    last = hv.xs(6, level="Step")
    assert mv["consumption"].iloc[-1] == pytest.approx(last["consumption"].mean(), rel=1e-12)
    assert mv["capital"].iloc[-1] == pytest.approx(last["capital"].mean() / 2, rel=1e-12)
    assert mv["welfare"].iloc[-1] == pytest.approx(np.log(last["consumption"]).sum(), rel=1e-12)


def test_model_same_seed_same_run_and_seed_matters():
    cfg = InvestmentConfig(n_households=3, formulation="market", market="posted", firms_per_good=2, k_init_spread=0.3)

    def run(seed):
        m = InvestmentModel(cfg, seed=seed, rules=RandomShare(np.random.default_rng(seed), 1, 0.3))
        for _ in range(10):
            m.step()
        return m.datacollector.get_model_vars_dataframe().to_numpy()

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))
