"""Learning on the batched engine: welfare measures, learning thresholds, determinism, checkpoints, sources.

Reference numbers (default calibration, log utility): the DP policy is the value-function-iteration solution;
the deterministic steady-state saving-share rule is within ~0.02% consumption-equivalent (CE) of it, so the CE
gap alone cannot tell a trained policy from that rule: the learning tests start from a neutral action
parametrisation (``action_center = "none"``: zero raw action spends half of output, ~33% CE below DP) or from
the scenario's default shifted start (about twice the steady-state share, ~2.6% CE below DP), and check that
training passes a threshold the start fails.
"""

from __future__ import annotations

import math

import pytest
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.learn import evaluate as ev
from abm_markets.learn import sources as src
from abm_markets.learn.experiments import dp_reference, train_planner
from abm_markets.learn.train import TrainConfig, Trainer, train
from abm_markets.runs import RunContext


@pytest.fixture(scope="module")
def economy() -> InvestmentEconomy:
    return InvestmentEconomy(InvestmentConfig())


@pytest.fixture(scope="module")
def solution(economy: InvestmentEconomy):
    from abm_markets.solvers.investment import solve_vfi

    return solve_vfi(economy.cfg, n_k=101)


@pytest.fixture(scope="module")
def reference(economy: InvestmentEconomy, solution):
    return dp_reference(
        economy,
        solution,
        torch.Generator().manual_seed(11),
        eval_paths=64,
        eval_periods=600,
        ergodic_paths=32,
        ergodic_periods=50,
    )


def _params(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for lrn in trainer.learners.values() for p in lrn.algorithms.parameters()]


# ------------------------------------------------------------------------------------------- welfare measures
@pytest.mark.parametrize("crra", [1.0, 2.0, 0.5])
def test_ce_gap_recovers_a_known_consumption_cut(crra: float) -> None:
    """Cut consumption by lambda in every period: ce_gap_pct must return 100 * lambda (closed form of CRRA)."""
    eco = InvestmentEconomy(InvestmentConfig(crra=crra))
    path = ev.make_eval_path(eco, 16, 300, torch.Generator().manual_seed(0))
    r = ev.rollout(eco, path, src.as_decide(src.steady_state_share_source(eco)))
    w = ev.discount_weights(eco.cfg.beta, path.periods)
    from abm_markets.engine.preferences import crra_utility

    base = float((crra_utility(r["consumption"], crra).sum(-1) * w[:, None]).sum(0).mean())
    assert base == pytest.approx(float((r["utility"].sum(-1) * w[:, None]).sum(0).mean()), rel=1e-12)
    for lam in (0.001, 0.05, 0.3):
        cut = float((crra_utility((1 - lam) * r["consumption"], crra).sum(-1) * w[:, None]).sum(0).mean())
        got = ev.ce_gap_pct(cut, base, beta=eco.cfg.beta, crra=crra, periods=path.periods)
        assert got == pytest.approx(100 * lam, rel=1e-9)
    # the seed's infinite-horizon log formula is the T -> inf limit
    assert ev.ce_gap_pct(40.0, 41.0, beta=0.98, crra=1.0) == pytest.approx(100 * (1 - math.exp(-0.02)), rel=1e-12)


def test_dp_source_table_matches_solver(economy: InvestmentEconomy, solution, reference) -> None:
    """The tabulated DP source agrees with maximising the Bellman equation at every state (K' within 1e-6 K)."""
    exact = src.as_decide(src.DPSource(economy, solution, table_size=None))
    assert ev.policy_error(economy, reference.ergodic, reference.decide, exact) < 1e-6


def test_dp_policy_beats_rules(economy: InvestmentEconomy, reference) -> None:
    """DP welfare is the upper bound: the steady-state rule and random shares lose, by ~0.02% and much more."""
    rule = ev.welfare(economy, reference.path, src.as_decide(src.steady_state_share_source(economy)))["welfare"]
    rnd = src.RandomSource(economy, torch.Generator().manual_seed(3))
    rand = ev.welfare(economy, reference.path, src.as_decide(rnd))["welfare"]
    gap_rule = ev.ce_gap_pct(rule, reference.welfare, beta=0.98, crra=1.0, periods=reference.path.periods)
    gap_rand = ev.ce_gap_pct(rand, reference.welfare, beta=0.98, crra=1.0, periods=reference.path.periods)
    assert 0.0 < gap_rule < 0.1
    assert gap_rand > 1.0


# ---------------------------------------------------------------------------------------------- learning
def test_ppo_learns_planner_from_neutral_start(economy: InvestmentEconomy, reference) -> None:
    """PPO from a neutral parametrisation closes over a third of a ~33% CE gap in 25 iterations (~15 s).

    Measured (seed 0, CPU): 32.7% -> 18.6%.
    """
    cfg = TrainConfig(action_center="none", n_economies=128, rollout_len=64, iterations=25, checkpoint_every=0)
    trainer = Trainer(economy, cfg, seed=0)
    before = ev.welfare(economy, reference.path, trainer.decide())["welfare"]
    gap0 = ev.ce_gap_pct(before, reference.welfare, beta=0.98, crra=1.0, periods=reference.path.periods)
    train(trainer)
    after = ev.welfare(economy, reference.path, trainer.decide())["welfare"]
    gap1 = ev.ce_gap_pct(after, reference.welfare, beta=0.98, crra=1.0, periods=reference.path.periods)
    assert gap0 > 25.0
    assert gap1 < 0.65 * gap0


def test_ppo_learns_from_the_default_wrong_start(economy: InvestmentEconomy, reference) -> None:
    """The scenario's default start (action centre shifted by log 2: about twice the steady-state saving share)
    fails both thresholds; PPO passes them: CE gap 2.6% -> <= 0.1%, policy error 1.4% -> < 0.5%.

    Measured (seed 2, 20 iterations x 512 economies x 64 periods, CPU): gap 2.639% -> 0.010%, policy error
    0.109% (the steady-state rule's: 0.125%), Euler errors log10 mean -2.28 (DP: -8.3).
    """
    cfg = TrainConfig(n_economies=512, rollout_len=64, iterations=20, init_shift=math.log(2), checkpoint_every=0)
    _, summary = train_planner(economy, cfg, None, seed=2, ref=reference)
    assert summary["initial_welfare_gap_ce_pct"] > 1.0 and summary["initial_policy_error"] > 0.005
    assert summary["welfare_gap_ce_pct"] <= 0.1
    assert summary["policy_error"] < 0.005
    assert summary["euler_error_log10_mean_dp"] < -6  # the Euler check itself: DP satisfies its Euler equation
    assert summary["share_slope_logk_dp"] < 0 < summary["share_slope_logz_dp"]
    assert summary["train_env_steps"] == 20 * 512 * 64


def test_ppo_with_difference_credit_meets_the_scenario_target_from_the_wrong_start(
    economy: InvestmentEconomy, reference
) -> None:
    """The investment-planner default (difference credit along the mean path, continued 128 periods, averaged
    actor), on a smaller budget (256 economies x 64 periods x 20 iterations): from 2.6% CE and a policy error
    above the steady-state rule's to the issue's target, CE gap <= 0.02% and a policy error below the rule's."""
    cfg = TrainConfig(
        n_economies=256,
        rollout_len=64,
        iterations=20,
        init_shift=math.log(2),
        credit="difference",
        credit_path="mean",
        credit_horizon=128,
        policy_average=0.2,
        checkpoint_every=0,
    )
    _, summary = train_planner(economy, cfg, None, seed=0, ref=reference)
    assert summary["initial_welfare_gap_ce_pct"] > 1.0
    assert summary["initial_policy_error"] > summary["policy_error_steady_state_rule"]
    assert summary["welfare_gap_ce_pct"] <= 0.02
    assert summary["policy_error"] < summary["policy_error_steady_state_rule"]


def test_dqn_learns_discretised_shares_from_a_far_start(economy: InvestmentEconomy, reference) -> None:
    """DQN on the 41-point share grid (the DQN preset's settings, 20 of its 40 iterations: 64 economies x 32
    periods, 4 gradient steps per period) from the default wrong start: the untrained Q's greedy shares are more
    than 2% CE from DP, training brings them within 1% CE.

    Measured (seed 1, CPU): 2.26% -> 0.35% (seeds 0 and 2: 4.57% -> 0.86%, 19.9% -> 0.92%), 27 s. Its policy
    error (0.62%) stays above the steady-state rule's (0.12%): DQN does not yet learn the state dependence.
    """
    cfg = TrainConfig(
        algorithm="dqn",
        n_economies=64,
        rollout_len=32,
        iterations=20,
        minibatch=256,
        updates_per_step=4,
        init_shift=math.log(2),
        checkpoint_every=0,
    )
    trainer, summary = train_planner(economy, cfg, None, seed=1, ref=reference)
    assert summary["initial_welfare_gap_ce_pct"] > 2.0
    assert summary["welfare_gap_ce_pct"] <= 1.0
    assert trainer.env_steps == 20 * 64 * 32


def test_sac_replay_buffer_holds_engine_transitions(economy: InvestmentEconomy) -> None:
    """SAC's Tianshou replay buffer gets one stream per economy with the engine's scaled rewards.

    (SAC needs ~5k gradient steps to get past the myopic corner, too slow for a unit test; its learning result
    is in docs/learning.md.)
    """
    cfg = TrainConfig(algorithm="sac", n_economies=8, rollout_len=6, iterations=2, minibatch=16, checkpoint_every=0)
    tr = Trainer(economy, cfg, seed=4)
    rows = train(tr)
    lrn = tr.learners["planner"]
    buf = tr.buffers["planner"][0]
    assert len(buf) == 8 * 6  # the first rollout fits the normalisers and is not stored
    data = buf[buf.sample_indices(0)]
    assert abs(float(data.act.max())) < 1.0 and abs(float(data.act.min())) < 1.0  # tanh-squashed
    raw = data.rew * lrn.reward_std + lrn.reward_mean  # back to the planner's utility
    assert abs(raw.mean() - rows[-1]["mean_reward_planner"]) < 1e-6
    assert math.isfinite(rows[-1]["critic1_loss_planner"])


# ------------------------------------------------------------------------------------ determinism / state
def test_cpu_training_is_deterministic(economy: InvestmentEconomy) -> None:
    cfg = TrainConfig(n_economies=16, rollout_len=8, iterations=2, minibatch=64, checkpoint_every=0)
    runs = []
    for seed in (5, 5, 6):
        tr = Trainer(economy, cfg, seed=seed)
        rows = train(tr)
        runs.append((_params(tr), rows[-1]["mean_reward_planner"]))
    assert all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[1][0], strict=True))
    assert runs[0][1] == runs[1][1]
    assert not all(torch.equal(a, b) for a, b in zip(runs[0][0], runs[2][0], strict=True))


def test_checkpoint_round_trip_and_resume(tmp_path, economy: InvestmentEconomy) -> None:
    """Checkpoints load with weights_only=True; 2 + resumed 2 iterations == 4 straight (bit for bit, PPO); the
    policy rebuilt from a checkpoint is the deployed (averaged) one."""
    cfg = TrainConfig(n_economies=16, rollout_len=8, iterations=4, minibatch=64, checkpoint_every=2, policy_average=0.5)
    straight = Trainer(economy, cfg, seed=3)
    train(straight)

    ctx = RunContext(out=tmp_path, seed=3, device=torch.device("cpu"), progress_enabled=False)
    first = Trainer(economy, TrainConfig.from_overrides({"iterations": "2"}, base=cfg), seed=3)
    train(first, ctx)
    path = tmp_path / "checkpoints" / "iter000002.pt"
    ckpt = torch.load(path, weights_only=True)
    assert ckpt["iteration"] == 2

    policy = src.policy_from_checkpoint(economy, ckpt)
    state = economy.initial_state(8, torch.Generator().manual_seed(0))
    assert torch.equal(policy(state), first.decide()(state)["households"])
    assert first.averaged is not None  # the averaged actor differs from the last iterate
    assert not torch.equal(
        policy(state), first.actions(state, {"planner": first.learners["planner"].act(state)})["households"]
    )

    ctx2 = RunContext(out=tmp_path, seed=3, device=torch.device("cpu"), resume=True, progress_enabled=False)
    resumed = Trainer(economy, cfg, seed=3)
    rows = train(resumed, ctx2)
    assert [r["iteration"] for r in rows] == [3, 4]
    assert len(ctx2.metrics) == 4
    assert all(torch.equal(a, b) for a, b in zip(_params(straight), _params(resumed), strict=True))


# ------------------------------------------------------------------------------- multi-agent and sources
def test_mixed_population_and_per_agent_policies() -> None:
    """Four households: per-agent PPO policies; then two learned and two rule-based households in one economy."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=4))
    cfg = TrainConfig(
        groups=("households",),
        sharing="per_agent",
        n_economies=16,
        rollout_len=8,
        iterations=2,
        minibatch=64,
        checkpoint_every=0,
    )
    tr = Trainer(eco, cfg, seed=0)
    train(tr)
    lrn = tr.learners["households"]
    assert len(lrn.algorithms) == 4
    w = [next(iter(a.policy.actor.parameters())).detach() for a in lrn.algorithms]
    assert not torch.equal(w[0], w[1])

    learned = src.PolicySource(lrn)
    rule = src.ConstantShareSource(eco, 0.15)
    mixed = src.MixedSource(eco, [(learned, [0, 1]), (rule, [2, 3])])
    state = eco.initial_state(8, torch.Generator().manual_seed(1))
    act = mixed(state)
    assert torch.equal(act[:, :2], learned(state)[:, :2])
    assert torch.allclose(act[:, 2:], torch.full_like(act[:, 2:], 0.15))
    path = ev.make_eval_path(eco, 8, 50, torch.Generator().manual_seed(2))
    assert math.isfinite(ev.welfare(eco, path, src.as_decide(mixed))["welfare"])
    with pytest.raises(ValueError, match="exactly once"):
        src.MixedSource(eco, [(rule, [0, 1, 2])])


def test_central_critic_sees_global_state_actor_does_not() -> None:
    eco = InvestmentEconomy(InvestmentConfig(n_households=3))
    cfg = TrainConfig(
        groups=("households",),
        central_critic=True,
        n_economies=8,
        rollout_len=4,
        iterations=1,
        minibatch=32,
        checkpoint_every=0,
    )
    tr = Trainer(eco, cfg, seed=0)
    train(tr)
    lrn = tr.learners["households"]
    algo = lrn.algorithms[0]
    obs = lrn.stored_obs(eco.initial_state(4, torch.Generator().manual_seed(0))).reshape(
        -1, lrn.group.obs_dim + lrn.group.global_dim
    )
    assert obs.shape[-1] == eco.observation_size() + lrn.group.global_dim
    bumped = obs.clone()
    bumped[:, lrn.group.obs_dim :] += 1.0
    (loc_a, _), _ = algo.policy.actor(obs)
    (loc_b, _), _ = algo.policy.actor(bumped)
    assert torch.equal(loc_a, loc_b)
    assert not torch.allclose(algo.critic(obs), algo.critic(bumped))


def test_planner_group_scales_to_many_households() -> None:
    """The factorised planner acts for 100 households with the same network size as for one."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=100))
    cfg = TrainConfig(n_economies=4, rollout_len=4, iterations=1, minibatch=16, checkpoint_every=0)
    tr = Trainer(eco, cfg, seed=0)
    small = Trainer(InvestmentEconomy(InvestmentConfig()), cfg, seed=0)
    n_big = sum(p.numel() for p in tr.learners["planner"].algorithms.parameters())
    n_small = sum(p.numel() for p in small.learners["planner"].algorithms.parameters())
    assert n_big == n_small
    act = tr.decide()(eco.initial_state(4, torch.Generator().manual_seed(0)))["households"]
    assert act.shape == (4, 100, 1)
    share = src.steady_state_share(eco)
    assert torch.allclose(act, torch.full_like(act, share), rtol=1e-2)  # centred parametrisation at start


def test_rule_source_wraps_decision_rules(economy: InvestmentEconomy) -> None:
    from abm_markets.agents.rules import FixedShare

    rs = src.RuleSource(economy, FixedShare(0.12))
    state = economy.initial_state(4, torch.Generator().manual_seed(0))
    assert torch.allclose(rs(state), torch.full((4, 1, 1), 0.12, dtype=torch.float64))


def test_households_and_firms_learn_independently_in_the_market() -> None:
    """Market formulation with deciding firms: two groups, one PPO each, central critics; firms' profits rise.

    Firms start posting the steady-state price with a wide capacity distribution and make losses
    (over-production at cost phi/2 Q^2); a few iterations of PPO cut the losses (measured: -1.32 -> -0.10).
    """
    eco = InvestmentEconomy(InvestmentConfig(formulation="market", firms="decision", n_households=3, n_capital_goods=2))
    cfg = TrainConfig(
        groups=("households", "firms"), central_critic=True, n_economies=16, rollout_len=8, iterations=3, minibatch=64
    )
    tr = Trainer(eco, cfg, seed=0)
    rows = train(tr)
    assert set(tr.learners) == {"households", "firms"}
    assert rows[-1]["mean_reward_firms"] > rows[0]["mean_reward_firms"] + 0.5
    acts = tr.decide()(eco.initial_state(2, torch.Generator().manual_seed(0)))
    assert acts["firms"].shape == (2, 2, 2) and bool((acts["firms"] > 0).all())
    assert acts["households"].shape == (2, 3, 2)


def test_mixed_population_learns_alongside_rule_households() -> None:
    """Households 0 and 1 learn (shared PPO), 2 and 3 follow a fixed-share rule, in the same economies."""
    eco = InvestmentEconomy(InvestmentConfig(n_households=4))
    rule = src.ConstantShareSource(eco, 0.15)
    cfg = TrainConfig(
        groups=("households",), learning_households=(0, 1), n_economies=16, rollout_len=8, iterations=2, minibatch=32
    )
    with pytest.raises(ValueError, match="fixed"):
        Trainer(eco, cfg, seed=0)
    tr = Trainer(eco, cfg, seed=0, fixed={"households": rule})
    rows = train(tr)
    assert tr.learners["households"].group.n_slots == 2
    assert rows[-1]["agent_steps"] == 2 * 16 * 8 * 2
    state = eco.initial_state(4, torch.Generator().manual_seed(1))
    act = tr.decide()(state)["households"]
    assert torch.allclose(act[:, 2:], torch.full_like(act[:, 2:], 0.15))
    learned = src.PolicySource(tr.learners["households"])(state)
    assert torch.equal(act[:, :2], learned)


def test_update_streams_subsample_agent_streams(monkeypatch) -> None:
    """PPO with ``update_streams``: the update sees only that many (economy, household) streams, drawn from the
    update generator; with a cap at or above the number of streams the run is bit-identical to no cap."""
    from tianshou.data import ReplayBuffer

    eco = InvestmentEconomy(InvestmentConfig(formulation="market", n_households=4))
    base = {"groups": ("households",), "n_economies": 16, "rollout_len": 8, "iterations": 2, "minibatch": 64}

    def run(cap: int | None) -> Trainer:
        tr = Trainer(eco, TrainConfig(**base, update_streams=cap, checkpoint_every=0), seed=5)
        for _ in range(2):
            tr.iteration()
        return tr

    assert all(torch.equal(a, b) for a, b in zip(_params(run(None)), _params(run(64)), strict=True))
    sizes: list[int] = []
    original = ReplayBuffer.from_data.__func__

    def spy(cls, obs, *args, **kwargs):
        sizes.append(len(obs))
        return original(cls, obs, *args, **kwargs)

    monkeypatch.setattr(ReplayBuffer, "from_data", classmethod(spy))
    capped = run(8)
    assert sizes == [8 * 8, 8 * 8]  # 8 streams x 8 periods per update, of 64 streams
    assert not all(torch.equal(a, b) for a, b in zip(_params(run(None)), _params(capped), strict=True))
