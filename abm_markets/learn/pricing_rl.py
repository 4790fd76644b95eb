"""Two independent deep-RL pricing firms (DQN or PPO) on ``B`` parallel logit duopolies.

Each learning firm is its own agent group of one slot with its own Tianshou algorithm
(:class:`~abm_markets.learn.glue.GroupLearner`), so the firms are independent learners, as in Calvano et al.
(2020); the ``B`` economies are parallel sample streams of the same two learners (they share the two networks,
not one pair per economy). Independent training runs (seeds) give independent "sessions".

Why not :class:`abm_markets.learn.train.Trainer`: it is written around ``InvestmentEconomy`` (capital resets,
``InvestmentState`` fields, household/firm groups built from the investment economy), so this module has its own
collection loop with the same structure (collect ``rollout_len`` periods, then update; DQN stores every period
and takes ``updates_per_step`` gradient steps per period) and the glue's learners, normalisers, replay buffers
and seeded updates.

* DQN (``action = grid``): ``Q(o, a)`` over the ``m`` grid prices, double DQN with a target network; explores
  epsilon-greedily with ``eps_t = max(eps_end, exp(-eps_beta t))`` (Calvano's schedule, ``t`` = period).
* PPO (``action = continuous``): Gaussian policy on an unbounded ``u``; price
  ``p = p_lo + (p_hi - p_lo) sigmoid(u)``; greedy play uses the mean.

Evaluation (:func:`evaluate_greedy`): both firms play greedily from the final training states for
``eval_periods``; a session's outcome is the mean over the last ``eval_tail`` periods of prices and profits, and
``Delta = (pi - pi_N) / (pi_M - pi_N)`` with ``pi`` the mean of the two firms' profits (Calvano's definition).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.engine.pricing import LogitDuopoly, PricingOutcome, PricingState
from abm_markets.errors import ConfigError
from abm_markets.learn.glue import GroupLearner, GroupSpec, LearnerSettings

__all__ = ["DeepPricingConfig", "PricingTrainer", "deviation_response", "evaluate_greedy", "firm_group"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeepPricingConfig(Config):
    """Settings of deep-RL pricing training (defaults: a run of about a minute on one CPU core)."""

    learner: str = param("dqn", "dqn (grid prices) or ppo (continuous prices).", choices=("dqn", "ppo"))
    n_economies: int = param(32, "Parallel duopolies B (sample streams of the two learners).", ge=1)
    iterations: int = param(150, "Training iterations (one rollout plus updates each).", ge=1)
    rollout_len: int = param(32, "Periods collected per iteration.", ge=1)
    gamma: float = param(0.95, "Discount factor (Calvano's delta).", ge=0.0, lt=1.0)
    hidden: tuple[int, ...] = param((64, 64), "Hidden layer widths of the networks.", ge=1)
    lr: float = param(1e-3, "Adam learning rate.", gt=0.0)
    minibatch: int = param(256, "Minibatch size of the updates.", ge=1)
    # DQN
    eps_beta: float = param(1.5e-3, "DQN: epsilon decay, eps_t = exp(-eps_beta t) (t = period).", gt=0.0)
    eps_end: float = param(0.0, "DQN: floor of epsilon.", ge=0.0, le=1.0)
    updates_per_step: int = param(1, "DQN: gradient steps per collected period.", ge=1)
    target_update_freq: int = param(100, "DQN: gradient steps between target network syncs.", ge=1)
    buffer_size: int = param(50_000, "DQN: replay buffer transitions per firm.", ge=1)
    # PPO
    epochs: int = param(4, "PPO: passes over each rollout.", ge=1)
    ent_coef: float = param(0.0, "PPO: entropy bonus.", ge=0.0)
    init_log_std: float = param(0.0, "PPO: initial log standard deviation of u.")
    # evaluation
    eval_periods: int = param(100, "Greedy play periods after training.", ge=1)
    eval_tail: int = param(20, "Last periods of greedy play averaged into a session's outcome.", ge=1)

    def validate(self) -> None:
        if self.eval_tail > self.eval_periods:
            raise ConfigError(
                f"DeepPricingConfig.eval_tail = {self.eval_tail}; expected at most eval_periods = {self.eval_periods}"
            )


def firm_group(economy: LogitDuopoly, firm: int) -> GroupSpec:
    """Firm ``firm`` (0 or 1) as a one-slot agent group: its own observation, its own profit as reward.

    ``to_engine`` maps the learner's raw action to the firm's engine action: the DQN index (stored action) is
    used directly; PPO's ``u`` becomes ``p_lo + (p_hi - p_lo) sigmoid(u)``.
    """
    sl = slice(firm, firm + 1)
    lo, hi = economy.p_lo, economy.p_hi

    def to_engine(raw: Tensor, state: PricingState) -> Tensor:
        return lo + (hi - lo) * torch.sigmoid(raw[..., 0].to(economy.dtype))

    return GroupSpec(
        name=f"firm{firm}",
        n_slots=1,
        obs_dim=economy.observation_size(),
        act_dim=1,
        units=1,
        observe=lambda state: economy.observe(state)[:, sl],
        global_obs=economy.global_state,
        global_dim=2 * economy.cfg.memory,
        reward=lambda out: out.profits[:, sl],
        to_engine=to_engine,
        engine_key="firms",
    )


Policy = Callable[[PricingState], Tensor]
"""A fixed firm: ``state -> [B]`` engine action of that firm (grid index or price)."""


class PricingTrainer:
    """Trains the learning firms of ``economy`` on ``cfg.n_economies`` parallel duopolies.

    Args:
        economy: The duopoly (``action = grid`` for DQN, ``continuous`` for PPO).
        cfg: Training settings.
        seed: Seed of every random draw of the run (CPU runs are a function of it).
        fixed: Firms that do not learn: ``{firm: policy}`` (e.g. a rival pricing at Nash).
    """

    def __init__(
        self, economy: LogitDuopoly, cfg: DeepPricingConfig, *, seed: int = 0, fixed: dict[int, Policy] | None = None
    ):
        want = "grid" if cfg.learner == "dqn" else "continuous"
        if economy.cfg.action != want:
            raise ConfigError(
                f"learner = {cfg.learner!r} needs the economy's action = {want!r}; got {economy.cfg.action!r}"
            )
        self.economy, self.cfg, self.seed = economy, cfg, seed
        self.fixed = dict(fixed or {})
        self.firms = [i for i in range(2) if i not in self.fixed]
        self.env_gen = torch.Generator(device=economy.device).manual_seed(seed)
        self.agent_gen = torch.Generator(device="cpu").manual_seed(seed + 7919)
        settings = LearnerSettings(
            algorithm=cfg.learner,
            hidden=cfg.hidden,
            lr=cfg.lr,
            gamma=cfg.gamma,
            ent_coef=cfg.ent_coef,
            init_log_std=cfg.init_log_std,
            n_actions=economy.cfg.grid_size,
            target_update_freq=cfg.target_update_freq,
            buffer_size=cfg.buffer_size,
            sharing="shared",
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 104729)
            self.learners = {i: GroupLearner(firm_group(economy, i), settings, economy.device) for i in self.firms}
        self.state = economy.initial_state(cfg.n_economies, self.env_gen)
        self.buffers: dict[int, list[Any]] | None = None
        self.period = 0
        self.iteration_done = 0
        self.train_wall_s = 0.0

    # ---------------------------------------------------------------------------------------------- acting
    def epsilon(self) -> float:
        c = self.cfg
        return max(c.eps_end, float(np.exp(-c.eps_beta * self.period))) if c.learner == "dqn" else 0.0

    def _engine_action(self, firm: int, stored: Tensor, raw: Tensor, state: PricingState) -> Tensor:
        if self.cfg.learner == "dqn":
            return stored[:, 0, 0].long()
        return self.learners[firm].group.to_engine(raw[:, 0], state)

    def joint_action(
        self, state: PricingState, *, explore: bool, epsilon: float = 0.0
    ) -> tuple[Tensor, dict[int, tuple[Tensor, Tensor]]]:
        """Engine actions ``[B, 2]`` and, per learning firm, ``(stored obs, stored action)``."""
        cols: list[Tensor] = []
        rec: dict[int, tuple[Tensor, Tensor]] = {}
        for i in range(2):
            if i in self.fixed:
                cols.append(self.fixed[i](state))
                continue
            lrn = self.learners[i]
            obs = lrn.stored_obs(state)
            stored, raw = lrn.act_stored(obs, explore=explore, generator=self.agent_gen, epsilon=epsilon)
            rec[i] = (obs, stored)
            cols.append(self._engine_action(i, stored, raw, state))
        return torch.stack(cols, -1), rec

    # ------------------------------------------------------------------------------------------- iteration
    def iteration(self) -> dict[str, float]:
        """Collect ``rollout_len`` periods and update the learning firms; returns a metrics row."""
        cfg = self.cfg
        t0 = time.perf_counter()
        off_policy = cfg.learner == "dqn"
        if off_policy and self.buffers is None:
            self.buffers = {i: lrn.make_buffers(cfg.n_economies, self.agent_gen) for i, lrn in self.learners.items()}
        rec: dict[int, dict[str, list[Tensor]]] = {
            i: {"obs": [], "act": [], "rew": [], "obs_next": []} for i in self.firms
        }
        outs: list[PricingOutcome] = []
        stats: dict[int, dict[str, list[float]]] = {i: {} for i in self.firms}
        no_done = torch.zeros(cfg.n_economies, dtype=torch.bool, device=self.economy.device)
        state = self.state
        eps = self.epsilon()
        for _ in range(cfg.rollout_len):
            eps = self.epsilon()
            act, step_rec = self.joint_action(state, explore=True, epsilon=eps)
            nxt, out = self.economy.step(state, act, self.env_gen)
            self.period += 1
            outs.append(out)
            for i, lrn in self.learners.items():
                obs, stored = step_rec[i]
                r = lrn.group.reward(out).float()
                o_next = lrn.stored_obs(nxt)
                for key, val in zip(("obs", "act", "rew", "obs_next"), (obs, stored, r, o_next), strict=True):
                    rec[i][key].append(val)
                if off_policy and lrn.fitted:
                    assert self.buffers is not None
                    lrn.store_off_policy(self.buffers[i], obs, stored, lrn.scale_reward(r), o_next, no_done)
                    if len(self.buffers[i][0]) >= cfg.minibatch:
                        st = lrn.update_off_policy(
                            self.buffers[i], batch_size=cfg.minibatch, n_updates=cfg.updates_per_step,
                            generator=self.agent_gen,
                        )  # fmt: skip
                        for k, v in st.items():
                            stats[i].setdefault(k, []).append(v)
            state = nxt
        self.state = state
        row: dict[str, float] = {}
        done_t = no_done.unsqueeze(0).expand(cfg.rollout_len, -1)
        for i, lrn in self.learners.items():
            obs_t = torch.stack(rec[i]["obs"])
            rew_t = torch.stack(rec[i]["rew"])
            if not lrn.fitted:
                lrn.fit_normalisers(obs_t, rew_t)
            if not off_policy:
                st = lrn.update_on_policy(
                    obs_t, torch.stack(rec[i]["act"]), lrn.scale_reward(rew_t), torch.stack(rec[i]["obs_next"]),
                    done_t, batch_size=cfg.minibatch, epochs=cfg.epochs, generator=self.agent_gen,
                )  # fmt: skip
                row.update({f"{k}_firm{i}": v for k, v in st.items()})
            else:
                row.update({f"{k}_firm{i}": float(np.mean(v)) for k, v in stats[i].items()})
        prices = torch.stack([o.prices for o in outs])  # [T, B, 2]
        profits = torch.stack([o.profits for o in outs])
        self.iteration_done += 1
        self.train_wall_s += time.perf_counter() - t0
        row.update(
            iteration=self.iteration_done,
            env_steps=self.period * cfg.n_economies,
            epsilon=eps,
            price_mean_firm0=float(prices[..., 0].mean()),
            price_mean_firm1=float(prices[..., 1].mean()),
            profit_gain_rollout=float(self.economy.profit_gain(profits.mean(-1)).mean()),
            train_wall_s=self.train_wall_s,
        )
        return row

    def train(self, on_iteration: Callable[[dict[str, float]], None] | None = None) -> None:
        """Run ``cfg.iterations`` iterations, calling ``on_iteration(row)`` after each."""
        for _ in range(self.cfg.iterations - self.iteration_done):
            row = self.iteration()
            if on_iteration is not None:
                on_iteration(row)

    # -------------------------------------------------------------------------------------- checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "learners": {str(i): lrn.state_dict() for i, lrn in self.learners.items()},
            "period": self.period,
            "iteration": self.iteration_done,
            "state": dataclasses.asdict(self.state),
        }


@torch.no_grad()
def evaluate_greedy(trainer: PricingTrainer, state: PricingState | None = None) -> dict[str, Any]:
    """Greedy play of the trained firms from ``state`` (default: the final training states).

    Returns:
        ``prices [T, B, 2]`` (the path), ``price_mean [B, 2]`` and ``profit_mean [B, 2]`` over the last
        ``eval_tail`` periods, ``profit_gain [B]`` (mean of the firms' profits, Calvano's Delta),
        ``profit_gain_firm [B, 2]``, ``stationary [B]`` (prices constant over the tail), and ``final_state``
        (the :class:`PricingState` after greedy play).
    """
    cfg, eco = trainer.cfg, trainer.economy
    gen = torch.Generator(device=eco.device).manual_seed(trainer.seed + 31337)  # observation noise only
    s = trainer.state if state is None else state
    paths, profits = [], []
    for _ in range(cfg.eval_periods):
        act, _ = trainer.joint_action(s, explore=False)
        s, out = eco.step(s, act, gen)
        paths.append(out.prices)
        profits.append(out.profits)
    p = torch.stack(paths)
    pi = torch.stack(profits)
    tail_p, tail_pi = p[-cfg.eval_tail :], pi[-cfg.eval_tail :]
    pi_mean = tail_pi.mean(0)
    return {
        "prices": p.cpu().numpy(),
        "price_mean": tail_p.mean(0).cpu().numpy(),
        "profit_mean": pi_mean.cpu().numpy(),
        "profit_gain": eco.profit_gain(pi_mean.mean(-1)).cpu().numpy(),
        "profit_gain_firm": eco.profit_gain(pi_mean).cpu().numpy(),
        "stationary": ((tail_p.amax(0) - tail_p.amin(0)).amax(-1) < 1e-9).cpu().numpy(),
        "final_state": s,
    }


@torch.no_grad()
def deviation_response(
    trainer: PricingTrainer, state: PricingState, *, deviator: int = 0, periods: int = 10
) -> np.ndarray:
    """Impulse response to a forced one-period deviation (Calvano et al. 2020, section V.B).

    From ``state`` (normally the end of greedy play), firm ``deviator`` posts its static best response to the
    rival's last price for one period (on the grid for ``grid`` economies; on a 2,001-point grid of
    ``[p_lo, p_hi]`` for ``continuous`` ones), then both firms play greedily for ``periods`` periods.

    Returns:
        Prices ``[periods + 2, B, 2]``: the pre-shock profile (last price in ``state``), the deviation period,
        then the greedy response.
    """
    eco = trainer.economy
    gen = torch.Generator(device=eco.device).manual_seed(trainer.seed + 4242)
    rival = state.prices[:, 0, 1 - deviator]
    cand = eco.grid if eco.cfg.action == "grid" else torch.linspace(eco.p_lo, eco.p_hi, 2001, dtype=eco.dtype)
    cand = cand.to(eco.device)
    pair = torch.stack(torch.broadcast_tensors(cand.unsqueeze(0), rival.unsqueeze(-1)), -1)  # [B, C, 2]
    if deviator == 1:
        pair = pair.flip(-1)
    best = eco.profits(pair)[1][..., deviator].argmax(-1)  # [B]
    act, _ = trainer.joint_action(state, explore=False)
    act = act.clone()
    act[:, deviator] = best if eco.cfg.action == "grid" else cand[best].to(act.dtype)
    path = [state.prices[:, 0]]
    s, out = eco.step(state, act, gen)
    path.append(out.prices)
    for _ in range(periods):
        a, _ = trainer.joint_action(s, explore=False)
        s, out = eco.step(s, a, gen)
        path.append(out.prices)
    return torch.stack(path).cpu().numpy()
