"""Figure and table of docs/growth.md from a growth-dimension run (reads only the run's dimension.parquet).

Usage: python docs/scripts/growth_dimension.py runs/growth-dimension
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl

from abm_markets.scenarios.growth_dimension import plot_dimension, summary_rows

ROOT = Path(__file__).resolve().parents[2]


def main(run: str) -> None:
    table = pl.read_parquet(Path(run) / "dimension.parquet")
    fig = plot_dimension(table)
    fig.savefig(ROOT / "docs" / "img" / "growth_dimension.png", dpi=120)
    plt.close(fig)
    print(
        "| method | D | ran | seeds | policy_error (min - max) | welfare loss % | train_wall_s | memory_mb "
        "| buffer_mb | note |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in summary_rows(table):

        def f(x: object, fmt: str = ".3g") -> str:
            return "" if x is None or x != x else format(x, fmt)  # None or NaN: empty

        err = f(r.get("policy_error"), ".3f")
        if "policy_error_min" in r:
            err += f" ({r['policy_error_min']:.3f} - {r['policy_error_max']:.3f})"
        print(
            f"| {r['method']} | {r['D']} | {'yes' if r['ran'] else 'no'} | {r['seeds']} | {err} | "
            f"{f(r.get('welfare_loss_pct'), '.2f')} | {f(r.get('train_wall_s'), '.1f')} | {f(r.get('memory_mb'))} | "
            f"{f(r.get('buffer_mb'))} | {r['note']} |"
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/growth-dimension")
