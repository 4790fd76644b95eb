"""Scenario ``collusion-deeprl``: deep-RL duopolists (DQN or PPO) in Calvano et al.'s logit market.

Two independent learners (one Tianshou algorithm per firm, through :mod:`abm_markets.learn.glue`) set prices in
the batched ``LogitDuopoly-v1`` economy (``a = 2, a_0 = 0, c = 1, mu = 1/4, delta = 0.95``). DQN picks a price
on Calvano's 15-point grid; PPO sets a continuous price in the grid's range. The information structure is a
setting: ``full`` (both firms' last ``k`` prices, Calvano's state), ``own`` (own prices only), ``lagged`` (the
rival's prices one period older) or ``noisy`` (rival prices plus Gaussian noise of sd ``noise_sd``).

Each seed is an independent training run (a "session": its own pair of networks) on ``n_economies`` parallel
duopolies; after training both firms play greedily from the final training states and a session's outcome is
averaged over the last ``eval_tail`` periods. ``Delta = (pi - pi_N) / (pi_M - pi_N)`` with ``pi`` the mean of
the firms' profits.

Writes ``sessions.parquet`` (one row per seed and economy), ``steps.parquet`` (greedy play: each firm's price and
profit per period, long format of docs/logs.md),
``impulse.parquet`` (prices after firm 1's forced one-period deviation to its static best response, long
format), ``metrics.parquet`` (one row per training iteration and seed) and plots ``price_paths`` (training mean
prices and greedy paths), ``profit_gain`` (Delta per session), ``impulse_response``.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from abm_markets.config import Config, param
from abm_markets.runs import RunContext
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeepRLCollusionConfig(Config):
    """Settings of the deep-RL collusion experiment (defaults: about a minute per DQN seed on one core)."""

    learner: str = param("dqn", "dqn (grid prices) or ppo (continuous prices).", choices=("dqn", "ppo"))
    observation: str = param("full", "What each firm observes: full, own, lagged or noisy.",
                             choices=("full", "own", "lagged", "noisy"))  # fmt: skip
    noise_sd: float = param(0.05, "Sd of the noise on the observed rival price (observation = noisy).", ge=0.0)
    memory: int = param(1, "Past price profiles k in an observation.", ge=1, le=8)
    n_seeds: int = param(3, "Independent training runs (sessions, each with its own pair of networks).", ge=1)
    n_economies: int = param(32, "Parallel duopolies per run (sample streams).", ge=1)
    iterations: int = param(150, "Training iterations per run.", ge=1)
    rollout_len: int = param(32, "Periods per iteration.", ge=1)
    gamma: float = param(0.95, "Discount factor delta.", ge=0.0, lt=1.0)
    lr: float = param(1e-3, "Adam learning rate.", gt=0.0)
    hidden: tuple[int, ...] = param((64, 64), "Hidden layer widths.", ge=1)
    eps_beta: float = param(1.5e-3, "DQN: epsilon decay per period, eps_t = exp(-eps_beta t).", gt=0.0)
    epochs: int = param(4, "PPO: passes over each rollout.", ge=1)
    eval_periods: int = param(100, "Greedy play periods after training.", ge=1)
    eval_tail: int = param(20, "Last greedy periods averaged into a session's outcome.", ge=1)
    impulse_periods: int = param(10, "Periods of greedy play recorded after the forced deviation.", ge=1)
    grid_size: int = param(15, "Price grid points m (DQN actions; the range of PPO prices).", ge=2)
    xi: float = param(0.1, "Grid extends xi (p_M - p_N) beyond the Nash and monopoly prices.", ge=0.0)
    threads: int = param(1, "torch CPU threads.", ge=1)

    def estimated_bytes(self) -> int:
        """Rollouts of one session (periods x economies x 2 firms x observation, float32, x8 for Tianshou's
        copies), the replay buffer (50,000 transitions per firm) and the greedy-play and step logs."""
        obs = 2 * self.memory + 1
        rollout = self.rollout_len * self.n_economies * 2 * (2 * obs + 8) * 4 * 8
        buffer = 2 * 50_000 * (2 * obs + 8) * 8
        logs = self.n_seeds * self.n_economies * (self.eval_periods + self.impulse_periods) * 2 * 8 * 8
        return rollout + buffer + logs + (64 << 20)


@register(
    "collusion-deeprl",
    config=DeepRLCollusionConfig,
    description="Deep-RL (DQN/PPO) duopolists in Calvano's logit market, full or partial observability: profit gain",
    expected_wall_s=150.4,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run(cfg: DeepRLCollusionConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    import torch

    from abm_markets.engine.pricing import LogitDuopoly, LogitDuopolyConfig
    from abm_markets.learn.pricing_rl import DeepPricingConfig, deviation_response, evaluate_greedy, pricing_trainer
    from abm_markets.scenarios._logs import long_frame

    torch.set_num_threads(cfg.threads)
    eco = LogitDuopoly(
        LogitDuopolyConfig(
            grid_size=cfg.grid_size, xi=cfg.xi, memory=cfg.memory, observation=cfg.observation,
            noise_sd=cfg.noise_sd, action="grid" if cfg.learner == "dqn" else "continuous",
        ),
        device=ctx.device,
    )  # fmt: skip
    tcfg = DeepPricingConfig(
        learner=cfg.learner, n_economies=cfg.n_economies, iterations=cfg.iterations, rollout_len=cfg.rollout_len,
        gamma=cfg.gamma, lr=cfg.lr, hidden=cfg.hidden, eps_beta=cfg.eps_beta, epochs=cfg.epochs,
        eval_periods=cfg.eval_periods, eval_tail=cfg.eval_tail,
    )  # fmt: skip

    rows: list[dict[str, Any]] = []
    impulses: list[np.ndarray] = []
    steps: list[pl.DataFrame] = []
    train_curves: list[dict[str, Any]] = []
    train_wall = 0.0
    env_steps = 0
    t_all = time.perf_counter()
    with ctx.progress(cfg.n_seeds * cfg.iterations, f"{cfg.learner}/{cfg.observation}") as bar:
        for k in range(cfg.n_seeds):
            seed = ctx.seed + 1000 * k
            trainer = pricing_trainer(eco, tcfg, seed=seed)

            def on_iteration(row: dict[str, float], k: int = k) -> None:
                ctx.log_metrics(session=k, **row)
                train_curves.append({"session": k, **row})
                bar.update(1)

            for _ in range(tcfg.iterations):
                on_iteration(trainer.iteration())
            train_wall += trainer.train_wall_s
            env_steps += trainer.period * cfg.n_economies
            ev = evaluate_greedy(trainer, tcfg)
            impulses.append(deviation_response(trainer, ev["final_state"], periods=cfg.impulse_periods))
            ctx.flush_metrics()
            for b in range(cfg.n_economies):
                rows.append(
                    {
                        "session": k,
                        "seed": seed,
                        "economy": b,
                        "price_0": float(ev["price_mean"][b, 0]),
                        "price_1": float(ev["price_mean"][b, 1]),
                        "profit_0": float(ev["profit_mean"][b, 0]),
                        "profit_1": float(ev["profit_mean"][b, 1]),
                        "profit_gain": float(ev["profit_gain"][b]),
                        "stationary": bool(ev["stationary"][b]),
                    }
                )
            for name in ("price", "profit"):  # [T, B, 2]
                steps.append(long_frame(ev[f"{name}s"], name, "agent").with_columns(session=pl.lit(k, pl.Int64)))
    sessions = pl.DataFrame(rows)
    ctx.write_table("sessions", sessions)
    ctx.write_log("steps", pl.concat(steps))

    # a session = one training run; its Delta is the mean over its parallel economies
    per_seed = sessions.group_by("session", maintain_order=True).agg(
        pl.col("profit_gain").mean(), pl.col("price_0").mean(), pl.col("price_1").mean(), pl.col("stationary").mean()
    )
    gain = per_seed["profit_gain"].to_numpy()

    # impulse response: firm 1 deviates to its static best response for one period, then greedy play
    imp = np.stack(impulses)  # [S, T + 2, B, 2]
    s_i, t_i, b_i, f_i = np.meshgrid(*(np.arange(n) for n in imp.shape), indexing="ij")
    ctx.write_table(
        "impulse",
        pl.DataFrame(
            {
                "session": s_i.ravel(),
                "tau": t_i.ravel(),
                "economy": b_i.ravel(),
                "firm": f_i.ravel(),
                "price": imp.ravel(),
            }
        ),
    )
    half_step = 0.5 * float(eco.grid[1] - eco.grid[0])
    pre, dev, resp, last = imp[:, 0], imp[:, 1], imp[:, 2], imp[:, -1]  # [S, B, 2]
    impulse_summary = {
        "pre_shock_price": pre.mean((0, 1)).tolist(),
        "deviation_price_firm1": float(dev[..., 0].mean()),
        "rival_response_price": float(resp[..., 1].mean()),
        "punished_share": float((resp[..., 1] < pre[..., 1] - half_step).mean()),
        "final_price": last.mean((0, 1)).tolist(),
        "returned_share": float((np.abs(last - pre) < half_step).all(-1).mean()),
    }
    gain_all = sessions["profit_gain"].to_numpy()
    qs = (0.05, 0.25, 0.5, 0.75, 0.95)
    summary: dict[str, Any] = {
        "learner": cfg.learner,
        "observation": cfg.observation,
        "nash_price": eco.p_nash,
        "monopoly_price": eco.p_monopoly,
        "nash_profit": eco.pi_nash,
        "monopoly_profit": eco.pi_monopoly,
        "n_sessions": cfg.n_seeds,
        "n_economies": cfg.n_economies,
        "profit_gain_mean": float(gain.mean()),
        "profit_gain_std": float(gain.std()),
        "profit_gain_sessions": gain.tolist(),
        "profit_gain_quantiles": {f"q{int(q * 100):02d}": float(np.quantile(gain, q)) for q in qs},
        "profit_gain_quantiles_economies": {f"q{int(q * 100):02d}": float(np.quantile(gain_all, q)) for q in qs},
        "price_mean": float(sessions.select((pl.col("price_0") + pl.col("price_1")) / 2).to_series().mean()),
        "stationary_share": float(sessions["stationary"].mean()),
        "train_env_steps": env_steps,
        "train_wall_s": train_wall,
        "total_wall_s": time.perf_counter() - t_all,
        "impulse": impulse_summary,
        "tabular_baseline": {"profit_gain_mean_measured": 0.846, "profit_gain_mean_paper": 0.85},
    }
    _plots(ctx, cfg, eco, train_curves, steps, gain_all, per_seed, imp)
    return summary


def _plots(ctx: RunContext, cfg: DeepRLCollusionConfig, eco: Any, curves: list, steps: list, gain_all: Any,
           per_seed: Any, imp: Any) -> None:  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import polars as pl

    curves_df = pl.DataFrame(curves)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    for k in range(cfg.n_seeds):
        c = curves_df.filter(pl.col("session") == k)
        ax.plot(c["env_steps"], (c["mean_price_firm_0"] + c["mean_price_firm_1"]) / 2, lw=1, label=f"session {k}")
    ax.axhline(eco.p_nash, color="k", ls="--", lw=1, label="Nash")
    ax.axhline(eco.p_monopoly, color="r", ls="--", lw=1, label="monopoly")
    ax.set(xlabel="environment steps (periods x economies)", ylabel="mean price in rollout", title="training")
    ax.legend(fontsize=7)
    ax = axes[1]
    first = steps[0].filter((pl.col("economy") == 0) & (pl.col("variable") == "price"))
    for f in range(2):
        s = first.filter(pl.col("agent") == f)
        ax.plot(s["t"], s["value"], marker=".", lw=1, label=f"firm {f + 1}")
    ax.axhline(eco.p_nash, color="k", ls="--", lw=1)
    ax.axhline(eco.p_monopoly, color="r", ls="--", lw=1)
    ax.set(xlabel="period of greedy play", ylabel="price", title="greedy play after training (session 0, economy 0)")
    ax.legend(fontsize=7)
    fig.suptitle(f"collusion-deeprl: {cfg.learner}, observation = {cfg.observation}")
    fig.tight_layout()
    ctx.save_figure("price_paths", fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    lo, hi = float(np.min(gain_all)), float(np.max(gain_all))
    ax.hist(gain_all, bins=np.linspace(lo - 0.02, hi + 0.02, 31), alpha=0.6, label="economies")  # works if lo == hi
    for g in per_seed["profit_gain"].to_list():
        ax.axvline(g, color="C1", lw=1.5)
    ax.axvline(0.0, color="k", ls="--", lw=1, label="Nash (0)")
    ax.axvline(0.846, color="g", ls=":", lw=1.5, label="tabular Q baseline (0.846)")
    ax.set(
        xlabel="profit gain Delta", ylabel="count", title=f"{cfg.learner}, {cfg.observation}: Delta (orange: sessions)"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("profit_gain", fig)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    taus = np.arange(imp.shape[1])
    for f in range(2):
        ax.plot(
            taus,
            imp[..., f].mean((0, 2)),
            marker="o",
            lw=1.5,
            label=f"firm {f + 1}" + (" (deviates)" if f == 0 else ""),
        )
    ax.axhline(eco.p_nash, color="k", ls="--", lw=1, label="Nash")
    ax.axhline(eco.p_monopoly, color="r", ls="--", lw=1, label="monopoly")
    ax.axvline(1, color="grey", lw=0.8)
    ax.set(
        xlabel="period (0: before, 1: deviation)",
        ylabel="mean price",
        title=f"{cfg.learner}, {cfg.observation}: impulse response",
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("impulse_response", fig)
    plt.close(fig)
