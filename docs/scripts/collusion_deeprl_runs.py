"""Run ``collusion-deeprl`` for every learner x observation variant; write the figures of docs/collusion_deeprl.md.

Usage: ``python docs/scripts/collusion_deeprl_runs.py [OUT_DIR] [--set key=value ...]``. Each variant is one run
directory ``OUT_DIR/<learner>_<observation>``; the script prints a Markdown table of the summaries, writes it to
``OUT_DIR/table.md`` and saves ``docs/img/collusion_deeprl_delta.png`` (Delta per variant) and the price-path
plots of the ``full`` variants as ``docs/img/collusion_deeprl_<learner>_paths.png``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from abm_markets.runner import run_scenario

LEARNERS = ("dqn", "ppo")
OBSERVATIONS = ("full", "own", "lagged", "noisy")
IMG = Path(__file__).resolve().parents[1] / "img"


def main() -> None:
    args = sys.argv[1:]
    out = Path(args[0]) if args and not args[0].startswith("--") else Path("runs/collusion_deeprl")
    extra = dict(a.split("=", 1) for a in args[args.index("--set") + 1 :]) if "--set" in args else {}
    summaries = {}
    for learner in LEARNERS:
        for obs in OBSERVATIONS:
            d = out / f"{learner}_{obs}"
            if not (d / "summary.json").exists():
                run_scenario(
                    "collusion-deeprl", overrides={"learner": learner, "observation": obs, **extra}, seed=0, out=d
                )
            summaries[(learner, obs)] = json.loads((d / "summary.json").read_text())
    lines = [
        "| learner | observation | Delta mean | Delta per session | mean price | stationary share "
        "| env steps | train wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for (learner, obs), s in summaries.items():
        per = ", ".join(f"{g:.2f}" for g in s["profit_gain_sessions"])
        lines.append(
            f"| {learner} | {obs} | {s['profit_gain_mean']:.3f} | {per} | {s['price_mean']:.3f} "
            f"| {s['stationary_share']:.2f} | {s['train_env_steps']:,} | {s['train_wall_s']:.0f} |"
        )
    table = "\n".join(lines)
    print(table)
    (out / "table.md").write_text(table + "\n")

    fig, ax = plt.subplots(figsize=(8, 4))
    for j, learner in enumerate(LEARNERS):
        for i, obs in enumerate(OBSERVATIONS):
            s = summaries[(learner, obs)]
            x = i + (j - 0.5) * 0.3
            ax.scatter([x] * len(s["profit_gain_sessions"]), s["profit_gain_sessions"], color=f"C{j}", s=18, alpha=0.6)
            ax.scatter(
                [x], [s["profit_gain_mean"]], color=f"C{j}", marker="_", s=400, label=learner if i == 0 else None
            )
    ax.axhline(0.0, color="k", ls="--", lw=1, label="Nash")
    ax.axhline(0.846, color="g", ls=":", lw=1.5, label="tabular Q-learning (0.846)")
    ax.set_xticks(range(len(OBSERVATIONS)), OBSERVATIONS)
    ax.set(xlabel="observation", ylabel="profit gain Delta", title="Deep-RL duopolists: Delta per session (bar: mean)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    IMG.mkdir(exist_ok=True)
    fig.savefig(IMG / "collusion_deeprl_delta.png", dpi=110)
    for learner in LEARNERS:
        shutil.copyfile(
            out / f"{learner}_full" / "plots" / "price_paths.png", IMG / f"collusion_deeprl_{learner}_paths.png"
        )


if __name__ == "__main__":
    main()
