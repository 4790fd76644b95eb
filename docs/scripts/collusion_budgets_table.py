"""Table and figure of docs/collusion_budgets.md from one or more ``collusion-budgets`` runs.

Usage: ``python docs/scripts/collusion_budgets_table.py RUN_DIR [RUN_DIR ...]``. Reads each run's
``budgets.parquet`` and ``summary.json`` (the logs only), prints the markdown table of the cells and the baseline's
convergence time, and saves ``docs/img/collusion_budgets_delta.png``. Several runs are merged (the preset runs
every cell in one go; the documented figures came from several runs of it, one per group of cells, run side by
side: every cell has its own session seeds, so a cell's numbers do not depend on which other cells share a run).
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

import polars as pl

from abm_markets.scenarios.collusion_budgets import delta_figure

IMG = Path(__file__).resolve().parent.parent / "img"
ORDER = {"tabular-calvano": 0, "tabular": 1, "dqn": 2, "ppo": 3}


def main(runs: list[Path]) -> None:
    cells = pl.concat([pl.read_parquet(r / "budgets.parquet") for r in runs], how="diagonal")
    # each run with deep learners writes their untrained (T = 0) cell; the seeds make the copies identical
    cells = cells.unique(subset=["learner", "budget"], keep="first")
    cells = cells.sort(pl.col("learner").replace_strict(ORDER, default=9), "budget")
    print(
        "| learner | periods T | sessions | Delta mean [95% interval] | stable share | mean price | punished share "
        "| wall (s) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in cells.iter_rows(named=True):
        t = "to convergence" if r["budget"] < 0 else f"{r['budget']:,}"
        stable = "n/a" if r["budget"] == 0 else f"{r['stable_share']:.2f}"
        print(
            f"| {r['learner']} | {t} | {r['sessions']} | {r['profit_gain_mean']:.3f} "
            f"[{r['profit_gain_lo']:.3f}, {r['profit_gain_hi']:.3f}] | {stable} | {r['price_mean']:.3f} "
            f"| {r['punished_share']:.2f} | {r['wall_s']:.0f} |"
        )
    for r in runs:
        summary = json.loads((r / "summary.json").read_text())
        if summary.get("baseline"):
            print("\nbaseline:", json.dumps(summary["baseline"], indent=1))
    decay = tomllib.loads((runs[0] / "config.toml").read_text())["scenario"]["eps_decay"]
    fig = delta_figure(cells, float(decay))
    fig.savefig(IMG / "collusion_budgets_delta.png", dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main([Path(a) for a in sys.argv[1:]])
