"""The economy protocol: shipped economies ported bit for bit, information structures per group and subgroup.

``tests/data/port_trajectories.pt`` was recorded with the engines *before* the protocol (commit 656064e) by
``tests/data/port_trajectories.py``; here the same cases run through the protocol's ``step`` with
``{group: [B, n, ...]}`` actions and ``observe(state, group)``, and every state, outcome and observation tensor
must be equal, bit for bit.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from abm_markets.engine import InvestmentConfig, make_economy
from abm_markets.engine.pricing import LogitDuopolyConfig
from abm_markets.engine.protocol import parse_information, where_state
from abm_markets.errors import ConfigError

DATA = Path(__file__).parent / "data"


def _recorder():
    spec = importlib.util.spec_from_file_location("port_trajectories", DATA / "port_trajectories.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _protocol_step(eco, state, actions, gen):
    """Actions reshaped to the protocol's ``[B, n, *agent_shape]`` per action key."""
    acts = {}
    for key, a in actions.items():
        g = next(g for g in eco.agent_groups() if g.acts_for == key)
        acts[key] = a.reshape(a.shape[0], g.count, *g.action_space.shape)
    assert set(acts) == set(eco.action_keys)
    return eco.step(state, acts, gen)


def _protocol_observe(eco, state):
    g = eco.default_group
    return {g: eco.observe(state, g), "global": eco.global_state(state)}


def test_port_is_bit_for_bit() -> None:
    rec = _recorder()
    ref = torch.load(DATA / "port_trajectories.pt", weights_only=True)
    new = rec.record(step_fn=_protocol_step, observe_fn=_protocol_observe)
    assert set(new) == set(ref)
    for case, tensors in ref.items():
        assert set(new[case]) == set(tensors), case
        for key, value in tensors.items():
            assert new[case][key].dtype == value.dtype, (case, key)
            assert torch.equal(new[case][key], value), f"{case}: {key} differs from the pre-protocol engine"


def test_planner_observation_is_households_own_blocks() -> None:
    eco = make_economy("InvestmentPlanner-v1", InvestmentConfig(n_households=3, n_capital_goods=2, k_init_spread=0.5))
    s = eco.initial_state(4, torch.Generator().manual_seed(0))
    hh = eco.observe(s, "households")  # default blocks own_capital, own_tfp, agg_capital, agg_tfp
    pl = eco.observe(s, "planner")
    assert pl.shape == (4, 1, 3 * 3)
    assert torch.equal(pl.reshape(4, 3, 3), hh[..., :3])


def test_subgroup_information_masks_and_flags() -> None:
    cfg = InvestmentConfig(
        formulation="market",
        n_households=4,
        k_init_spread=0.5,
        information=("households[:2]=own_capital+own_tfp+all_capital", "households[2:]=own_capital+own_tfp"),
    )
    eco = make_economy("InvestmentMarket-v1", cfg)
    s = eco.initial_state(3, torch.Generator().manual_seed(1))
    obs = eco.observe(s, "households")
    assert obs.shape == (3, 4, 1 + 1 + 4 + 1) and eco.obs_dim("households") == 7
    k = s.capital[..., 0] / eco.k_ss
    # informed households see everybody's capital and flag 1; the others zeros and flag 0
    assert torch.allclose(obs[:, 0, 2:6], k) and torch.allclose(obs[:, 1, 2:6], k)
    assert torch.all(obs[:, 2:, 2:6] == 0)
    assert torch.all(obs[:, :2, 6] == 1) and torch.all(obs[:, 2:, 6] == 0)
    space = eco.observation_space("households")
    assert space.shape == (7,) and all(space.contains(o.numpy().astype("float32")) for o in obs[0])


def test_duopoly_subgroups_give_one_firm_less_information() -> None:
    cfg = LogitDuopolyConfig(memory=2, information=("firms[:1]=own_prices+rival_prices", "firms[1:]=own_prices"))
    eco = make_economy("LogitDuopoly-v1", cfg)
    s = eco.initial_state(5, torch.Generator().manual_seed(2))
    obs = eco.observe(s)
    assert obs.shape == (5, 2, 2 + 2 + 1)
    full = make_economy("LogitDuopoly-v1", LogitDuopolyConfig(memory=2)).observe(s)
    assert torch.equal(obs[:, 0, :4], full[:, 0]) and torch.all(obs[:, 1, 2:] == 0)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (("workers=own_capital",), "unknown agent group"),
        (("households=own_wealth",), "unknown observation block"),
        (("households[:1]=own_capital", "households[:2]=own_tfp"), "in two subgroups"),
        (("households[:1]=own_capital",), "are in none"),
        (("households[5:]=own_capital",), "selects no agent"),
        (("households own_capital",), "is invalid"),
    ],
)
def test_bad_information_is_one_line(entries: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        InvestmentConfig(n_households=3, information=entries)
    assert "\n" not in str(err.value)


def test_where_state_resets_only_finished_economies() -> None:
    eco = make_economy("InvestmentMarket-v1", InvestmentConfig(formulation="market", n_households=2))
    a = eco.training_state(4, torch.Generator().manual_seed(0), 0.3)
    b = eco.training_state(4, torch.Generator().manual_seed(1), 0.3)
    done = torch.tensor([True, False, True, False])
    m = where_state(done, a, b)
    assert torch.equal(m.capital[0], a.capital[0]) and torch.equal(m.capital[1], b.capital[1])
    groups = eco.groups
    assert parse_information((), groups).subgroups(groups[0])[0].members == (0, 1)


def test_best_response_against_frozen_others_is_served_by_the_protocol() -> None:
    """The exploitability mechanics on any economy: a shared household policy is trained and frozen; then
    household 0 alone learns against the frozen others (``learning_slots`` + the frozen policy as the fixed
    source). The others' actions are the frozen policy's, exactly; only household 0's policy is new."""
    from abm_markets.learn.train import TrainConfig, Trainer

    eco = make_economy("InvestmentMarket-v1", InvestmentConfig(formulation="market", n_households=3))
    base = TrainConfig(groups=("households",), n_economies=8, rollout_len=8, iterations=2, minibatch=64)
    shared = Trainer(eco, base, seed=0)
    for _ in range(base.iterations):
        shared.iteration()
    frozen = shared.decide()
    br = Trainer(
        eco,
        base,
        seed=1,
        learning_slots={"households": (0,)},
        fixed={"households": lambda s: frozen(s)["households"]},
    )
    assert br.learners["households"].group.n_slots == 1
    for _ in range(base.iterations):
        br.iteration()
    s = eco.initial_state(16, torch.Generator().manual_seed(3))
    acts = br.decide()(s)["households"]
    assert torch.equal(acts[:, 1:], frozen(s)["households"][:, 1:])
    assert not torch.equal(acts[:, 0], frozen(s)["households"][:, 0])


def test_trainer_on_the_protocol_reproduces_the_pre_protocol_trainer() -> None:
    """Two iterations' metrics of three runs (PPO planner, PPO households, DQN planner) recorded with the trainer
    before the protocol (656064e) are reproduced by the protocol trainer. Networks are float32, so the comparison
    allows 1e-6 relative (on the machine that recorded them the numbers are identical)."""
    import json

    from abm_markets.engine import InvestmentEconomy
    from abm_markets.learn.train import TrainConfig, Trainer

    ref = json.loads((DATA / "train_metrics_656064e.json").read_text())
    cases = {
        "planner": (InvestmentConfig(), {"n_economies": 16, "rollout_len": 8, "minibatch": 64}, 3),
        "households": (
            InvestmentConfig(formulation="market", n_households=3),
            {"groups": ("households",), "n_economies": 16, "rollout_len": 8, "minibatch": 64},
            3,
        ),
        "dqn": (InvestmentConfig(), {"algorithm": "dqn", "n_economies": 8, "rollout_len": 6, "minibatch": 16}, 4),
    }
    for name, (cfg, settings, seed) in cases.items():
        tr = Trainer(InvestmentEconomy(cfg), TrainConfig(**settings, iterations=2, checkpoint_every=0), seed=seed)
        for want in ref[name]:
            got = tr.iteration()
            for key, value in want.items():
                assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), (name, key)
