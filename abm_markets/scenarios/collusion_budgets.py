"""Scenario ``collusion-budgets``: deep and tabular Q-learning in Calvano et al.'s market at equal budgets.

Two independent learning firms set prices on Calvano, Calzolari, Denicolò and Pastorello's (2020, AER) 15-point
grid in the logit duopoly (``a = 2, a_0 = 0, c = 1, mu = 1/4, delta = 0.95``), observing last period's price pair
(memory 1). Each *session* is one market with its own pair of learners, played for a fixed number of periods
``T`` (the budget), the same for every learner:

* ``tabular``: Calvano's Q-learning (:mod:`abm_markets.learn.tabular`: ``alpha = 0.15``, ``Q_0`` = discounted
  payoff against a uniform rival) stopped at ``T`` instead of at convergence;
* ``dqn``: double DQN with a target network (:mod:`abm_markets.learn.batched_pricing`, all sessions batched);
* ``ppo``: PPO with a softmax policy over the grid and a value network (same module).

Exploration of tabular Q and DQN is scaled to the budget: ``eps_t = exp(-beta_T t)`` with
``beta_T = eps_decay / T``, so every session ends at the same exploration rate ``exp(-eps_decay)`` (default 8:
``exp(-8) = 3.4e-4``; at ``T = 2e6`` this is Calvano's ``beta = 4e-6``). PPO explores through its stochastic
policy and has no schedule. A reference run of tabular Q with Calvano's own ``beta`` and convergence rule
(strategies unchanged for ``conv_window`` periods) gives the baseline and its convergence time.

Outcomes are measured identically for every learner: the greedy strategies (for DQN, the argmax of each network on
all 225 price pairs) are played from the final state to their limit cycle; ``Delta = (pi - pi_N) / (pi_M - pi_N)``
and prices are cycle means. A session is *stable* if neither greedy strategy changes between snapshots taken
every ``T / 100`` periods over the last ``check_tail`` of the budget. ``punished``: after firm 1 deviates for one
period to its static best response, firm 2's price in the next period is below its pre-deviation price.

Writes ``sessions.parquet`` (one row per learner, budget and session), ``budgets.parquet`` (one row per cell:
mean Delta with a 95% t-interval, stable share, mean price, wall time), ``steps.parquet`` (greedy play from the
limit cycle, ``case = "<learner>|T=<budget>"``), ``metrics.parquet`` (one row per cell) and the plot
``delta_vs_budget``.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from typing import Any

from abm_markets.config import Config, param
from abm_markets.runs import RunContext
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class BudgetsConfig(Config):
    """Settings of the equal-budget comparison (defaults: the study of docs/collusion_budgets.md)."""

    dqn_budgets: tuple[int, ...] = param((5000, 20000, 50000), "Periods per DQN session (empty: no DQN).", ge=1)
    ppo_budgets: tuple[int, ...] = param((5000, 20000, 50000), "Periods per PPO session (empty: no PPO).", ge=1)
    tabular_budgets: tuple[int, ...] = param(
        (5000, 20000, 100000, 500000, 2000000), "Periods per tabular session (empty: no tabular cells).", ge=1
    )
    dqn_sessions: int = param(100, "DQN sessions per budget.", ge=1)
    ppo_sessions: int = param(100, "PPO sessions per budget.", ge=1)
    tabular_sessions: int = param(1000, "Tabular sessions per budget.", ge=1)
    baseline_sessions: int = param(1000, "Sessions of tabular Q with Calvano's beta to convergence (0: none).", ge=0)
    eps_decay: float = param(8.0, "Exploration at the end of a budget T is exp(-eps_decay): beta_T = eps_decay / T.",
                             gt=0.0)  # fmt: skip
    check_tail: float = param(0.1, "Share of the budget over which greedy stability is checked.", gt=0.0, le=1.0)
    alpha: float = param(0.15, "Tabular learning rate alpha.", gt=0.0, le=1.0)
    baseline_beta: float = param(4e-6, "Calvano's exploration decay for the baseline run.", gt=0.0)
    conv_window: int = param(100_000, "Baseline: periods of unchanged strategies that count as convergence.", ge=1)
    max_periods: int = param(1_000_000_000, "Baseline: cap on periods per session.", ge=1)
    delta: float = param(0.95, "Discount factor.", ge=0.0, lt=1.0)
    hidden: tuple[int, ...] = param((64, 64), "DQN hidden layer widths.", ge=1)
    lr: float = param(1e-3, "DQN Adam learning rate.", gt=0.0)
    batch_size: int = param(32, "DQN minibatch per gradient step and network.", ge=1)
    train_every: int = param(4, "DQN periods between gradient steps.", ge=1)
    target_update: int = param(100, "DQN gradient steps between target syncs.", ge=1)
    buffer_size: int = param(50_000, "DQN replay capacity per session.", ge=1)
    rollout: int = param(32, "PPO periods per rollout.", ge=2)
    epochs: int = param(4, "PPO Adam steps per rollout.", ge=1)
    impulse_periods: int = param(15, "Periods of greedy play logged after the cycle state (steps.parquet).", ge=1)
    threads: int = param(1, "torch CPU threads.", ge=1)

    def estimated_bytes(self) -> int:
        """DQN: replay (5 numbers per transition) and Adam state of the 2S networks; tabular: Q tables (x4)."""
        widths = [2, *self.hidden, 15]
        n_par = sum(a * b + b for a, b in itertools.pairwise(widths))
        cap = min(self.buffer_size, max(self.dqn_budgets, default=0))
        dqn = self.dqn_sessions * (cap * 6 * 8 + 2 * n_par * 4 * 5) if self.dqn_budgets else 0
        ppo = self.ppo_sessions * 4 * n_par * 4 * 5 if self.ppo_budgets else 0
        tab = 4 * max(self.tabular_sessions, self.baseline_sessions) * 2 * 225 * 15 * 8
        return dqn + ppo + tab


def _cell_summary(gain: Any, price: Any, stable: Any, punished: Any) -> dict[str, float]:
    import numpy as np
    from scipy import stats

    n = len(gain)
    half = float(stats.t.ppf(0.975, n - 1) * gain.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {
        "sessions": n,
        "profit_gain_mean": float(gain.mean()),
        "profit_gain_lo": float(gain.mean() - half),
        "profit_gain_hi": float(gain.mean() + half),
        "profit_gain_std": float(gain.std(ddof=1)) if n > 1 else float("nan"),
        "stable_share": float(np.mean(stable)),
        "price_mean": float(price.mean()),
        "punished_share": float(np.mean(punished)),
    }


@register(
    "collusion-budgets",
    config=BudgetsConfig,
    description="DQN, PPO and tabular Q in Calvano's duopoly at equal period budgets: Delta, stability, prices",
    expected_wall_s=3000.0,
    expected_wall_source="sum of the five runs of docs/collusion_budgets.md, 1 thread, 2 busy cores, 2026-11-30",
)
def run(cfg: BudgetsConfig, ctx: RunContext) -> dict[str, Any]:
    import torch

    # a precaution (its effect was not measured): Adam's moments of dead ReLU units decay towards denormal floats,
    # which are slow on x86 CPUs; flushing them to zero changes no value above ~1e-38. It is process-wide state,
    # so it is switched off again when the run ends (other code in the process may rely on subnormals).
    torch.set_flush_denormal(True)
    try:
        return _run(cfg, ctx)
    finally:
        torch.set_flush_denormal(False)


def _run(cfg: BudgetsConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    import torch

    from abm_markets.engine.pricing import LogitDuopoly, LogitDuopolyConfig
    from abm_markets.learn import batched_pricing as bp
    from abm_markets.learn import tabular as tq
    from abm_markets.solvers import pricing

    torch.set_num_threads(cfg.threads)
    economy = LogitDuopoly(LogitDuopolyConfig(action="grid", memory=1, grid_size=15, xi=0.1))
    market, m = economy.market, 15
    grid = economy.grid.numpy()
    table = pricing.profit_table(grid, market)  # (2, 225), the same profits as economy.step (tested)
    pi_n, pi_m = economy.pi_nash, economy.pi_monopoly

    sessions: list[pl.DataFrame] = []
    cells: list[dict[str, Any]] = []
    logs: list[pl.DataFrame] = []

    def outcome(learner: str, budget: int, greedy: Any, s: Any, stable: Any, wall: float, extra: dict) -> None:
        cyc = tq.greedy_cycle(greedy, s, table, m, 1)
        gain = pricing.profit_gain(cyc["profit"].mean(axis=1), pi_n, pi_m)
        price = np.interp(cyc["actions"], np.arange(m), grid).mean(axis=1)
        acts = tq.impulse_response(greedy, cyc["state"], table, m, deviator=0, periods=1)
        punished = acts[:, 2, 1] < acts[:, 0, 1]
        n = len(gain)
        sessions.append(
            pl.DataFrame(
                {
                    "learner": [learner] * n,
                    "budget": [budget] * n,
                    "session": np.arange(n),
                    "profit_gain": gain,
                    "price_mean": price,
                    "cycle_length": cyc["length"],
                    "stable": np.asarray(stable, dtype=bool),
                    "punished": punished,
                    **{k: np.asarray(v) for k, v in extra.items()},
                }
            )
        )
        case = f"{learner}|T={budget}" if budget >= 0 else f"{learner}|converged"
        row = {"learner": learner, "budget": budget, **_cell_summary(gain, price, stable, punished), "wall_s": wall}
        cells.append(row)
        ctx.log_metrics(**{k: v for k, v in row.items() if k != "wall_s"}, cell_wall_s=wall)
        logs.append(_greedy_log(greedy, cyc["state"], table, grid, m, cfg.impulse_periods, case))
        # write after every cell: the cells of a long run that is stopped are kept
        ctx.write_table("sessions", pl.concat(sessions, how="diagonal"))
        ctx.write_table("budgets", pl.DataFrame(cells))
        ctx.write_log("steps", pl.concat(logs))
        ctx.flush_metrics()

    # ---- baseline: Calvano's beta, to convergence --------------------------------------------------------------
    tq.run_q_learning(table, m=m, n_sessions=1, alpha=cfg.alpha, beta=1e-3, delta=cfg.delta, conv_window=10,
                      max_periods=10, seed=0)  # fmt: skip  # compile outside the timed cells
    baseline: dict[str, Any] = {}
    if cfg.baseline_sessions:
        t0 = time.perf_counter()
        st = tq.run_q_learning(
            table, m=m, n_sessions=cfg.baseline_sessions, alpha=cfg.alpha, beta=cfg.baseline_beta, delta=cfg.delta,
            conv_window=cfg.conv_window, max_periods=cfg.max_periods, seed=ctx.seed, seed_offset=20_000_000,
        )  # fmt: skip
        wall = time.perf_counter() - t0
        conv = st.done
        outcome("tabular-calvano", -1, st.greedy, st.s, conv, wall, {"periods": st.t})
        baseline = {
            "sessions": cfg.baseline_sessions,
            "beta": cfg.baseline_beta,
            "converged_share": float(conv.mean()),
            "periods_mean": float(st.t[conv].mean()) if conv.any() else None,
            "periods_median": float(np.median(st.t[conv])) if conv.any() else None,
            "periods_mean_excluding_window": float(st.t[conv].mean() - cfg.conv_window) if conv.any() else None,
            "periods_q05_q95": [float(np.quantile(st.t, 0.05)), float(np.quantile(st.t, 0.95))],
            "eps_at_mean_convergence": float(np.exp(-cfg.baseline_beta * st.t[conv].mean())) if conv.any() else None,
            "wall_s": wall,
        }

    # ---- tabular Q at fixed budgets ------------------------------------------------------------------------------
    for budget in cfg.tabular_budgets:
        tail_start = budget - max(round(cfg.check_tail * budget), 1)
        t0 = time.perf_counter()
        st = tq.init_state(
            tq.calvano_q0(table, m, m * m, cfg.delta),
            seeds=tq.session_seeds(ctx.seed, cfg.tabular_sessions, 30_000_000),
            alpha=cfg.alpha,
            beta=cfg.eps_decay / budget,
        )
        # greedy snapshots at the start of the tail and every T / 100 periods after it, as for DQN
        ends = sorted({tail_start, *range(max(budget // 100, 1), budget + 1, max(budget // 100, 1)), budget})
        last, changes = None, np.zeros(cfg.tabular_sessions, dtype=np.int64)
        for t_end in ends:
            tq.step_sessions(st, table, delta=cfg.delta, conv_window=budget + 1, t_end=t_end)
            if t_end >= tail_start:
                if last is not None:
                    changes += np.any(st.greedy != last, axis=(1, 2))
                last = st.greedy.copy()
        wall = time.perf_counter() - t0
        outcome("tabular", budget, st.greedy, st.s, changes == 0, wall, {"periods": st.t})

    # ---- untrained strategies (T = 0): Q_0's argmax, the initial networks' argmax -----------------------------
    if cfg.tabular_budgets:
        seeds = tq.session_seeds(ctx.seed, cfg.tabular_sessions, 30_000_000)
        st = tq.init_state(tq.calvano_q0(table, m, m * m, cfg.delta), seeds=seeds, alpha=cfg.alpha, beta=1.0)
        outcome("tabular", 0, st.greedy, st.s, np.ones(len(seeds), bool), 0.0, {"periods": st.t})
    if cfg.dqn_budgets:
        keys = tq.session_seeds(ctx.seed, cfg.dqn_sessions, 40_000_000)
        p0 = bp.initial_params(bp.BatchedDQNConfig(hidden=cfg.hidden), keys)
        g0 = bp.greedy_tables(p0, bp.observation_features(economy), len(keys))
        s0 = bp.initial_state_index(keys, m) @ np.array([m, 1])
        outcome("dqn", 0, g0, s0, np.ones(len(keys), bool), 0.0, {"periods": np.zeros(len(keys), np.int64)})
    if cfg.ppo_budgets:  # the policy's mode; PPO shrinks the output layer, which leaves the argmax unchanged
        keys = tq.session_seeds(ctx.seed, cfg.ppo_sessions, 50_000_000)
        p0 = bp.initial_params(bp.BatchedPPOConfig(hidden=cfg.hidden), keys)
        g0 = bp.greedy_tables(p0, bp.observation_features(economy), len(keys))
        s0 = bp.initial_state_index(keys, m) @ np.array([m, 1])
        outcome("ppo", 0, g0, s0, np.ones(len(keys), bool), 0.0, {"periods": np.zeros(len(keys), np.int64)})

    # ---- DQN and PPO at fixed budgets (PPO has no exploration schedule: it explores through its stochastic policy)
    def dqn(budget: int) -> Any:
        return bp.BatchedDQNConfig(
            periods=budget, eps_beta=cfg.eps_decay / budget, gamma=cfg.delta, hidden=cfg.hidden, lr=cfg.lr,
            batch_size=cfg.batch_size, train_every=cfg.train_every, target_update=cfg.target_update,
            buffer_size=cfg.buffer_size, check_tail=cfg.check_tail,
        )  # fmt: skip

    def ppo(budget: int) -> Any:
        return bp.BatchedPPOConfig(
            periods=budget, gamma=cfg.delta, hidden=cfg.hidden, lr=cfg.lr, rollout=cfg.rollout, epochs=cfg.epochs,
            check_tail=cfg.check_tail,
        )  # fmt: skip

    deep = (
        ("dqn", cfg.dqn_budgets, cfg.dqn_sessions, 40_000_000, dqn, bp.train_dqn_sessions),
        ("ppo", cfg.ppo_budgets, cfg.ppo_sessions, 50_000_000, ppo, bp.train_ppo_sessions),
    )
    for learner, learner_budgets, n_sessions, seed_offset, settings, train_sessions in deep:
        for budget in learner_budgets:
            t0 = time.perf_counter()
            res = train_sessions(
                settings(budget), keys=tq.session_seeds(ctx.seed, n_sessions, seed_offset), economy=economy
            )
            wall = time.perf_counter() - t0
            outcome(learner, budget, res.greedy, res.state, res.stable, wall,
                    {"periods": np.full(n_sessions, budget), "profit_gain_train": res.profit_gain_train})  # fmt: skip

    budgets = pl.DataFrame(cells)
    ctx.save_figure("delta_vs_budget", delta_figure(budgets, cfg.eps_decay))
    return {
        "nash_price": economy.p_nash,
        "monopoly_price": economy.p_monopoly,
        "eps_rule": f"beta_T = {cfg.eps_decay} / T, eps_T = {np.exp(-cfg.eps_decay):.3g}",
        "baseline": baseline,
        "cells": cells,
    }


def _greedy_log(greedy: Any, s0: Any, table: Any, grid: Any, m: int, periods: int, case: str) -> Any:
    """Long-format log of undisturbed greedy play from ``s0``: each firm's ``price`` and ``profit``."""
    import numpy as np
    import polars as pl

    from abm_markets.learn import tabular as tq

    play = tq.impulse_response(greedy, s0, table, m, deviator=None, periods=periods)  # (B, T, 2)
    profit = table[:, (play * np.array([m, 1])).sum(-1)]  # (2, B, T)
    b_i, t_i, f_i = np.meshgrid(*(np.arange(n) for n in play.shape), indexing="ij")
    ids = pl.DataFrame({"t": t_i.ravel(), "agent": f_i.ravel(), "session": b_i.ravel()}).with_columns(
        economy=pl.lit(0), case=pl.lit(case)
    )
    return pl.concat(
        [
            ids.with_columns(variable=pl.lit("price"), value=pl.Series(grid[play].ravel())),
            ids.with_columns(variable=pl.lit("profit"), value=pl.Series(np.moveaxis(profit, 0, -1).ravel())),
        ]
    )


def delta_figure(budgets: Any, eps_decay: float) -> Any:
    """Mean Delta with its 95% interval against the budget, one line per learner (``budgets``: the rows of
    ``budgets.parquet``, of one run or several); the converged tabular baseline as a horizontal line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    fig, ax = plt.subplots(figsize=(6.4, 4))
    styles = {
        "tabular": ("o-", "tab:blue", "tabular Q"),
        "dqn": ("s-", "tab:red", "DQN"),
        "ppo": ("^-", "tab:green", "PPO (no ε schedule)"),
    }
    for learner, (style, color, label) in styles.items():
        d = budgets.filter((pl.col("learner") == learner) & (pl.col("budget") > 0)).sort("budget")
        if d.height == 0:
            continue
        y = d["profit_gain_mean"].to_numpy()
        err = [y - d["profit_gain_lo"].to_numpy(), d["profit_gain_hi"].to_numpy() - y]
        n = d["sessions"][0]
        ax.errorbar(d["budget"], y, yerr=err, fmt=style, color=color, capsize=3, label=f"{label} ({n} sessions)")
    base = budgets.filter(pl.col("learner") == "tabular-calvano")
    if base.height:
        ax.axhline(base["profit_gain_mean"][0], color="k", ls="--", lw=1,
                   label=f"tabular Q, Calvano's beta, to convergence ({base['sessions'][0]})")  # fmt: skip
    ax.axhline(0.0, color="gray", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_xlabel(f"periods per session T (exploration exp(-{eps_decay:g} t / T))")
    ax.set_ylabel("profit gain Δ (mean, 95% interval)")
    ax.set_title("Collusion at equal budgets (seed 0; sessions in the legend)")
    ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(0.0, 0.95))
    return fig
