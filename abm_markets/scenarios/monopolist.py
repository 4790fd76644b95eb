"""Scenario ``monopolist-q``: a Q-learning monopolist facing known logit demand (MarketsAI outline, example 1).

One firm sells one good with logit demand ``q = exp((a - p)/mu) / (exp((a - p)/mu) +
exp(a_0/mu))`` at cost ``c``; it picks prices from a fixed grid (default 15 points
on [1, 2.5], which does not contain the optimum). The analytic monopoly price is
``p* = c + mu (1 + W(exp((a - c - a_0)/mu - 1)))`` (solved numerically in
:func:`abm_markets.solvers.pricing.joint_monopoly`). With memory 0 the problem has
one state, so Q-learning started from an uninformative ``Q = 0`` must end at the
grid price with the highest profit, within half a grid step of ``p*``. Writes
``sessions.parquet``, ``steps.parquet`` (each session's learned price and profit,
docs/logs.md), ``metrics.parquet`` (one row per session) and the plot
``learned_prices``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class MonopolistConfig(Config):
    """Settings of the Q-learning monopolist."""

    n_sessions: int = param(100, "Independent sessions.", ge=1)
    grid_size: int = param(15, "Price grid points.", ge=2)
    price_min: float = param(1.0, "Lowest grid price.", ge=0.0)
    price_max: float = param(2.5, "Highest grid price.", gt=0.0)
    q_init: float = param(0.0, "Initial Q value of every price (uninformative).")
    alpha: float = param(0.1, "Learning rate.", gt=0.0, le=1.0)
    beta: float = param(1e-4, "Exploration decay: eps_t = exp(-beta t).", gt=0.0)
    delta: float = param(0.9, "Discount factor.", ge=0.0, lt=1.0)
    a: float = param(2.0, "Quality index a.")
    a0: float = param(0.0, "Outside good quality a_0.")
    cost: float = param(1.0, "Marginal cost.", ge=0.0)
    mu: float = param(0.25, "Logit differentiation mu.", gt=0.0)
    conv_window: int = param(10_000, "Periods of unchanged greedy price that count as convergence.", ge=1)
    max_periods: int = param(2_000_000, "Cap on periods per session.", ge=1)

    def validate(self) -> None:
        if not self.price_min < self.price_max:
            raise ConfigError(f"MonopolistConfig: price_min = {self.price_min} must be < price_max = {self.price_max}")

    def estimated_bytes(self) -> int:
        """Q tables (m prices) and per-session records of every session, float64, with a factor 4."""
        return 4 * self.n_sessions * (self.grid_size + 64) * 8


@register(
    "monopolist-q",
    config=MonopolistConfig,
    description="Q-learning monopolist with logit demand; learned price vs the analytic monopoly price",
    expected_wall_s=1.2,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run(cfg: MonopolistConfig, ctx: RunContext) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import polars as pl

    from abm_markets.learn import tabular as tq
    from abm_markets.solvers import pricing

    market = pricing.LogitMarket(n_firms=1, a=(cfg.a,), a0=cfg.a0, c=(cfg.cost,), mu=cfg.mu)
    p_star = float(pricing.joint_monopoly(market)[0])
    grid = np.linspace(cfg.price_min, cfg.price_max, cfg.grid_size)
    table = pricing.profit_table(grid, market)
    best = int(np.argmax(table[0]))
    st = tq.run_q_learning(
        table, m=cfg.grid_size, memory=0, n_sessions=cfg.n_sessions, alpha=cfg.alpha, beta=cfg.beta,
        delta=cfg.delta, conv_window=cfg.conv_window, max_periods=cfg.max_periods, seed=ctx.seed,
        q0=np.full((1, 1, cfg.grid_size), cfg.q_init),
    )  # fmt: skip
    learned = st.greedy[:, 0, 0]
    for b in range(cfg.n_sessions):
        ctx.log_metrics(session=b, price=float(grid[learned[b]]), periods=int(st.t[b]), converged=bool(st.done[b]))
    ctx.write_table(
        "sessions",
        pl.DataFrame(
            {"session": np.arange(cfg.n_sessions), "price": grid[learned], "converged": st.done, "periods": st.t}
        ),
    )
    # the greedy price is the same in every period (one state): one row per session at the period it stopped
    ids = {"t": st.t, "economy": 0, "agent": 0, "session": np.arange(cfg.n_sessions)}
    ctx.write_log(
        "steps",
        pl.concat(
            pl.DataFrame({**ids, "variable": name, "value": v})
            for name, v in (("price", grid[learned]), ("profit", table[0, learned]))
        ),
    )
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(grid, table[0], "o-", label="profit on the grid")
    ax.axvline(p_star, color="k", ls="--", label=f"analytic p* = {p_star:.4f}")
    counts = np.bincount(learned, minlength=cfg.grid_size) / cfg.n_sessions
    ax2 = ax.twinx()
    ax2.bar(grid, counts, width=(grid[1] - grid[0]) * 0.6, alpha=0.3, color="tab:red", label="learned (share)")
    ax.set_xlabel("price")
    ax.set_ylabel("profit per period")
    ax2.set_ylabel("share of sessions")
    ax.legend(frameon=False, loc="lower center")
    ctx.save_figure("learned_prices", fig)
    return {
        "monopoly_price": p_star,
        "grid_optimal_price": float(grid[best]),
        "learned_price_mean": float(grid[learned].mean()),
        "share_at_grid_optimum": float((learned == best).mean()),
        "abs_gap_to_analytic_mean": float(np.abs(grid[learned] - p_star).mean()),
        "grid_step": float(grid[1] - grid[0]),
        "converged_share": float(st.done.mean()),
        "periods_to_converge_mean": float(st.t.mean()),
    }
