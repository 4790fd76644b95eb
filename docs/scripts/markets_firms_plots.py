"""Figures of docs/markets_learning.md for exercises (b) and (d), from the sweeps' run directories.

Usage:
``python docs/scripts/markets_firms_plots.py markups SWEEP [SWEEP ...]`` writes
``docs/img/markets_firms_markups.png``: the evaluated markup over training of every run of the exercise (b) sweeps
(one panel per sweep and M, each seed a line) with the Nash and joint-profit benchmarks that match the households
of the sweep (static ones for learning households, the dynamic steady states for rule households).

``python docs/scripts/markets_firms_plots.py critic SWEEP`` writes ``docs/img/markets_critic.png``: the evaluated
long-run capital over training relative to the buyer-side Nash steady state, mean and 95% t-interval over seeds
(as far as every seed ran),
independent critics against the centralised one (the exercise (d) sweep over ``central_critic``).
"""

from __future__ import annotations

import json
import math
import sys
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib import ticker
from scipy import stats

from abm_markets.engine.config import InvestmentConfig
from abm_markets.solvers.market_power import market_benchmarks

IMG = Path(__file__).resolve().parents[1] / "img"


def runs(sweep: Path) -> list[tuple[Path, dict]]:
    return [(p.parent, json.loads(p.read_text())) for p in sorted(sweep.glob("*/summary.json"))]


def evaluations(run: Path, key: str) -> pl.DataFrame:
    m = pl.read_parquet(run / "metrics.parquet")
    return m.select("iteration", key).drop_nulls().sort("iteration")


def benchmarks(s: dict) -> object:
    cfg = InvestmentConfig(
        formulation="market",
        n_households=int(s["n_households"]),
        n_capital_goods=int(s["n_capital_goods"]),
        firms_per_good=int(s["firms_per_good"]),
        market=s["market"],
    )
    return market_benchmarks(cfg, households=s["households"])


def markups(sweeps: list[Path]) -> None:
    panels: list[tuple[str, list[tuple[Path, dict]]]] = []
    for sweep in sweeps:
        groups: dict[tuple, list[tuple[Path, dict]]] = {}
        for d, s in runs(sweep):
            groups.setdefault((s["households"], s["n_capital_goods"], s["firms_per_good"]), []).append((d, s))
        for (hh, nc, m), rs in sorted(groups.items()):
            panels.append((f"{hh} households, N^c = {nc}, M = {m}", rs))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.2), squeeze=False)
    for ax, (title, rs) in zip(axes[0], panels, strict=True):
        bm = benchmarks(rs[0][1])
        for i, (d, _) in enumerate(rs):
            e = evaluations(d, "eval_markup")
            ax.plot(e["iteration"], e["eval_markup"], color=f"C{i}", lw=1, label=f"seed {i}")
        ax.axhline(bm.markup_nash, color="k", ls="--", lw=1, label="Nash")
        ax.axhline(bm.markup_joint, color="C3", ls=":", lw=1.2, label="joint profit")
        ax.axhline(1.0, color="grey", lw=0.8, label="competitive")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_yticks([1, 1.5, 2, 3, 5, 8])
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("iteration")
    axes[0][0].set_ylabel("markup: price / marginal cost")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(IMG / "markets_firms_markups.png", dpi=110)


def mean_ci(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = a.shape[0]
    half = stats.t.ppf(0.975, n - 1) * a.std(0, ddof=1) / math.sqrt(n) if n > 1 else np.zeros(a.shape[1])
    return a.mean(0), half


def critic(sweep: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    arms: dict[bool, list[pl.DataFrame]] = {}
    for d, _ in runs(sweep):
        cc = tomllib.loads((d / "config.toml").read_text())["scenario"]["central_critic"]
        arms.setdefault(bool(cc), []).append(evaluations(d, "eval_capital_vs_strategic"))
    for cc, frames in sorted(arms.items()):
        n = min(len(f) for f in frames)
        it = frames[0]["iteration"][:n].to_numpy()
        ratio = np.stack([f["eval_capital_vs_strategic"][:n].to_numpy() for f in frames])
        m, h = mean_ci(ratio)
        label = f"{'centralised critic' if cc else 'independent critics'} ({len(frames)} seeds)"
        ax.plot(it, m, color="C1" if cc else "C0", label=label)
        ax.fill_between(it, m - h, m + h, color="C1" if cc else "C0", alpha=0.2)
    ax.axhspan(0.98, 1.02, color="grey", alpha=0.15, label="within 2% of the buyer-side Nash")
    ax.set_xlabel("iteration")
    ax.set_ylabel("long-run K / K_buyer-side Nash")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(IMG / "markets_critic.png", dpi=110)


def main() -> None:
    what, dirs = sys.argv[1], [Path(a) for a in sys.argv[2:]]
    if what == "markups":
        markups(dirs)
    elif what == "critic":
        critic(dirs[0])
    else:
        raise SystemExit(f"unknown figure {what!r}; expected markups or critic")


if __name__ == "__main__":
    main()
