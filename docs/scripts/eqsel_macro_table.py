"""Table of docs/equilibrium_selection_macro.md from the seed runs of ``equilibrium-selection-macro``.

    python docs/scripts/eqsel_macro_table.py runs/esm/seed0 runs/esm/seed1 runs/esm/seed2

Prints one markdown row per (learner, K_0, initial shift): the basin the initial policy ends in, the share of
sessions (tabular Q: every session of every seed; PPO: one per seed) ending in each basin after learning and within
``select_tol`` of a steady state, the perfect-foresight answer, and for PPO (one session per seed) the end capital
over the selected steady state with a 95% t-interval across seeds. Copies the first run's ``plots/basins.png`` to
``docs/img/eqsel_macro_basins.png``.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl
from scipy import stats


def _interval(values: list[float]) -> str:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:.3f}"
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
    half = stats.t.ppf(0.975, n - 1) * sd / n**0.5
    return f"{mean:.3f} ± {half:.3f}"


def main(runs: list[str]) -> None:
    frames = [pl.read_parquet(Path(r) / "basins.parquet").with_columns(seed=pl.lit(i)) for i, r in enumerate(runs)]
    table = pl.concat(frames)
    print(
        "| learner | K_0 | initial shift | initial policy ends | perfect foresight | learned: share low | "
        "share high | share within 3% of a steady state | K_end / K_selected (PPO) | sessions |"
    )
    print("|---|---:|---:|---|---|---:|---:|---:|---:|---:|")
    for key, d in table.group_by("learner", "k0", "init_shift", maintain_order=True):
        learner, k0, shift = key
        w = d["sessions"]
        low = float((d["share_low"] * w).sum() / w.sum())
        high = float((d["share_high"] * w).sum() / w.sum())
        near = float((d["share_at_steady_state"] * w).sum() / w.sum())
        before = "/".join(sorted(set(d["selected_initial_policy"].to_list())))
        ratio = _interval(d["capital_end_over_selected"].to_list()) if learner == "ppo" else "-"
        print(
            f"| {learner} | {k0:g} | {shift:+g} | {before} | {d['perfect_foresight_reachable'][0]} | "
            f"{low:.2f} | {high:.2f} | {near:.2f} | {ratio} | {int(w.sum())} |"
        )
    for learner, d in table.group_by("learner", maintain_order=True):
        w = d["sessions"]
        agree = float((d["share_agrees_with_perfect_foresight"] * w).sum() / w.sum())
        changed = float((d["selected"] != d["selected_initial_policy"]).mean())
        wall = _interval(d.group_by("seed").agg(pl.col("train_wall_s").sum())["train_wall_s"].to_list())
        conv = (
            f"converged (0.2% band over 4 evaluations) {int(d['converged'].sum())}/{d.height}"
            if learner[0] == "ppo"
            else "fixed budget"
        )
        print(
            f"\n{learner[0]}: sessions in the perfect-foresight basin {agree:.3f}; cases whose basin learning "
            f"changed {changed:.3f}; training wall time per seed {wall} s; {conv}"
        )
    img = Path(__file__).resolve().parents[1] / "img" / "eqsel_macro_basins.png"
    shutil.copyfile(Path(runs[0]) / "plots" / "basins.png", img)
    print(f"\nwrote {img}")


if __name__ == "__main__":
    main(sys.argv[1:])
