"""Training loop: learning groups of any protocol economy with Tianshou algorithms.

One *iteration* collects ``rollout_len`` periods from ``n_economies`` economies stepped together (every agent
of every economy acts each period), then updates each learning group's algorithm(s):

* PPO (on-policy): one update per iteration on the whole rollout, ``epochs`` passes in minibatches of
  ``minibatch`` samples.
* SAC / DQN (off-policy): every period's transitions go to a replay buffer; ``updates_per_step`` gradient
  steps per collected period on minibatches of ``minibatch``. DQN explores epsilon-greedily, epsilon decaying
  linearly from ``eps_start`` to ``eps_end`` over the first ``eps_decay_frac`` of the iterations.

Economies are reset after ``episode_len`` periods (a time limit, bootstrapped, not a terminal state) to a
fresh state from ``economy.training_state(B, generator, k_spread)`` (the investment economy draws capital in
``K_0 * [1 - k_spread, 1 + k_spread]``, ``K_0`` its ``k_init`` or steady state, so the learner sees states off the
ergodic set).

Per iteration :meth:`Trainer.iteration` returns a metrics row: ``env_steps`` (periods x economies),
``agent_steps`` (x slots), ``mean_discounted_utility_<group>`` (mean over the rollout's slots of
``sum_t gamma^t r_t`` over the rollout, a running indicator), losses, entropy or epsilon. :func:`train` adds
wall time, progress bar, checkpoints and resume.

Determinism: with ``device = cpu`` a run is a function of its seed: network initialisation, collection and
updates draw from generators derived from the seed (:func:`abm_markets.learn.glue.seeded`).

Guards: at the end of every iteration one fused check (one host synchronisation) tests that the economy's
state, the rollout's observations and rewards, the learners' loss statistics and every network parameter and
buffer are finite; otherwise :class:`~abm_markets.errors.TrainingDiverged` names the iteration, the group and
what went non-finite. An error raised inside the iteration (torch.distributions rejecting a NaN action mean) is
turned into the same message when a non-finite value is behind it. The check runs before the iteration's
checkpoint, and every checkpoint's tensors are checked again before writing, so ``checkpoints/latest`` always
names a checkpoint of finite values (the last good one).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.engine.protocol import (
    BatchedEconomy,
    index_state,
    state_fields,
    state_from_fields,
    where_state,
)
from abm_markets.errors import ConfigError, TrainingDiverged
from abm_markets.learn.glue import GroupLearner, GroupSpec, LearnerSettings, group_spec
from abm_markets.runs import all_finite, nonfinite_kind, nonfinite_kind_float, nonfinite_tensors

__all__ = ["TrainConfig", "Trainer", "train"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig(Config):
    """Settings of a training run (learning groups, algorithm, batch, schedule)."""

    algorithm: str = param(
        "ppo",
        "Tianshou algorithm of the learning groups: ppo, sac (continuous) or dqn (discretised).",
        choices=("ppo", "sac", "dqn"),
    )
    groups: tuple[str, ...] = param(
        ("planner",),
        "Learning groups, names of the economy's decision groups (investment: planner, households, firms; "
        "duopoly: firms; declared economies: their groups).",
    )
    learning_households: tuple[int, ...] = param(
        (),
        "Households group: indices of the households that learn (empty = all); the others follow the trainer's "
        "fixed households source (a mixed population).",
        ge=0,
    )
    sharing: str = param(
        "shared",
        "shared: one policy per group (parameter sharing); per_agent: one policy per slot.",
        choices=("shared", "per_agent"),
    )
    central_critic: bool = param(
        False, "Critic sees the global state as well as the agent's own observation (actor: own only)."
    )
    action_center: str = param(
        "steady_state",
        "Action parametrisation centre: steady_state or reference (u = 0 plays the economy's reference action, "
        "e.g. the steady-state share/quantity) or none.",
        choices=("steady_state", "reference", "none"),
    )
    init_shift: float = param(
        0.0, "Shift of the action centre (log/logit units; log 2 starts at about twice the centre's share/quantity)."
    )
    n_economies: int = param(512, "Economies B stepped in parallel.", ge=1)
    rollout_len: int = param(64, "Periods collected per iteration.", ge=1)
    episode_len: int = param(400, "Periods before an economy is reset (time limit, bootstrapped).", ge=1)
    k_spread: float = param(
        0.3,
        "Spread of training states (investment: reset capital drawn uniformly in K_0 * [1 - spread, 1 + spread], "
        "K_0 the economy's k_init or its steady state).",
        ge=0.0,
        lt=1.0,
    )
    k_spread_common: float = param(
        0.0,
        "Spread of a factor common to all agents of a training economy at resets (investment: capital times "
        "1 + k_spread_common (2v - 1)); 0 = none.",
        ge=0.0,
        lt=1.0,
    )
    iterations: int = param(60, "Training iterations.", ge=0)
    hidden: tuple[int, ...] = param((64, 64), "Hidden layer widths of actor and critic.", ge=1)
    lr: float = param(3e-3, "Adam learning rate.", gt=0.0)
    lr_schedule: str = param(
        "constant",
        "Learning rate over the run: constant, or linear from lr down to lr * lr_end over the iterations "
        "(a policy then stops moving by the end; its accuracy still has to be measured).",
        choices=("constant", "linear"),
    )
    lr_end: float = param(0.0, "lr_schedule = linear: final learning rate as a fraction of lr.", ge=0.0, le=1.0)
    std_end: float | None = param(
        None,
        "PPO: None learns the Gaussian policy's standard deviation; a value fixes it on a schedule, log-linear from "
        "exp(init_log_std) down to std_end over the iterations. Exploration noise biases the evaluated (mean) "
        "policy towards what is best under the noise; shrinking it removes that bias.",
        gt=0.0,
    )
    gamma: float = param(0.98, "Discount factor of the learners (= beta by default).", gt=0.0, le=1.0)
    gae_lambda: float = param(0.95, "GAE lambda (PPO).", ge=0.0, le=1.0)
    epochs: int = param(4, "PPO passes over each rollout.", ge=1)
    minibatch: int = param(4096, "Minibatch size (PPO) or sampled batch size (SAC/DQN).", ge=1)
    ent_coef: float = param(0.0, "PPO entropy bonus.", ge=0.0)
    vf_coef: float = param(0.5, "PPO weight of the critic's loss in the shared actor-critic loss.", gt=0.0)
    ppo_ratio: str = param(
        "per_unit",
        "PPO, slots acting for several units (the planner's households): per_unit clips each unit's probability "
        "ratio against the slot's advantage (as MAPPO does for agents sharing a team reward); joint clips the "
        "product of the units' ratios, which holds every unit to about eps_clip / units per update.",
        choices=("per_unit", "joint"),
    )
    eps_clip: float = param(0.2, "PPO clip range.", gt=0.0)
    credit: str = param(
        "team",
        "PPO: team weights every unit's ratio by the slot's GAE advantage; difference gives each unit of a slot "
        "(each of a planner's households) its own advantage, the first-order difference reward "
        "dG/da_i (a_i - mean_i) of the rollout's discounted return plus the critic's value at its end, "
        "differentiated through the economy's step replayed with the same shocks, so the other units' "
        "exploration noise no longer enters a unit's advantage (needs a differentiable economy). own: the same "
        "replay, but each slot's advantage is the derivative of its *own* return in its own action (independent "
        "learners of a group whose slots have their own rewards, e.g. households in a market: what an agent that "
        "knows its effect on prices would do; estimated with random-sign probes, credit_probes).",
        choices=("team", "difference", "own"),
    )
    credit_probes: int = param(
        4,
        "credit = own: random-sign probes (one backward pass each) that estimate every slot's gradient of its own "
        "return in its own actions; a group of one slot needs none.",
        ge=1,
    )
    credit_horizon: int = param(
        0,
        "credit = difference: periods the replay continues past the rollout's end, every group at its policy's "
        "mean action and new shocks, before it bootstraps from the critic; the critic's weight in a unit's "
        "advantage falls from gamma^(T - t) to gamma^(T + horizon - t).",
        ge=0,
    )
    credit_path: str = param(
        "sampled",
        "credit = difference: the path along which dG/da is taken: sampled (the rollout's own actions, so the "
        "learned mean is best for the noisy policy) or mean (the same shocks and resets with this group's "
        "actions at the policy's mean: the gradient of the deterministic policy, free of the exploration "
        "noise's bias).",
        choices=("sampled", "mean"),
    )
    policy_average: float = param(
        0.0,
        "PPO: the deployed policy (decide, evaluations) is an exponential moving average of the actor's iterates "
        "(Polyak averaging), each iteration's weight this; 0 deploys the last iterate. Averaging removes the "
        "random walk a stochastic update keeps up around the optimum once the gradient there is mostly noise.",
        ge=0.0,
        le=1.0,
    )
    init_log_std: float = param(0.0, "Initial log standard deviation of Gaussian policies (raw action units).")
    updates_per_step: int = param(4, "SAC/DQN gradient steps per collected period.", ge=1)
    sac_alpha: float = param(0.005, "SAC entropy coefficient.", ge=0.0)
    action_width: float = param(
        2.0, "SAC: raw action = width * tanh-squashed action; DQN: grid on [-width, width].", gt=0.0
    )
    n_step: int = param(8, "SAC/DQN: n-step return horizon of the critic targets.", ge=1)
    n_actions: int = param(41, "DQN: number of discrete actions.", ge=2)
    eps_start: float = param(0.5, "DQN: initial exploration rate.", ge=0.0, le=1.0)
    eps_end: float = param(0.02, "DQN: final exploration rate.", ge=0.0, le=1.0)
    eps_decay_frac: float = param(0.5, "DQN: fraction of iterations over which epsilon decays.", gt=0.0, le=1.0)
    eps_schedule: str = param(
        "linear",
        "DQN exploration: linear (eps_start to eps_end over eps_decay_frac of the iterations) or exp "
        "(max(eps_end, exp(-eps_beta t)) with t the period, Calvano et al.'s schedule).",
        choices=("linear", "exp"),
    )
    eps_beta: float = param(1.5e-3, "DQN, eps_schedule = exp: decay per period.", gt=0.0)
    target_update_freq: int = param(200, "DQN: gradient steps between target network syncs.", ge=1)
    buffer_size: int = param(200_000, "SAC/DQN replay buffer size (transitions per algorithm).", ge=1)
    update_streams: int | None = param(
        None,
        "PPO: update each algorithm on at most this many (economy, slot) streams of the rollout, drawn at random "
        "each iteration (None = all). Every agent still acts and is simulated; with a shared policy the update's "
        "cost stops growing with the number of agents.",
        ge=1,
    )
    rollout_metrics: bool = param(
        False,
        "Add the economy's declared logged variables, averaged over each rollout, to the metrics rows "
        "(mean_<variable>, per agent for groups of at most 4 agents).",
    )
    checkpoint_every: int = param(10, "Save a checkpoint every this many iterations (0 = only at the end).", ge=0)
    max_wall_s: float | None = param(None, "Stop training after this many seconds of wall time.", gt=0.0)
    torch_threads: int | None = param(
        1,
        "CPU threads torch uses while training (restored afterwards); small networks run fastest on one thread, "
        "and more threads oversubscribe a shared machine. None leaves torch's setting alone.",
        ge=1,
    )

    def validate(self) -> None:
        if not self.groups:
            raise ConfigError("TrainConfig.groups = () is invalid; expected at least one group")
        if self.credit != "team" and self.algorithm != "ppo":
            raise ConfigError(f"TrainConfig.credit = {self.credit!r} needs algorithm = 'ppo', not {self.algorithm!r}")
        if len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"TrainConfig.groups = {self.groups!r} names a group twice")

    def check_economy(self, economy: BatchedEconomy) -> None:
        """Check the learning groups against the economy's decision groups (one line naming the culprit)."""
        from abm_markets.errors import unknown

        names = [g.name for g in economy.groups]
        keys: dict[str, str] = {}
        for name in self.groups:
            if name not in names:
                raise ConfigError(f"TrainConfig.groups: {unknown('decision group', name, names)}")
            key = economy.group(name).acts_for
            if key in keys:
                raise ConfigError(
                    f"TrainConfig.groups cannot contain both {keys[key]} and {name} (both decide the {key!r} actions)"
                )
            keys[key] = name

    def settings(self) -> LearnerSettings:
        return LearnerSettings(
            algorithm=self.algorithm,
            hidden=self.hidden,
            lr=self.lr,
            gamma=self.gamma,
            gae_lambda=self.gae_lambda,
            ent_coef=self.ent_coef,
            eps_clip=self.eps_clip,
            init_log_std=self.init_log_std,
            central_critic=self.central_critic,
            sharing=self.sharing,
            sac_alpha=self.sac_alpha,
            action_width=self.action_width,
            n_actions=self.n_actions,
            n_step=self.n_step,
            buffer_size=self.buffer_size,
            target_update_freq=self.target_update_freq,
            ppo_ratio=self.ppo_ratio,
            credit=self.credit,
            vf_coef=self.vf_coef,
        )


def _make_group(name: str, economy: BatchedEconomy, cfg: TrainConfig, slots: tuple[int, ...] | None) -> GroupSpec:
    center = "none" if cfg.action_center == "none" else "reference"
    if slots is None and name == "households":
        slots = cfg.learning_households or None
    return group_spec(economy, name, center=center, shift=cfg.init_shift, slots=slots)


class Trainer:
    """Trains the configured groups of any protocol economy on ``n_economies`` copies of it.

    Agents not in a learning group follow ``fixed`` sources (e.g. competitive firms are part of the engine;
    households not learned follow a rule passed as ``fixed={"households": source}``; a rival firm of the
    duopoly pricing at Nash). With ``learning_slots`` only some slots of a group learn and the rest follow the
    fixed source of the group's action key.

    Args:
        economy: The economy (:class:`~abm_markets.engine.protocol.BatchedEconomy`).
        cfg: Training settings.
        seed: Seed of every random draw of the run.
        fixed: Actions for non-learning roles: ``{action_key: state -> tensor}`` in economy units.
        learning_slots: ``{group: slots}``: only these slots of the group learn (the households' subset can also
            come from ``cfg.learning_households``).
    """

    def __init__(
        self,
        economy: BatchedEconomy,
        cfg: TrainConfig,
        *,
        seed: int = 0,
        fixed: dict[str, Callable[[Any], Tensor]] | None = None,
        learning_slots: dict[str, tuple[int, ...]] | None = None,
    ):
        cfg.check_economy(economy)
        self.economy, self.cfg, self.seed = economy, cfg, seed
        self.device = economy.device
        slots = dict(learning_slots or {})
        self.groups = [_make_group(g, economy, cfg, slots.get(g)) for g in cfg.groups]
        self.fixed = dict(fixed or {})
        keys = {g.engine_key for g in self.groups} | set(self.fixed)
        for key in economy.action_keys:
            if key not in keys:
                raise ValueError(f"the {key!r} actions come from no learning group and no fixed source")
        for g in self.groups:
            if g.slots is not None and g.engine_key not in self.fixed:
                raise ValueError(
                    f"group {g.name!r} learns for some agents only; pass fixed={{{g.engine_key!r}: source}}"
                )
        # generators: one for the engine (shocks, resets), one for the agents (sampling, Tianshou updates)
        self.env_gen = torch.Generator(device=self.device).manual_seed(seed)
        self.agent_gen = torch.Generator(device=self.device).manual_seed(seed + 7919)  # action sampling
        self.update_gen = torch.Generator(device="cpu").manual_seed(seed + 15485863)  # seeds of Tianshou's updates
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 104729)
            self.learners = {g.name: GroupLearner(g, cfg.settings(), self.device) for g in self.groups}
        self.state = self._reset_state(cfg.n_economies)
        self.episode_t = torch.zeros(cfg.n_economies, dtype=torch.long, device=self.device)
        self.iteration_done = 0
        self.period = 0
        self.env_steps = 0
        self.train_wall_s = 0.0
        self.buffers: dict[str, list[Any]] | None = None
        self.averaged: dict[str, list[Tensor]] | None = None  # policy_average: the actors' averaged parameters
        self._live: dict[str, Any] = {}  # what the running iteration has collected (to diagnose a divergence)

    # ------------------------------------------------------------------------------------------ helpers
    def _reset_state(self, n: int) -> Any:
        if self.cfg.k_spread_common:
            return self.economy.training_state(n, self.env_gen, self.cfg.k_spread, common=self.cfg.k_spread_common)
        return self.economy.training_state(n, self.env_gen, self.cfg.k_spread)

    def _epsilon(self) -> float:
        c = self.cfg
        if c.eps_schedule == "exp":
            return max(c.eps_end, math.exp(-c.eps_beta * self.period))
        frac = min(1.0, self.iteration_done / max(1.0, c.eps_decay_frac * c.iterations))
        return c.eps_start + (c.eps_end - c.eps_start) * frac

    def actions(self, state: Any, raws: dict[str, Tensor]) -> dict[str, Tensor]:
        """Engine actions: the learning groups' (mapped from raw policy outputs) and the fixed sources' for the rest."""
        acts: dict[str, Tensor] = {}
        for g in self.groups:
            a = g.to_engine(raws[g.name], state)
            if g.slots is not None:  # mixed population: fixed source for the others, learners overwrite their slots
                full = self.fixed[g.engine_key](state).clone()
                full[:, list(g.slots)] = a.to(full.dtype).reshape(full[:, list(g.slots)].shape)
                a = full
            acts[g.engine_key] = a
        for key, src in self.fixed.items():
            acts.setdefault(key, src(state))
        return acts

    # ------------------------------------------------------------------------------------------ iteration
    def iteration(self) -> dict[str, float]:
        """Collect one rollout and update every learning group; returns the metrics row.

        Raises:
            TrainingDiverged: The economy's state, the rollout's observations or rewards, a loss or a network
                parameter is not finite after the iteration; or an error raised inside the rollout or an update
                (e.g. torch.distributions rejecting a NaN) comes with a non-finite value there.
        """
        self._live = {"state": self.state, "rec": {}}
        try:
            return self._iteration()
        except TrainingDiverged:
            raise
        except (ValueError, RuntimeError) as exc:
            # a NaN/inf reaching torch.distributions or Tianshou raises before the end-of-iteration check
            live = self._live
            data = {name: {k: torch.stack(v) for k, v in r.items() if v} for name, r in live["rec"].items()}
            try:
                self.check_finite({}, data, state=live["state"])
            except TrainingDiverged as diverged:
                raise diverged from exc
            raise

    @property
    def agent_steps(self) -> int:
        """Decisions taken so far: periods x economies x the agents the learning groups decide for (a planner slot
        counts its households)."""
        return self.env_steps * sum(g.n_slots * g.units for g in self.groups)

    def _schedule_progress(self) -> float:
        """Fraction of the configured iterations done: where the learning-rate and noise schedules stand."""
        return min(1.0, self.iteration_done / max(1, self.cfg.iterations))

    def learning_rate(self) -> float:
        """The learning rate of the next iteration (a function of the iterations done, so resumes repeat it)."""
        c = self.cfg
        if c.lr_schedule == "constant":
            return c.lr
        return c.lr * (1.0 - (1.0 - c.lr_end) * self._schedule_progress())

    def exploration_log_std(self) -> float:
        """PPO with ``std_end``: the log standard deviation of the next iteration's Gaussian policy."""
        c = self.cfg
        assert c.std_end is not None
        return c.init_log_std + (math.log(c.std_end) - c.init_log_std) * self._schedule_progress()

    def _set_log_std(self, value: float) -> None:
        for lrn in self.learners.values():
            for algo in lrn.algorithms:
                log_std = algo.policy.actor.log_std
                log_std.requires_grad_(False)
                log_std.fill_(value)

    def _set_learning_rate(self, lr: float) -> None:
        for lrn in self.learners.values():
            for algo in lrn.algorithms:
                for opt in algo._optimizers:  # Tianshou 2.0.1: Algorithm.Optimizer wraps the torch optimizer
                    for group in opt._optim.param_groups:
                        group["lr"] = lr

    def _iteration(self) -> dict[str, float]:
        cfg = self.cfg
        t0 = time.perf_counter()
        lr_now = self.learning_rate()
        if cfg.lr_schedule != "constant":
            self._set_learning_rate(lr_now)
        if cfg.std_end is not None and cfg.algorithm == "ppo":
            self._set_log_std(self.exploration_log_std())
        off_policy = cfg.algorithm in ("sac", "dqn")
        eps = self._epsilon() if cfg.algorithm == "dqn" else 0.0
        if off_policy and self.buffers is None:
            self.buffers = {
                name: lrn.make_buffers(
                    cfg.n_economies * (lrn.group.n_slots if cfg.sharing == "shared" else 1), self.update_gen
                )
                for name, lrn in self.learners.items()
            }
        rec: dict[str, dict[str, list[Tensor]]] = {
            n: {"obs": [], "act": [], "rew": [], "obs_next": []} for n in self.learners
        }
        dones: list[Tensor] = []
        logged: dict[str, list[Tensor]] = {}
        stats: dict[str, dict[str, list[float]]] = {n: {} for n in self.learners}
        losses: dict[str, dict[str, float]] = {n: {} for n in self.learners}
        checked: dict[str, dict[str, Tensor]] = {n: {} for n in self.learners}
        live = self._live
        live["rec"] = {n: {"observations": r["obs"], "rewards": r["rew"]} for n, r in rec.items()}
        state = self.state
        diff = cfg.credit in ("difference", "own")
        replay: dict[str, list[Any]] = {"state": [], "gen": [], "noise": [], "raws": []}
        # With pre-drawable shocks the replay can run on the update's economies only (same shocks per economy).
        own_noise = diff and callable(getattr(self.economy, "draw_noise", None))
        for _ in range(cfg.rollout_len):
            if cfg.eps_schedule == "exp" and cfg.algorithm == "dqn":
                eps = self._epsilon()
            obs, acts, raws = {}, {}, {}
            for name, lrn in self.learners.items():
                obs[name] = lrn.stored_obs(state)
                acts[name], raws[name] = lrn.act_stored(obs[name], explore=True, generator=self.agent_gen, epsilon=eps)
            if diff:
                replay["state"].append(state)
                replay["raws"].append(raws)
            if own_noise:
                # the same uniforms step would draw from env_gen itself; kept for the replay
                noise = self.economy.draw_noise(cfg.n_economies, self.env_gen)  # type: ignore[attr-defined]
                replay["noise"].append(noise)
                nxt, out = self.economy.step(state, self.actions(state, raws), noise=noise)  # type: ignore[call-arg]
            else:
                if diff:
                    replay["gen"].append(self.env_gen.get_state())
                nxt, out = self.economy.step(state, self.actions(state, raws), self.env_gen)
            self.episode_t += 1
            self.period += 1
            done = self.episode_t >= cfg.episode_len
            for name, lrn in self.learners.items():
                r = lrn.group.reward(out).float()
                o_next = lrn.stored_obs(nxt)
                rec[name]["obs"].append(obs[name])
                rec[name]["act"].append(acts[name])
                rec[name]["rew"].append(r)
                rec[name]["obs_next"].append(o_next)
            dones.append(done)
            if cfg.rollout_metrics:
                for k, v in self.economy.logged(nxt, out).items():
                    logged.setdefault(k, []).append(v.detach().double())
            if bool(done.any()):
                fresh = self._reset_state(cfg.n_economies)
                nxt = where_state(done, fresh, nxt)
                self.episode_t = torch.where(done, 0, self.episode_t)
            state = nxt
            live["state"] = state
            if off_policy:
                assert self.buffers is not None
                for name, lrn in self.learners.items():
                    if not lrn.fitted:
                        continue
                    lrn.store_off_policy(
                        self.buffers[name],
                        rec[name]["obs"][-1],
                        rec[name]["act"][-1],
                        lrn.scale_reward(rec[name]["rew"][-1]),
                        rec[name]["obs_next"][-1],
                        dones[-1],
                    )
                    if len(self.buffers[name][0]) >= cfg.minibatch:
                        st = lrn.update_off_policy(
                            self.buffers[name],
                            batch_size=cfg.minibatch,
                            n_updates=cfg.updates_per_step,
                            generator=self.update_gen,
                        )
                        for k, v in st.items():
                            stats[name].setdefault(k, []).append(v)
        self.state = state
        done_t = torch.stack(dones)
        rows = self._update_rows() if own_noise else None
        row: dict[str, float] = {}
        for name, lrn in self.learners.items():
            obs_t = torch.stack(rec[name]["obs"])
            rew_t = torch.stack(rec[name]["rew"])
            checked[name] = {"observations": obs_t, "rewards": rew_t}
            if not lrn.fitted:
                lrn.fit_normalisers(obs_t, rew_t)
            disc = cfg.gamma ** torch.arange(cfg.rollout_len, dtype=rew_t.dtype, device=rew_t.device)
            row[f"mean_discounted_utility_{name}"] = float((rew_t * disc.reshape(-1, 1, 1)).sum(0).mean())
            row[f"mean_reward_{name}"] = float(rew_t.mean())
            if not off_policy:
                sub = (lambda x: x) if rows is None else (lambda x: x[:, rows])
                st = lrn.update_on_policy(
                    sub(obs_t),
                    sub(torch.stack(rec[name]["act"])),
                    lrn.scale_reward(sub(rew_t)),
                    sub(torch.stack(rec[name]["obs_next"])),
                    sub(done_t),
                    batch_size=cfg.minibatch,
                    epochs=cfg.epochs,
                    generator=self.update_gen,
                    max_streams=cfg.update_streams,
                    unit_adv=self._difference_advantages(name, replay, dones, rows) if diff else None,
                )
                for k, v in st.items():
                    row[f"{k}_{name}"] = v
                losses[name] = st
            else:
                for k, v in stats[name].items():
                    row[f"{k}_{name}"] = float(sum(v) / len(v))
                    losses[name][k] = row[f"{k}_{name}"]
        self.check_finite(losses, checked)
        if cfg.policy_average and cfg.algorithm == "ppo":
            self._average_actors(cfg.policy_average)
        if cfg.algorithm == "dqn":
            row["epsilon"] = eps
        if cfg.lr_schedule != "constant":
            row["lr"] = lr_now
        if cfg.std_end is not None and cfg.algorithm == "ppo":
            row["policy_std"] = math.exp(self.exploration_log_std())
        self.iteration_done += 1
        self.env_steps += cfg.rollout_len * cfg.n_economies
        self.train_wall_s += time.perf_counter() - t0
        row.update(self._rollout_means(logged))
        row["iteration"] = self.iteration_done
        row["env_steps"] = self.env_steps
        row["agent_steps"] = self.agent_steps
        row["train_wall_s"] = self.train_wall_s
        return row

    # -------------------------------------------------------------------------------------------- guards
    def _update_rows(self) -> Tensor | None:
        """The economies whose streams the PPO update can use this iteration, drawn from the update stream: all
        (None) unless ``update_streams`` needs fewer than the batch for every group (``ceil(update_streams /
        slots)`` economies, the largest over groups); the difference credit's replay then runs on these only."""
        cap = self.cfg.update_streams
        if cap is None or self.cfg.algorithm != "ppo":
            return None
        b = self.cfg.n_economies
        need = max(-(-cap // lrn.group.n_slots) for lrn in self.learners.values())
        if need >= b:
            return None
        return torch.randperm(b, generator=self.update_gen)[:need].sort().values.to(self.device)

    def _difference_advantages(
        self, name: str, replay: dict[str, list[Any]], dones: list[Tensor], rows: Tensor | None = None
    ) -> Tensor:
        """Per-unit advantages ``[T, B, n, units]`` of group ``name``: ``gamma^-t sum_c dG/da_ict (a_ict - mean_ict)``.

        ``G = sum_t gamma^t r_t + gamma^T V(s_T)`` over the rollout (in scaled-reward units; at a time-limit reset
        the path ends with ``V`` of the state before the reset), recomputed by replaying the economy's step from the
        recorded states, every group's recorded raw actions and the recorded generator states (the same shocks),
        and differentiated with respect to this group's raw actions. ``gamma^-t dG/da_it`` is the effect of unit
        ``i``'s action at ``t`` on the discounted return from ``t`` on (later actions held at what they were) plus
        the critic's value where the rollout ends: the first-order difference reward ``G(a) - G(a_-i, mean_i)``
        of that unit's deviation from its mean action. The other units' exploration noise does not enter it.

        With ``rows`` (economies, when the rollout recorded its shocks with ``draw_noise``) the replay, its
        continuation and the result ``[T, len(rows), n, units]`` cover only those economies.
        """
        lrn = self.learners[name]
        gamma = self.cfg.gamma
        gen = torch.Generator(device=self.device)
        units = lrn.group.units
        n_t = len(replay["state"])
        at_mean = self.cfg.credit_path == "mean"
        if rows is None:
            states, all_raws, ends_at = replay["state"], replay["raws"], dones
            noises = replay.get("noise", [])
        else:
            states = [index_state(s, rows) for s in replay["state"]]
            all_raws = [{k: v[rows] for k, v in raws.items()} for raws in replay["raws"]]
            ends_at = [d[rows] for d in dones]
            noises = [u[rows] for u in replay["noise"]]
        leaves = [
            (torch.zeros_like(raws[name]) if at_mean else raws[name].detach().clone()).requires_grad_(True)
            for raws in all_raws
        ]
        # credit = own: each slot's own return [B, n] (its gradient in its own actions comes from random-sign probes)
        own_credit = self.cfg.credit == "own" and lrn.group.n_slots > 1

        def reduce(x: Tensor) -> Tensor:
            return x if own_credit else x.sum()

        with torch.enable_grad():
            state = states[0]
            total = torch.zeros((), device=self.device)
            for t in range(n_t):
                own = leaves[t]
                if at_mean:
                    own = lrn.policy_mean(lrn.stored_obs(state)).detach() + own
                raws = {**all_raws[t], name: own}
                if noises:
                    nxt, outcome = self.economy.step(state, self.actions(state, raws), noise=noises[t])
                else:
                    gen.set_state(replay["gen"][t])
                    nxt, outcome = self.economy.step(state, self.actions(state, raws), gen)
                total = total + gamma**t * reduce(lrn.scale_reward(lrn.group.reward(outcome).float()))
                last = t == n_t - 1
                if last and self.cfg.credit_horizon:
                    total = total + self._continued_return(lrn, nxt, n_t, per_slot=own_credit)
                    continue
                ends = torch.ones_like(ends_at[t]) if last else ends_at[t]
                if bool(ends.any()):
                    if own_credit:
                        v = lrn.state_value(lrn.stored_obs(nxt))
                        total = total + gamma ** (t + 1) * v * ends.to(v.dtype).unsqueeze(-1)
                    else:
                        v = lrn.state_value(lrn.stored_obs(nxt)).sum(-1)
                        total = total + gamma ** (t + 1) * (v * ends.to(v.dtype)).sum()
                if not last:
                    state = where_state(ends_at[t], states[t + 1], nxt)
            grads = self._own_gradients(total, leaves) if own_credit else list(torch.autograd.grad(total, leaves))
        out = []
        with torch.no_grad():
            for t in range(n_t):
                dev = all_raws[t][name] - lrn.policy_mean(lrn.stored_obs(states[t]))
                b, n = dev.shape[:2]
                out.append(gamma**-t * (grads[t] * dev).reshape(b, n, units, -1).sum(-1))
        return torch.stack(out)

    def _own_gradients(self, returns: Tensor, leaves: list[Tensor]) -> list[Tensor]:
        """``d G_i / d a_i`` of every slot's own return ``G_i`` (``returns [B, n]``) in its own actions, estimated
        with ``credit_probes`` random-sign probes ``v``: ``v_i d(sum_k v_k G_k)/d a_i`` has expectation
        ``dG_i / da_i`` (the other slots' effects on ``G_i`` enter with mean-zero signs). One backward pass per
        probe, signs from the update stream."""
        probes = self.cfg.credit_probes
        grads = [torch.zeros_like(leaf) for leaf in leaves]
        for k in range(probes):
            sign = torch.randint(0, 2, returns.shape, generator=self.update_gen).to(returns) * 2 - 1
            g = torch.autograd.grad((returns * sign).sum(), leaves, retain_graph=k < probes - 1)
            w = sign.unsqueeze(-1) / probes
            for acc, gi in zip(grads, g, strict=True):
                acc.add_(gi * w.to(gi.dtype))
        return grads

    def _continued_return(self, lrn: GroupLearner, state: Any, start: int, per_slot: bool = False) -> Tensor:
        """``sum_h gamma^(start+h) r + gamma^(start+H) V`` of ``H = credit_horizon`` periods from ``state`` (the state
        after the rollout's last period, before any reset), every group at its policy's mean action (which
        responds to the state, so the derivative runs through it), shocks from a generator seeded from the
        update stream; differentiable in ``state``. Summed over the group's slots, or ``[B, n]`` per slot."""
        gamma = self.cfg.gamma
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.update_gen).item()))
        total = torch.zeros((), device=self.device)
        for h in range(self.cfg.credit_horizon):
            raws = {n: other.policy_mean(other.stored_obs(state)) for n, other in self.learners.items()}
            state, outcome = self.economy.step(state, self.actions(state, raws), gen)
            r = lrn.scale_reward(lrn.group.reward(outcome).float())
            total = total + gamma ** (start + h) * (r if per_slot else r.sum())
        if per_slot:
            return total + gamma ** (start + self.cfg.credit_horizon) * lrn.state_value(lrn.stored_obs(state))
        v = lrn.state_value(lrn.stored_obs(state)).sum(-1)
        return total + gamma ** (start + self.cfg.credit_horizon) * v.sum()

    def _checked(self, data: dict[str, dict[str, Tensor]], state: Any) -> list[tuple[bool, str | None, str, Tensor]]:
        """``(is_network, group, description, tensor)`` of every tensor checked, in causal order: the economy's
        state, the rollout's data (observations, rewards), then the networks' parameters and buffers."""
        out: list[tuple[bool, str | None, str, Tensor]] = []
        for field, x in state_fields(state).items():
            if isinstance(x, Tensor) and x.is_floating_point():
                out.append((False, None, f"economy state field {field!r}", x))
        for name, tensors in data.items():
            out.extend((False, name, what, x) for what, x in tensors.items() if x.is_floating_point())
        for name, lrn in self.learners.items():
            out.extend((True, name, f"parameter {p}", x) for p, x in lrn.algorithms.named_parameters())
            out.extend(
                (True, name, f"buffer {b}", x) for b, x in lrn.algorithms.named_buffers() if x.is_floating_point()
            )
        return out

    def check_finite(
        self,
        losses: dict[str, dict[str, float]],
        data: dict[str, dict[str, Tensor]] | None = None,
        *,
        state: Any = None,
    ) -> None:
        """Raise :class:`~abm_markets.errors.TrainingDiverged` unless the economy's state (default: the trainer's),
        ``data`` (``{group: {"rewards": tensor, ...}}``), ``losses`` (the learners' loss statistics, ``entropy``
        excepted) and every learner parameter and buffer are finite.

        One fused check: a flag per tensor, stacked, and a single host synchronisation; only a failing check
        walks the tensors again to name the first culprit in causal order (economy state, rollout data, losses,
        networks).
        """
        items = self._checked(data or {}, self.state if state is None else state)
        with torch.no_grad():
            flags = [torch.isfinite(x.detach()).all().to(self.device) for *_, x in items]
            ok = bool(torch.stack(flags).all()) if flags else True
        bad_losses = [
            (name, f"{nonfinite_kind_float(v)} in loss {k}")
            for name, st in losses.items()
            for k, v in st.items()
            if k != "entropy" and not math.isfinite(v)
        ]
        if ok and not bad_losses:
            return
        bad = [(net, group, f"{nonfinite_kind(x)} in {what}") for net, group, what, x in items if not all_finite(x)]
        culprits = [(g, w) for net, g, w in bad if not net] + bad_losses + [(g, w) for net, g, w in bad if net]
        group, what = culprits[0]
        more = f" (and {len(culprits) - 1} more non-finite)" if len(culprits) > 1 else ""
        raise TrainingDiverged(self.iteration_done + 1, group, what + more)

    def _rollout_means(self, logged: dict[str, list[Tensor]]) -> dict[str, float]:
        over = {v.name: v.over for v in self.economy.spec.logged}
        row: dict[str, float] = {}
        for name, vals in logged.items():
            x = torch.stack(vals)  # [T, B, ...]
            group = over.get(name, "economy")
            names = self.economy.agent_names(group) if group in {g.name for g in self.economy.groups} else []
            if names and len(names) <= 4 and x.dim() == 3:
                for i, agent in enumerate(names):
                    row[f"mean_{name}_{agent}"] = float(x[..., i].mean())
            else:
                row[f"mean_{name}"] = float(x.mean())
        return row

    # ----------------------------------------------------------------------------------------- policies
    def _actor_params(self, name: str) -> list[Tensor]:
        return [p for algo in self.learners[name].algorithms for p in algo.policy.actor.parameters()]

    @torch.no_grad()
    def _average_actors(self, weight: float) -> None:
        if self.averaged is None:
            self.averaged = {n: [p.detach().clone() for p in self._actor_params(n)] for n in self.learners}
            return
        for n, avg in self.averaged.items():
            for a, p in zip(avg, self._actor_params(n), strict=True):
                a.lerp_(p.detach(), weight)

    @contextlib.contextmanager
    def averaged_actors(self) -> Iterator[None]:
        """With ``policy_average``: the actors hold the averaged parameters inside the block, their own after it."""
        if self.averaged is None:
            yield
            return
        live = {n: [p.detach().clone() for p in self._actor_params(n)] for n in self.averaged}
        try:
            self.load_actor_parameters(self.averaged)
            yield
        finally:
            self.load_actor_parameters(live)

    @torch.no_grad()
    def load_actor_parameters(self, params: dict[str, list[Tensor]]) -> None:
        for n, values in params.items():
            for p, v in zip(self._actor_params(n), values, strict=True):
                p.copy_(v)

    def decide(self) -> Callable[[Any], dict[str, Tensor]]:
        """Deterministic decision function of the trained groups (plus fixed sources) for evaluation: with
        ``policy_average`` the averaged actors, as they are when the function is called."""

        @torch.no_grad()
        def decide(state: Any) -> dict[str, Tensor]:
            with self.averaged_actors():
                raws = {name: lrn.act(state) for name, lrn in self.learners.items()}
            return self.actions(state, raws)

        return decide

    # -------------------------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit (PPO): networks, optimisers, normalisers, engine state,
        generator states, counters. Only tensors and plain values (loads with ``weights_only=True``).

        Replay buffers (SAC/DQN) are not saved; a resumed off-policy run refills its buffer.
        """
        return {
            "train_config": self.cfg.to_dict(),
            "learners": {n: lrn.state_dict() for n, lrn in self.learners.items()},
            "engine_state": state_fields(self.state),
            "episode_t": self.episode_t,
            "period": self.period,
            "env_gen": self.env_gen.get_state(),
            "agent_gen": self.agent_gen.get_state(),
            "update_gen": self.update_gen.get_state(),
            "iteration": self.iteration_done,
            "env_steps": self.env_steps,
            "train_wall_s": self.train_wall_s,
            "averaged": {n: [a.clone() for a in v] for n, v in (self.averaged or {}).items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for n, lrn in self.learners.items():
            lrn.load_state_dict(state["learners"][n])
        if "engine_state" in state:
            es = state["engine_state"]
            if next(iter(es.values())).shape[0] == self.cfg.n_economies:
                self.state = state_from_fields(type(self.state), es, self.device)
                self.episode_t = state["episode_t"].to(self.device)
                self.env_gen.set_state(state["env_gen"].cpu())
                self.agent_gen.set_state(state["agent_gen"].cpu())
                self.update_gen.set_state(state["update_gen"].cpu())
        self.iteration_done = int(state["iteration"])
        self.period = int(state.get("period", 0))
        self.env_steps = int(state["env_steps"])
        self.train_wall_s = float(state["train_wall_s"])
        avg = state.get("averaged") or {}
        self.averaged = {n: [a.to(self.device) for a in v] for n, v in avg.items()} if avg else None


def train(
    trainer: Trainer,
    ctx: Any | None = None,
    *,
    evaluate: Callable[[Trainer], dict[str, float]] | None = None,
    eval_every: int = 0,
    desc: str = "training",
    stop: Callable[[list[dict[str, float]]], bool] | None = None,
) -> list[dict[str, float]]:
    """Run ``trainer`` for its configured iterations with logging, checkpoints and resume.

    Args:
        trainer: A fresh trainer.
        ctx: A :class:`~abm_markets.runs.RunContext` (metrics rows, checkpoints, progress) or None.
        evaluate: Optional ``trainer -> {metric: value}`` added to the row every ``eval_every`` iterations.
        eval_every: Evaluation period in iterations (0 = never).
        desc: Progress bar label.
        stop: Optional convergence criterion ``rows -> bool``, asked after every evaluation with the rows of
            this call so far; True ends training there (with a checkpoint).

    Returns:
        The metrics rows of this call (also logged to ``ctx``).
    """
    cfg = trainer.cfg
    rows: list[dict[str, float]] = []
    if ctx is not None and ctx.resume:
        ckpt = ctx.latest_checkpoint()
        if ckpt is not None:
            trainer.load_state_dict(ckpt)
            ctx.set_metrics(list(ckpt.get("metrics", [])))
    start = trainer.iteration_done
    threads = torch.get_num_threads()
    if cfg.torch_threads is not None:
        torch.set_num_threads(cfg.torch_threads)
    try:
        _loop(trainer, ctx, rows, start, evaluate, eval_every, desc, stop)
    finally:
        torch.set_num_threads(threads)
    return rows


def _loop(
    trainer: Trainer,
    ctx: Any | None,
    rows: list[dict[str, float]],
    start: int,
    evaluate: Callable[[Trainer], dict[str, float]] | None,
    eval_every: int,
    desc: str,
    stop: Callable[[list[dict[str, float]]], bool] | None = None,
) -> None:
    cfg = trainer.cfg
    t_start = time.perf_counter()
    wall0 = trainer.train_wall_s
    progress = ctx.progress(cfg.iterations, desc) if ctx is not None else _NullBar()
    last_good = latest_checkpoint_path(ctx)
    with progress as bar:
        bar.update(start)
        for it in range(start, cfg.iterations):
            try:
                row = trainer.iteration()
            except TrainingDiverged as e:
                flush = getattr(ctx, "flush_metrics", None)
                if flush is not None:
                    flush()  # the rows of the good iterations, for diagnosis (a resume restores the checkpoint's)
                raise e.with_checkpoint(last_good) from e.__cause__
            evaluated = evaluate is not None and eval_every and (it + 1) % eval_every == 0
            if evaluated:
                row.update(evaluate(trainer))
            row["wall_s"] = wall0 + time.perf_counter() - t_start
            rows.append(row)
            if ctx is not None:
                ctx.log_metrics(**row)
                last = it + 1 == cfg.iterations
                if (cfg.checkpoint_every and (it + 1) % cfg.checkpoint_every == 0) or last:
                    last_good = _save_checkpoint(ctx, trainer, it + 1, last_good)
                    ctx.flush_metrics()
            bar.update(1)
            done = bool(evaluated and stop is not None and stop(rows))
            if done or (cfg.max_wall_s is not None and trainer.train_wall_s >= cfg.max_wall_s):
                if ctx is not None:
                    last_good = _save_checkpoint(ctx, trainer, it + 1, last_good)
                break
    return rows


def latest_checkpoint_path(ctx: Any | None) -> str | None:
    """Path of the checkpoint ``checkpoints/latest`` of ``ctx`` names, or None (no context, no checkpoint)."""
    folder = getattr(ctx, "checkpoint_dir", None)
    if folder is None:
        return None
    marker = Path(folder) / "latest"
    if not marker.exists():
        return None
    return str(Path(folder) / f"{marker.read_text().strip()}.pt")


def _save_checkpoint(ctx: Any, trainer: Trainer, iteration: int, last_good: str | None) -> str | None:
    """Save ``iterNNNNNN`` unless one of its tensors is not finite (then raise, keeping ``last_good``)."""
    state = trainer.state_dict()
    bad = nonfinite_tensors({k: v for k, v in state.items() if k != "train_config"})
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise TrainingDiverged(iteration, None, f"non-finite checkpoint state {bad[0]}{more}", last_good)
    path = ctx.save_checkpoint(f"iter{iteration:06d}", {**state, "metrics": [_plain(r) for r in ctx.metrics]})
    return str(path) if path is not None else last_good


def _plain(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (float(v) if isinstance(v, float) and not math.isnan(v) else v) for k, v in row.items()}


class _NullBar:
    def __enter__(self) -> _NullBar:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, n: int = 1) -> None:
        return None
