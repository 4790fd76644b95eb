"""Scenario ``equilibrium-selection``: which Pareto-ranked equilibrium do learners select?

Stage game: the two-player production-externality coordination game of
:mod:`abm_markets.solvers.coordination` (Cooper-John style), whose symmetric
equilibria are known in closed form: low ``e_L``, middle ``(e_L + e_H)/2`` and
high ``e_H`` effort, Pareto-ranked, the middle one unstable under best-response
dynamics. Learners of three kinds (:mod:`abm_markets.learn.tabular_games`:
epsilon-greedy Q-learning, Boltzmann Q-learning, fictitious play) play it
repeatedly from every pair of initial beliefs on the effort grid and for several
exploration decays ``beta``, several sessions per cell.

Outcome of a session: the greedy action pair at convergence. It is *selected
equilibrium* ``low``/``mid``/``high`` when best-response dynamics from that pair
end there (the pair itself is an exact equilibrium in ``exact_nash`` of the
cases); the analytic *prediction* is the equilibrium that simultaneous best-response
dynamics reach from the players' initial best responses (undefined, ``none``, where
they cycle: one player's belief low, the other's high). Writes ``basins.parquet`` (one row
per session), ``basin_cells.parquet`` (shares per kind, beta and initial beliefs),
``steps.parquet`` (each player's initial belief and learned effort per session, docs/logs.md) and the plot
``basins`` (one panel per kind and beta).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext
from abm_markets.scenarios import register

_KINDS = ("q-egreedy", "q-boltzmann", "fictitious-play")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EquilibriumSelectionConfig(Config):
    """Settings of the equilibrium-selection experiment."""

    e_low: float = param(0.2, "Low-effort equilibrium e_L.", ge=0.0, le=1.0)
    e_high: float = param(0.8, "High-effort equilibrium e_H.", ge=0.0, le=1.0)
    n_actions: int = param(11, "Effort grid points K on [0, 1].", ge=3, le=41)
    kinds: tuple[str, ...] = param(_KINDS, "Learner kinds: q-egreedy, q-boltzmann, fictitious-play.")
    betas: tuple[float, ...] = param((1e-4, 1e-3, 1e-2), "Exploration decays beta (one map panel each).", gt=0.0)
    alpha: float = param(0.1, "Learning rate of the Q-learners.", gt=0.0, le=1.0)
    eps0: float = param(0.2, "Initial exploration probability (epsilon-greedy and fictitious play).", ge=0.0, le=1.0)
    tau0: float = param(0.02, "Initial Boltzmann temperature (payoff units).", gt=0.0)
    prior_weight: float = param(10.0, "Fictitious play: prior count on the initial belief.", gt=0.0)
    sessions_per_cell: int = param(4, "Sessions per (kind, beta, initial beliefs) cell.", ge=1)
    conv_window: int = param(10_000, "Periods of unchanged greedy actions that count as convergence.", ge=1)
    max_periods: int = param(1_000_000, "Cap on periods per session.", ge=1)

    def validate(self) -> None:
        if not self.e_low < self.e_high:
            raise ConfigError(f"EquilibriumSelectionConfig: e_low = {self.e_low} must be < e_high = {self.e_high}")
        bad = [k for k in self.kinds if k not in _KINDS]
        if bad or not self.kinds:
            raise ConfigError(
                f"EquilibriumSelectionConfig.kinds = {list(self.kinds)} is invalid; expected a non-empty subset of "
                f"{', '.join(_KINDS)}"
            )

    def estimated_bytes(self) -> int:
        """Every session's Q tables / beliefs (2 players x K x K, float64), times the initial-belief cells of each
        kind and beta (at most K^2 per kind and beta), with a factor 4 for records."""
        k = self.n_actions
        sessions = self.sessions_per_cell * len(self.kinds) * len(self.betas) * k * k
        return 4 * sessions * (2 * k * k + 64) * 8


@register(
    "equilibrium-selection",
    config=EquilibriumSelectionConfig,
    description="Basins of attraction of Pareto-ranked equilibria for Q-learning and fictitious-play learners",
    expected_wall_s=5.2,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run(cfg: EquilibriumSelectionConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    from abm_markets.learn.tabular_games import KINDS, run_game_sessions
    from abm_markets.solvers import coordination as co

    # ---- analytic equilibria ----------------------------------------------------------------
    game = co.CoordinationGame(e_low=cfg.e_low, e_high=cfg.e_high, n_actions=cfg.n_actions)
    grid = game.grid
    payoff = co.payoff_matrix(game)
    eq = co.symmetric_equilibria(game)
    grid_ne = co.pure_nash_equilibria(payoff)
    label_of_action = {}
    for name, e in eq.items():
        idx = int(np.argmin(np.abs(grid - e)))
        if (idx, idx) in grid_ne and abs(grid[idx] - e) < 1e-9:
            label_of_action[idx] = name
    if len(label_of_action) != 3 or len(grid_ne) != 3:
        raise ConfigError(
            f"equilibrium-selection: with e_low = {cfg.e_low}, e_high = {cfg.e_high}, n_actions = {cfg.n_actions} "
            f"the grid equilibria {[(float(grid[a]), float(grid[b])) for a, b in grid_ne]} are not exactly the "
            f"analytic {list(eq.values())}; choose e_low, e_high on the grid (e.g. the defaults: 0.2, 0.8, 11 points)"
        )

    # ---- sessions: kinds x betas x initial beliefs x repeats -----------------------------------
    k = cfg.n_actions
    b1, b2 = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    beliefs = np.stack([b1.ravel(), b2.ravel()], axis=1)  # (K*K, 2)
    cells = [(kind, beta) for kind in cfg.kinds for beta in cfg.betas]
    reps = cfg.sessions_per_cell
    n_cell = len(beliefs) * reps
    kind_col = np.repeat([c[0] for c in cells], n_cell)
    beta_col = np.repeat([c[1] for c in cells], n_cell)
    belief = np.tile(np.repeat(beliefs, reps, axis=0), (len(cells), 1))
    t0 = time.perf_counter()
    res = run_game_sessions(
        payoff,
        kind=np.array([KINDS[x] for x in kind_col]),
        alpha=np.full(len(kind_col), cfg.alpha),
        beta=beta_col,
        eps0=cfg.eps0,
        tau0=np.full(len(kind_col), cfg.tau0),
        w0=np.full(len(kind_col), cfg.prior_weight),
        belief=belief,
        seed=ctx.seed,
        conv_window=cfg.conv_window,
        max_periods=cfg.max_periods,
    )
    learn_s = time.perf_counter() - t0

    acts = res["actions"]
    final = co.best_response_dynamics(payoff, acts[:, 0], acts[:, 1])
    br = np.argmax(payoff, axis=0)
    predicted = co.best_response_dynamics(payoff, br[belief[:, 0]], br[belief[:, 1]])
    grid_ne_set = set(grid_ne)

    def label(profile: np.ndarray) -> list[str]:
        return [label_of_action.get(int(a), "none") if a == b else "none" for a, b in profile]

    table = pl.DataFrame(
        {
            "kind": kind_col,
            "beta": beta_col,
            "alpha": np.full(len(kind_col), cfg.alpha),
            "belief_1": belief[:, 0],
            "belief_2": belief[:, 1],
            "belief_effort_1": grid[belief[:, 0]],
            "belief_effort_2": grid[belief[:, 1]],
            "action_1": acts[:, 0],
            "action_2": acts[:, 1],
            "effort_1": grid[acts[:, 0]],
            "effort_2": grid[acts[:, 1]],
            "selected": label(final),
            "exact_nash": [(int(a), int(b)) in grid_ne_set for a, b in acts],
            # gain from the best unilateral deviation at the learned profile (0 at an equilibrium)
            "regret_1": payoff.max(axis=0)[acts[:, 1]] - payoff[acts[:, 0], acts[:, 1]],
            "regret_2": payoff.max(axis=0)[acts[:, 0]] - payoff[acts[:, 1], acts[:, 0]],
            "predicted": label(predicted),
            "converged": res["converged"],
            "periods": res["periods"],
        }
    )
    ctx.write_table("basins", table)
    ctx.write_log("steps", _steps(table))
    cell_tab = table.group_by(
        ["kind", "beta", "belief_1", "belief_2", "belief_effort_1", "belief_effort_2"], maintain_order=True
    ).agg(
        (pl.col("selected") == "low").mean().alias("share_low"),
        (pl.col("selected") == "mid").mean().alias("share_mid"),
        (pl.col("selected") == "high").mean().alias("share_high"),
        pl.col("effort_1").mean().alias("effort_mean"),
        pl.col("predicted").first().alias("predicted"),
    )
    ctx.write_table("basin_cells", cell_tab)

    per: dict[str, Any] = {}
    for (kind, beta), d in table.group_by(["kind", "beta"], maintain_order=True):
        per[f"{kind}|beta={beta:g}"] = {
            "share_low": float((d["selected"] == "low").mean()),
            "share_mid": float((d["selected"] == "mid").mean()),
            "share_high": float((d["selected"] == "high").mean()),
            "exact_nash_share": float(d["exact_nash"].mean()),
            "regret_mean": float(((d["regret_1"] + d["regret_2"]) / 2).mean()),
            "br_prediction_defined_share": float((d["predicted"] != "none").mean()),
            "agrees_with_br_prediction": _agreement(d),
            "converged_share": float(d["converged"].mean()),
            "periods_mean": float(d["periods"].mean()),
        }
        ctx.log_metrics(kind=kind, beta=beta, **per[f"{kind}|beta={beta:g}"])
    mid = eq["mid"]
    lo1, lo2 = pl.col("belief_effort_1") < mid - 1e-9, pl.col("belief_effort_2") < mid - 1e-9
    hi1, hi2 = pl.col("belief_effort_1") > mid + 1e-9, pl.col("belief_effort_2") > mid + 1e-9
    region = (
        pl.when(lo1 & lo2)
        .then(pl.lit("both_low"))
        .when(hi1 & hi2)
        .then(pl.lit("both_high"))
        .when((lo1 & hi2) | (hi1 & lo2))
        .then(pl.lit("miscoordinated"))
        .otherwise(pl.lit("a_belief_at_mid"))
    )
    by_region: dict[str, Any] = {}
    for (kind, reg), d in table.with_columns(region.alias("region")).group_by(["kind", "region"], maintain_order=True):
        by_region[f"{kind}|{reg}"] = {n: float((d["selected"] == n).mean()) for n in ("low", "mid", "high")}
    summary = {
        "by_kind_belief_region": by_region,
        "equilibria": {n: {"effort": e, "payoff": 0.5 * e * e} for n, e in eq.items()},
        "grid_equilibria": [(float(grid[a]), float(grid[b])) for a, b in grid_ne],
        "predicted_share_high": float((table["predicted"] == "high").mean()),
        "sessions": len(table),
        "converged_share": float(table["converged"].mean()),
        "by_kind_beta": per,
        "learn_wall_s": learn_s,
    }
    _plot(ctx, cell_tab, cfg, grid, eq)
    return summary


def _steps(table: Any) -> Any:
    """Long-format log of every session: each player's initial ``belief`` (the rival's effort it expects) at
    ``t = 0``, and its learned ``effort`` and ``regret`` at the period the session stopped; ``case`` is the
    session's ``kind|beta=...`` (the keys of the summary's ``by_kind_beta``)."""
    import polars as pl

    case = [f"{k}|beta={b:g}" for k, b in zip(table["kind"], table["beta"], strict=True)]
    ids = table.with_row_index("session").with_columns(pl.Series("case", case, dtype=pl.String))
    frames = []
    for i in (1, 2):
        for name, column in (("belief", "belief_effort"), ("effort", "effort"), ("regret", "regret")):
            t = pl.lit(0) if name == "belief" else pl.col("periods")
            frames.append(
                ids.select(
                    t.cast(pl.Int64).alias("t"),
                    pl.lit(0).alias("economy"),
                    pl.lit(i - 1).alias("agent"),
                    pl.lit(name).alias("variable"),
                    pl.col(f"{column}_{i}").alias("value"),
                    pl.col("session").cast(pl.Int64),
                    "case",
                )
            )
    return pl.concat(frames)


def _agreement(d: Any) -> float | None:
    """Share of sessions selecting the best-response-dynamics prediction, where that prediction is an equilibrium.

    From miscoordinated beliefs (one low, one high) simultaneous best responses swap the
    two actions forever, so the prediction is defined only for the other beliefs.
    """
    import polars as pl

    defined = d.filter(pl.col("predicted") != "none")
    return float((defined["selected"] == defined["predicted"]).mean()) if len(defined) else None


def _plot(ctx: RunContext, cells: Any, cfg: EquilibriumSelectionConfig, grid: Any, eq: dict[str, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import polars as pl

    k = len(grid)
    nr, nc = len(cfg.kinds), len(cfg.betas)
    fig, axes = plt.subplots(nr, nc, figsize=(3.2 * nc + 1.0, 3.0 * nr), squeeze=False, sharex=True, sharey=True)
    im = None
    for r, kind in enumerate(cfg.kinds):
        for c, beta in enumerate(cfg.betas):
            d = cells.filter((pl.col("kind") == kind) & (pl.col("beta") == beta))
            z = np.full((k, k), np.nan)
            pred = np.zeros((k, k))
            for row in d.iter_rows(named=True):
                z[row["belief_2"], row["belief_1"]] = row["share_high"] - row["share_low"]
                pred[row["belief_2"], row["belief_1"]] = {"low": -1.0, "mid": 0.0, "high": 1.0}.get(row["predicted"], 0)
            ax = axes[r, c]
            ext = (-0.5 / (k - 1), 1 + 0.5 / (k - 1)) * 2
            im = ax.imshow(z, origin="lower", cmap="coolwarm", vmin=-1, vmax=1, extent=ext)
            ax.contour(grid, grid, pred, levels=[-0.5, 0.5], colors="k", linewidths=0.8, linestyles="--")
            ax.set_title(f"{kind}, β = {beta:g}", fontsize=9)
            if r == nr - 1:
                ax.set_xlabel("initial belief of player 1")
            if c == 0:
                ax.set_ylabel("initial belief of player 2")
    fig.suptitle(
        f"Share high − share low effort equilibrium (e = {eq['high']:g} vs {eq['low']:g}); "
        "dashed: best-response-dynamics basin boundary",
        fontsize=9,
    )
    fig.colorbar(im, ax=axes, shrink=0.8, label="share high − share low")
    ctx.save_figure("basins", fig)
