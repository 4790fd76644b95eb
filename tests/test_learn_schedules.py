"""Training schedules and the planner's per-household PPO ratio.

* ``lr_schedule = "linear"`` and ``std_end``: the learning rate and the exploration noise follow their stated
  schedules, are functions of the iterations done (so a resumed run repeats a straight one bit for bit), and the
  noise is not learned while it is scheduled.
* ``ppo_ratio = "per_unit"``: a slot that acts for several households gets one probability ratio per household;
  the joint log-probability is their sum, and per-household clipping lets a 4-household planner move its
  policy several times further per update than the joint ratio does.
"""

from __future__ import annotations

import math

import pytest
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.errors import ConfigError
from abm_markets.learn import sources as src
from abm_markets.learn.glue import _PerUnitNormal
from abm_markets.learn.train import TrainConfig, Trainer, train
from abm_markets.runs import RunContext


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for lrn in trainer.learners.values() for p in lrn.algorithms.parameters()]


def test_linear_learning_rate_and_noise_schedules() -> None:
    eco = InvestmentEconomy(InvestmentConfig())
    cfg = TrainConfig(
        n_economies=8,
        rollout_len=4,
        iterations=4,
        minibatch=32,
        checkpoint_every=0,
        lr=1e-2,
        lr_schedule="linear",
        lr_end=0.1,
        init_log_std=0.0,
        std_end=0.1,
    )
    tr = Trainer(eco, cfg, seed=0)
    rows = train(tr)
    assert [r["lr"] for r in rows] == pytest.approx([1e-2 * (1 - 0.9 * i / 4) for i in range(4)])
    assert [r["policy_std"] for r in rows] == pytest.approx([0.1 ** (i / 4) for i in range(4)])
    actor = tr.learners["planner"].algorithms[0].policy.actor
    assert not actor.log_std.requires_grad
    assert float(actor.log_std[0]) == pytest.approx(math.log(0.1) * 3 / 4)  # the last iteration's value
    opt = tr.learners["planner"].algorithms[0]._optimizers[0]._optim
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-2 * (1 - 0.9 * 3 / 4))
    # the default leaves both alone: constant rate, learned noise
    plain = Trainer(eco, TrainConfig(n_economies=8, rollout_len=4, iterations=1, minibatch=32), seed=0)
    row = train(plain)[-1]
    assert "lr" not in row and "policy_std" not in row
    assert plain.learners["planner"].algorithms[0].policy.actor.log_std.requires_grad


def test_scheduled_run_resumes_bit_for_bit(tmp_path) -> None:
    eco = InvestmentEconomy(InvestmentConfig(n_households=2))
    cfg = TrainConfig(
        n_economies=16,
        rollout_len=8,
        iterations=4,
        minibatch=64,
        checkpoint_every=2,
        lr_schedule="linear",
        std_end=0.2,
        policy_average=0.3,
        credit="difference",
        credit_path="mean",
        credit_horizon=4,
    )
    straight = Trainer(eco, cfg, seed=3)
    train(straight)
    ctx = RunContext(out=tmp_path, seed=3, device=torch.device("cpu"), progress_enabled=False)
    # an interrupted run (stopped after 2 of its 4 iterations; a run resumed with more iterations stretches the
    # schedules over the new total instead)
    train(Trainer(eco, cfg, seed=3), ctx, evaluate=lambda t: {}, eval_every=1, stop=lambda rows: len(rows) >= 2)
    assert (tmp_path / "checkpoints" / "iter000002.pt").exists()
    ctx2 = RunContext(out=tmp_path, seed=3, device=torch.device("cpu"), resume=True, progress_enabled=False)
    resumed = Trainer(eco, cfg, seed=3)
    rows = train(resumed, ctx2)
    assert [r["iteration"] for r in rows] == [3, 4]
    assert all(torch.equal(a, b) for a, b in zip(_params(straight), _params(resumed), strict=True))
    assert straight.averaged is not None and resumed.averaged is not None
    assert all(
        torch.equal(a, b) for a, b in zip(straight.averaged["planner"], resumed.averaged["planner"], strict=True)
    )


def test_policy_average_deploys_the_moving_average_of_the_actor() -> None:
    """``policy_average = w``: after each iteration the deployed actor is ``(1 - w) avg + w theta`` (the first
    iteration's actor to begin with); ``decide`` plays it and leaves the training actor as it was."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=2))
    cfg = TrainConfig(n_economies=8, rollout_len=8, iterations=3, minibatch=32, policy_average=0.25)
    tr = Trainer(eco, cfg, seed=1)
    iterates = []
    for _ in range(3):
        tr.iteration()
        iterates.append([p.detach().clone() for p in tr._actor_params("planner")])
    expect = [p.clone() for p in iterates[0]]
    for it in iterates[1:]:
        expect = [0.75 * e + 0.25 * p for e, p in zip(expect, it, strict=True)]
    assert tr.averaged is not None
    assert all(torch.allclose(a, e, atol=1e-7) for a, e in zip(tr.averaged["planner"], expect, strict=True))
    assert not all(torch.equal(a, p) for a, p in zip(tr.averaged["planner"], iterates[-1], strict=True))
    state = eco.initial_state(4, torch.Generator().manual_seed(0))
    played = tr.decide()(state)
    assert all(torch.equal(p, q) for p, q in zip(tr._actor_params("planner"), iterates[-1], strict=True))
    last = Trainer(eco, TrainConfig(**{**cfg.to_dict(), "policy_average": 0.0}), seed=1)
    last.load_state_dict(tr.state_dict())
    last.averaged = None
    with torch.no_grad():
        for p, a in zip(last._actor_params("planner"), tr.averaged["planner"], strict=True):
            p.copy_(a)
    assert all(torch.equal(played[k], v) for k, v in last.decide()(state).items())
    averaged, tr.averaged = tr.averaged, None  # the last iterate plays differently
    assert not all(torch.equal(played[k], v) for k, v in tr.decide()(state).items())
    tr.averaged = averaged


def test_per_unit_distribution_sums_to_the_joint_one() -> None:
    g = torch.Generator().manual_seed(0)
    loc, scale = torch.randn(5, 8, generator=g), torch.rand(5, 8, generator=g) + 0.1
    act = torch.randn(5, 8, generator=g)
    per_unit = _PerUnitNormal(loc, scale, units=4)
    joint = torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)
    assert per_unit.log_prob(act).shape == (5, 4)
    assert torch.allclose(per_unit.log_prob(act).sum(-1), joint.log_prob(act))
    assert torch.allclose(per_unit.entropy().sum(-1), joint.entropy())
    assert per_unit.sample().shape == (5, 8)


def _mean_shift(ratio: str, households: int) -> float:
    """Mean |change| of a planner's policy mean (raw units) after 3 PPO iterations."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=households))
    cfg = TrainConfig(
        n_economies=64, rollout_len=16, iterations=3, minibatch=256, checkpoint_every=0, init_shift=0.7, ppo_ratio=ratio
    )
    tr = Trainer(eco, cfg, seed=1)
    state = eco.initial_state(32, torch.Generator().manual_seed(2))
    lrn = tr.learners["planner"]
    before = lrn.act_stored(lrn.stored_obs(state), explore=False, generator=None)[1]
    train(tr)
    after = lrn.act_stored(lrn.stored_obs(state), explore=False, generator=None)[1]
    return float((after - before).abs().mean())


def test_per_unit_ratio_lets_a_planner_for_many_households_move() -> None:
    """The joint ratio of 10 households' actions is clipped as one: each household's mean moves much less."""
    joint, per_unit = _mean_shift("joint", 10), _mean_shift("per_unit", 10)
    assert per_unit > 2.0 * joint, (per_unit, joint)


def test_per_unit_ratio_is_the_joint_one_for_a_single_household() -> None:
    eco = InvestmentEconomy(InvestmentConfig())
    rows = {}
    for ratio in ("joint", "per_unit"):
        cfg = TrainConfig(n_economies=16, rollout_len=8, iterations=2, minibatch=64, ppo_ratio=ratio)
        tr = Trainer(eco, cfg, seed=4)
        rows[ratio] = (train(tr)[-1]["mean_reward_planner"], _params(tr))
    assert rows["joint"][0] == rows["per_unit"][0]
    assert all(torch.equal(a, b) for a, b in zip(rows["joint"][1], rows["per_unit"][1], strict=True))
    assert src.steady_state_share(eco) > 0


# ------------------------------------------------------------------------------------- difference credit
def _replay(tr: Trainer, periods: int) -> tuple[dict, list[torch.Tensor]]:
    """A short rollout of the planner recorded with generator states (an economy without ``draw_noise``)."""
    return _recorded(tr, "planner", periods, noise=False)


def test_difference_advantage_is_the_effect_of_one_households_deviation() -> None:
    """Autograd through the replayed step against an explicit replay: setting household i's action at t back to its
    mean changes the rollout's return (plus the critic's end value) by gamma^t times its difference advantage."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=3))
    cfg = TrainConfig(n_economies=4, rollout_len=6, iterations=1, minibatch=24, init_log_std=-3.0, credit="difference")
    tr = Trainer(eco, cfg, seed=0)
    train(tr)  # fitted normalisers and a trained critic
    replay, dones = _replay(tr, 6)
    adv = tr._difference_advantages("planner", replay, dones)  # [T, B, 1, units]
    assert adv.shape == (6, 4, 1, 3)
    raws = [r["planner"] for r in replay["raws"]]
    base = _path_return(tr, replay, raws)
    lrn = tr.learners["planner"]
    for t, b, i in ((0, 0, 0), (2, 1, 2), (5, 3, 1)):
        mean = lrn.policy_mean(lrn.stored_obs(replay["state"][t]))
        moved = [r.clone() for r in raws]
        moved[t][b, 0, i] = mean[b, 0, i]
        exact = base - _path_return(tr, replay, moved)
        assert exact != 0.0
        assert float(adv[t, b, 0, i]) * tr.cfg.gamma**t == pytest.approx(exact, rel=0.05)


def _path_return(tr: Trainer, replay: dict, held: list[torch.Tensor | None], seed: int = 0, horizon: int = 0) -> float:
    """``sum_t gamma^t r_t + gamma^T V(s_T)`` of the recorded rollout replayed by hand: from the first recorded state
    with the recorded shocks, the planner plays ``held[t]`` where given and its policy's mean otherwise; then
    ``horizon`` periods at the policy's mean with shocks from ``seed``, closed by ``gamma^(T + horizon) V``."""
    lrn, gamma = tr.learners["planner"], tr.cfg.gamma
    gen = torch.Generator()
    state, total = replay["state"][0], 0.0
    with torch.no_grad():
        for t, raw in enumerate(held):
            gen.set_state(replay["gen"][t])
            act = lrn.policy_mean(lrn.stored_obs(state)) if raw is None else raw
            state, out = tr.economy.step(state, tr.actions(state, {"planner": act}), gen)
            total += gamma**t * float(lrn.scale_reward(lrn.group.reward(out).double()).sum())
        gen.manual_seed(seed)
        for h in range(horizon):
            act = lrn.policy_mean(lrn.stored_obs(state))
            state, out = tr.economy.step(state, tr.actions(state, {"planner": act}), gen)
            total += gamma ** (len(held) + h) * float(lrn.scale_reward(lrn.group.reward(out).double()).sum())
        total += gamma ** (len(held) + horizon) * float(lrn.state_value(lrn.stored_obs(state)).double().sum())
    return total


def test_mean_path_advantage_with_a_continued_horizon_is_a_deviation_from_the_mean_path() -> None:
    """``credit_path = "mean"``, ``credit_horizon = 12``: household i's advantage at t, times gamma^t, is the change
    of the mean path's return (continued 12 periods at the policy's mean, then the critic) when i plays its
    recorded action instead of the mean at t, later rollout actions held at the mean path's."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=3))
    cfg = TrainConfig(
        n_economies=4,
        rollout_len=6,
        iterations=1,
        minibatch=24,
        init_log_std=-3.0,
        credit="difference",
        credit_path="mean",
        credit_horizon=12,
    )
    tr = Trainer(eco, cfg, seed=0)
    train(tr)
    replay, dones = _replay(tr, 6)
    probe = torch.Generator()
    probe.set_state(tr.update_gen.get_state())
    seed = int(torch.randint(0, 2**62, (1,), generator=probe).item())
    adv = tr._difference_advantages("planner", replay, dones)
    lrn = tr.learners["planner"]
    # the mean path's own actions, recorded once, so that a deviation at t holds the later ones where they were
    mean_raws, state, gen = [], replay["state"][0], torch.Generator()
    with torch.no_grad():
        for t in range(6):
            gen.set_state(replay["gen"][t])
            mean_raws.append(lrn.policy_mean(lrn.stored_obs(state)))
            state, _ = eco.step(state, tr.actions(state, {"planner": mean_raws[-1]}), gen)
    base = _path_return(tr, replay, mean_raws, seed, 12)
    assert base == pytest.approx(_path_return(tr, replay, [None] * 6, seed, 12), rel=1e-9)
    for t, b, i in ((0, 0, 0), (2, 1, 2), (5, 3, 1)):
        dev = replay["raws"][t]["planner"] - lrn.policy_mean(lrn.stored_obs(replay["state"][t]))
        moved = [r.clone() for r in mean_raws]
        moved[t][b, 0, i] += dev[b, 0, i]
        exact = _path_return(tr, replay, moved, seed, 12) - base
        assert exact != 0.0
        assert float(adv[t, b, 0, i]) * cfg.gamma**t == pytest.approx(exact, rel=0.05)
    # without the continuation the critic closes the path at T: a different advantage
    plain = Trainer(eco, TrainConfig(**{**cfg.to_dict(), "credit_horizon": 0}), seed=0)
    plain.load_state_dict(tr.state_dict())
    assert not torch.allclose(plain._difference_advantages("planner", replay, dones), adv)


def _recorded(tr: Trainer, group: str, periods: int, noise: bool = True) -> tuple[dict, list[torch.Tensor]]:
    """A short rollout of one learning group recorded as the trainer records it for the gradient credits: with
    pre-drawn shocks (``noise``) or with the engine generator's state before each period."""
    lrn, eco = tr.learners[group], tr.economy
    replay: dict[str, list] = {"state": [], "noise" if noise else "gen": [], "raws": []}
    dones, state = [], tr.state
    for _ in range(periods):
        _, raw = lrn.act_stored(lrn.stored_obs(state), explore=True, generator=tr.agent_gen)
        replay["state"].append(state)
        replay["raws"].append({group: raw})
        if noise:
            u = eco.draw_noise(state.batch_size, tr.env_gen)
            replay["noise"].append(u)
            state, _ = eco.step(state, tr.actions(state, {group: raw}), noise=u)
        else:
            replay["gen"].append(tr.env_gen.get_state())
            state, _ = eco.step(state, tr.actions(state, {group: raw}), tr.env_gen)
        dones.append(torch.zeros(state.batch_size, dtype=torch.bool))
    return replay, dones


def test_difference_credit_on_the_update_economies_equals_the_full_replay_there() -> None:
    """With recorded shocks (``draw_noise``) the replay runs on the update's economies only: the same advantages
    there as the replay of the whole batch (economies are independent given their shocks)."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=3))
    cfg = TrainConfig(
        n_economies=8,
        rollout_len=6,
        iterations=1,
        minibatch=24,
        init_log_std=-3.0,
        credit="difference",
        credit_path="mean",
        update_streams=3,
    )
    tr = Trainer(eco, cfg, seed=0)
    train(tr)
    replay, dones = _recorded(tr, "planner", 6)
    rows = tr._update_rows()
    assert rows is not None and rows.tolist() == sorted(set(rows.tolist())) and len(rows) == 3
    full = tr._difference_advantages("planner", replay, dones)
    part = tr._difference_advantages("planner", replay, dones, rows)
    assert part.shape == (6, 3, 1, 3)
    torch.testing.assert_close(part, full[:, rows], rtol=1e-5, atol=1e-7)
    assert float(full.abs().max()) > 0


def test_difference_credit_moves_a_ten_household_planner_to_the_steady_state() -> None:
    """From about twice the steady-state share (long-run K / K_ss = 1.43) to within 5% of the steady state."""
    from abm_markets.learn import evaluate as ev

    eco = InvestmentEconomy(InvestmentConfig(n_households=10))
    path = ev.make_eval_path(eco, 16, 300, torch.Generator().manual_seed(1))
    cfg = TrainConfig(
        n_economies=64,
        rollout_len=64,
        iterations=25,
        minibatch=2048,
        init_shift=0.7,
        lr_schedule="linear",
        init_log_std=-1.2,
        std_end=0.1,
        k_spread_common=0.3,
        vf_coef=8.0,
        credit="difference",
        checkpoint_every=0,
    )
    tr = Trainer(eco, cfg, seed=0)
    before = ev.welfare(eco, path, tr.decide())["mean_capital_ratio"]
    train(tr)
    after = ev.welfare(eco, path, tr.decide())["mean_capital_ratio"]
    assert before > 1.3
    assert abs(after - 1.0) < 0.05, after


def test_common_capital_factor_moves_aggregate_capital() -> None:
    eco = InvestmentEconomy(InvestmentConfig(n_households=100))
    g = torch.Generator().manual_seed(0)
    plain = eco.training_state(512, g, 0.3).capital.mean((1, 2)) / eco.k_ss
    common = eco.training_state(512, g, 0.3, common=0.3).capital.mean((1, 2)) / eco.k_ss
    assert float(plain.std()) < 0.03  # the mean of 100 independent draws hardly moves
    assert float(common.std()) > 0.12  # uniform factor on [0.7, 1.3]: sd 0.17
    with pytest.raises(ConfigError, match="credit"):
        TrainConfig(algorithm="sac", credit="difference")


def test_own_credit_is_the_effect_of_a_households_deviation_on_its_own_return() -> None:
    """credit = "own" (market households, independent learners): household i's advantage at t, times gamma^t, is the
    change of *its own* mean-path return (plus its critic value at the end) when it plays its recorded action
    instead of the mean at t, the others at the mean path; the random-sign probes estimate it (many probes here).
    The cooperative difference credit (sum of every household's return) gives another answer: under Walrasian
    clearing household i's spending raises the price the others pay."""
    eco = InvestmentEconomy(InvestmentConfig(formulation="market", n_households=3))
    cfg = TrainConfig(
        groups=("households",),
        n_economies=4,
        rollout_len=5,
        iterations=1,
        minibatch=60,
        init_log_std=-2.0,
        credit="own",
        credit_path="mean",
        credit_probes=400,
    )
    tr = Trainer(eco, cfg, seed=0)
    train(tr)
    lrn = tr.learners["households"]
    replay, dones = _recorded(tr, "households", 5)
    adv = tr._difference_advantages("households", replay, dones)  # [T, B, 3, 1]
    gamma = cfg.gamma

    def own_returns(held: list[torch.Tensor]) -> torch.Tensor:
        st, total = replay["state"][0], torch.zeros(4, 3, dtype=torch.float64)
        with torch.no_grad():
            for t, act in enumerate(held):
                st, out = eco.step(st, tr.actions(st, {"households": act}), noise=replay["noise"][t])
                total += gamma**t * lrn.scale_reward(lrn.group.reward(out).double())
            total += gamma ** len(held) * lrn.state_value(lrn.stored_obs(st)).double()
        return total

    mean_raws, st = [], replay["state"][0]
    with torch.no_grad():
        for t in range(5):
            mean_raws.append(lrn.policy_mean(lrn.stored_obs(st)))
            st, _ = eco.step(st, tr.actions(st, {"households": mean_raws[-1]}), noise=replay["noise"][t])
    base = own_returns(mean_raws)
    for t, b, i in ((0, 0, 0), (2, 1, 2), (4, 3, 1)):
        dev = replay["raws"][t]["households"] - lrn.policy_mean(lrn.stored_obs(replay["state"][t]))
        moved = [r.clone() for r in mean_raws]
        moved[t][b, i] += dev[b, i]
        exact = float(own_returns(moved)[b, i] - base[b, i])
        assert exact != 0.0
        assert float(adv[t, b, i, 0]) * gamma**t == pytest.approx(exact, rel=0.08)
    team = Trainer(eco, TrainConfig(**{**cfg.to_dict(), "credit": "difference"}), seed=0)
    team.load_state_dict(tr.state_dict())
    assert not torch.allclose(team._difference_advantages("households", replay, dones), adv, rtol=0.05)
