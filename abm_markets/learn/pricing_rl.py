"""Two independent deep-RL pricing firms (DQN or PPO) on ``B`` parallel logit duopolies.

The duopoly's ``firms`` group is trained by the project's one :class:`~abm_markets.learn.train.Trainer`
(:func:`pricing_trainer`) with one Tianshou algorithm per firm (``sharing = "per_agent"``), so the firms are
independent learners, as in Calvano et al. (2020); the ``B`` economies are parallel sample streams of the same
two learners (they share the two networks, not one pair per economy). Independent training runs (seeds) give
independent "sessions". The game is continuing: economies are never reset.

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
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.engine.pricing import LogitDuopoly, PricingState
from abm_markets.errors import ConfigError
from abm_markets.learn.train import TrainConfig, Trainer

__all__ = ["DeepPricingConfig", "deviation_response", "evaluate_greedy", "pricing_trainer", "train_config"]


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


Policy = Callable[[PricingState], Tensor]
"""A fixed firm: ``state -> [B]`` engine action of that firm (grid index or price)."""


def train_config(cfg: DeepPricingConfig) -> TrainConfig:
    """The :class:`~abm_markets.learn.train.TrainConfig` of the one trainer for these pricing settings.

    The two firms are the economy's ``firms`` group with one algorithm per firm (``sharing = "per_agent"``:
    independent learners), a continuing game (no resets), Calvano's exponential exploration schedule for DQN.
    """
    return TrainConfig(
        algorithm=cfg.learner,
        groups=("firms",),
        sharing="per_agent",
        n_economies=cfg.n_economies,
        rollout_len=cfg.rollout_len,
        episode_len=2**62,
        iterations=cfg.iterations,
        hidden=cfg.hidden,
        lr=cfg.lr,
        gamma=cfg.gamma,
        epochs=cfg.epochs,
        minibatch=cfg.minibatch,
        ent_coef=cfg.ent_coef,
        init_log_std=cfg.init_log_std,
        updates_per_step=cfg.updates_per_step,
        n_step=1,
        eps_schedule="exp",
        eps_beta=cfg.eps_beta,
        eps_end=cfg.eps_end,
        target_update_freq=cfg.target_update_freq,
        buffer_size=cfg.buffer_size,
        checkpoint_every=0,
        torch_threads=None,
        rollout_metrics=True,
    )


def pricing_trainer(
    economy: LogitDuopoly, cfg: DeepPricingConfig, *, seed: int = 0, fixed: dict[int, Policy] | None = None
) -> Trainer:
    """The project's one :class:`~abm_markets.learn.train.Trainer` for the duopoly's learning firms.

    Args:
        economy: The duopoly (``action = grid`` for DQN, ``continuous`` for PPO).
        cfg: Pricing training settings.
        seed: Seed of every random draw of the run (CPU runs are a function of it).
        fixed: Firms that do not learn: ``{firm: policy}`` (e.g. a rival pricing at Nash).
    """
    want = "grid" if cfg.learner == "dqn" else "continuous"
    if economy.cfg.action != want:
        raise ConfigError(
            f"learner = {cfg.learner!r} needs the economy's action = {want!r}; got {economy.cfg.action!r}"
        )
    fixed = dict(fixed or {})
    learning = tuple(i for i in range(2) if i not in fixed)
    if not learning:
        raise ConfigError("pricing_trainer: both firms are fixed; expected at least one learning firm")
    sources = None
    if fixed:
        dtype = torch.long if economy.cfg.action == "grid" else economy.dtype

        def rivals(state: PricingState) -> Tensor:
            out = torch.zeros(state.batch_size, 2, dtype=dtype, device=economy.device)
            for i, policy in fixed.items():
                out[:, i] = policy(state).to(dtype)
            return out

        sources = {"firms": rivals}
    return Trainer(
        economy,
        train_config(cfg),
        seed=seed,
        fixed=sources,
        learning_slots={"firms": learning} if fixed else None,
    )


@torch.no_grad()
def evaluate_greedy(trainer: Trainer, cfg: DeepPricingConfig, state: PricingState | None = None) -> dict[str, Any]:
    """Greedy play of the trained firms from ``state`` (default: the final training states).

    Returns:
        ``prices [T, B, 2]`` and ``profits [T, B, 2]`` (the path), ``price_mean [B, 2]`` and
        ``profit_mean [B, 2]`` over the last ``eval_tail`` periods, ``profit_gain [B]`` (mean of the firms'
        profits, Calvano's Delta), ``profit_gain_firm [B, 2]``, ``stationary [B]`` (prices constant over the
        tail), and ``final_state`` (the :class:`PricingState` after greedy play).
    """
    eco = trainer.economy
    gen = torch.Generator(device=eco.device).manual_seed(trainer.seed + 31337)  # observation noise only
    s = trainer.state if state is None else state
    decide = trainer.decide()
    paths, profits = [], []
    for _ in range(cfg.eval_periods):
        s, out = eco.step(s, decide(s), gen)
        paths.append(out.prices)
        profits.append(out.profits)
    p = torch.stack(paths)
    pi = torch.stack(profits)
    tail_p, tail_pi = p[-cfg.eval_tail :], pi[-cfg.eval_tail :]
    pi_mean = tail_pi.mean(0)
    return {
        "prices": p.cpu().numpy(),
        "profits": pi.cpu().numpy(),
        "price_mean": tail_p.mean(0).cpu().numpy(),
        "profit_mean": pi_mean.cpu().numpy(),
        "profit_gain": eco.profit_gain(pi_mean.mean(-1)).cpu().numpy(),
        "profit_gain_firm": eco.profit_gain(pi_mean).cpu().numpy(),
        "stationary": ((tail_p.amax(0) - tail_p.amin(0)).amax(-1) < 1e-9).cpu().numpy(),
        "final_state": s,
    }


@torch.no_grad()
def deviation_response(trainer: Trainer, state: PricingState, *, deviator: int = 0, periods: int = 10) -> np.ndarray:
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
    decide = trainer.decide()
    act = decide(state)["firms"].clone()
    act[:, deviator] = best if eco.cfg.action == "grid" else cand[best].to(act.dtype)
    path = [state.prices[:, 0]]
    s, out = eco.step(state, act, gen)
    path.append(out.prices)
    for _ in range(periods):
        s, out = eco.step(s, decide(s), gen)
        path.append(out.prices)
    return torch.stack(path).cpu().numpy()
