"""Figures of docs/markets_learning.md from the sweeps' run directories.

Usage: ``python docs/scripts/markets_learning_plots.py OWN_SWEEP TEAM_SWEEP`` (the exercise (a) sweeps over
``n_households``; e.g. ``runs/ml-a-own runs/ml-a-walrasian``). Writes ``docs/img/markets_learning_capital.png``
(learned long-run capital against the competitive and buyer-side Nash steady states, by N^h, mean and 95% interval
over seeds) and ``docs/img/markets_learning_curves.png`` (evaluated capital over training, every seed).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from scipy import stats

from abm_markets.engine.config import InvestmentConfig
from abm_markets.solvers.market_power import market_benchmarks

IMG = Path(__file__).resolve().parents[1] / "img"


def runs(sweep: Path) -> list[tuple[Path, dict]]:
    return [(p.parent, json.loads(p.read_text())) for p in sorted(sweep.glob("*/summary.json"))]


def by_households(sweep: Path) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for _, s in runs(sweep):
        out.setdefault(int(s["n_households"]), []).append(s)
    return out


def mean_ci(v: list[float]) -> tuple[float, float]:
    a = np.asarray(v, dtype=float)
    if a.size < 2:
        return float(a.mean()), math.nan
    return float(a.mean()), float(stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / math.sqrt(a.size))


def main() -> None:
    own, team = Path(sys.argv[1]), Path(sys.argv[2])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    hs = np.array(sorted(by_households(own)))
    grid = np.unique(np.round(np.logspace(0, 3, 60)).astype(int))
    strat = [market_benchmarks(InvestmentConfig(formulation="market", n_households=int(h))) for h in grid]
    ax.plot(grid, [b.capital_strategic / b.capital_competitive for b in strat], color="C3", label="buyer-side Nash")
    ax.axhline(1.0, ls="--", color="grey", label="competitive steady state")
    for sweep, label, off, col in (
        (own, "learned, own-return credit", 0.97, "C0"),
        (team, "learned, model-free PPO", 1.03, "C1"),
    ):
        groups = by_households(sweep)
        xs, ms, cs = [], [], []
        for h in sorted(groups):
            m, c = mean_ci([s["capital_learned_over_competitive"] for s in groups[h]])
            xs.append(h * off)
            ms.append(m)
            cs.append(0.0 if math.isnan(c) else c)
        ax.errorbar(xs, ms, yerr=cs, fmt="o", color=col, capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("households N^h (Walrasian clearing, competitive firms)")
    ax.set_ylabel("long-run K / K_competitive")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "markets_learning_capital.png", dpi=110)

    fig, axes = plt.subplots(1, len(hs), figsize=(4 * len(hs), 3.4), squeeze=False)
    for ax, h in zip(axes[0], hs, strict=True):
        for sweep, col, label in ((own, "C0", "own-return credit"), (team, "C1", "model-free PPO")):
            first = True
            for d, s in runs(sweep):
                if int(s["n_households"]) != h:
                    continue
                m = pl.read_parquet(d / "metrics.parquet").drop_nulls("eval_capital_vs_strategic")
                ax.plot(
                    m["train_wall_s"],
                    m["eval_capital_vs_strategic"],
                    color=col,
                    alpha=0.7,
                    label=label if first else None,
                )
                first = False
        ax.axhline(1.0, color="C3", ls=":", label="buyer-side Nash")
        ax.set_title(f"N^h = {h}")
        ax.set_xlabel("training seconds")
        ax.set_ylabel("K / K_buyer-side Nash")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "markets_learning_curves.png", dpi=110)


if __name__ == "__main__":
    main()
