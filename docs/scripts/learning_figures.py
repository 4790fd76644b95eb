"""Tables and figures of docs/learning.md from run directories of the learning scenarios.

Run from the repository root after the runs (each an ordinary ``abm-markets run``)::

    abm-markets run investment-planner --out runs/learn-planner-ppo
    abm-markets run scenarios/investment-planner-sac.toml --out runs/learn-planner-sac
    abm-markets run scenarios/investment-planner-dqn.toml --out runs/learn-planner-dqn
    abm-markets run scenarios/investment-scaling.toml --out runs/learn-scaling
    abm-markets run scenarios/investment-ablation.toml --out runs/learn-ablation
    python docs/scripts/learning_figures.py runs

Prints the Markdown tables and copies the runs' plots to ``docs/img/learn_*.png``. Missing runs are skipped.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl

IMG = Path("docs/img")


def _copy(run: Path, plot: str, name: str) -> None:
    src = run / "plots" / f"{plot}.png"
    if src.exists():
        IMG.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, IMG / f"learn_{name}.png")


def _fmt(x: object, digits: int = 3) -> str:
    if isinstance(x, float):
        return "n/a" if x != x else f"{x:,.{digits}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def planner(root: Path) -> None:
    print(
        "| learner | welfare_rl | welfare_dp | CE gap % | policy error % | long-run K/K_ss | env steps | train wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for algo in ("ppo", "sac", "dqn"):
        run = root / f"learn-planner-{algo}"
        if not (run / "summary.json").exists():
            continue
        s = json.loads((run / "summary.json").read_text())
        print(
            f"| {algo} | {_fmt(s['welfare_rl'])} | {_fmt(s['welfare_dp'])} | {_fmt(s['welfare_gap_ce_pct'])} | "
            f"{_fmt(100 * s['policy_error'])} | {_fmt(s['mean_capital_ratio_rl'])} | {_fmt(s['train_env_steps'])} | "
            f"{_fmt(s['train_wall_s'], 1)} |"
        )
        if algo == "ppo":
            print(
                f"| steady-state rule | {_fmt(s['welfare_steady_state_rule'])} | | "
                f"{_fmt(s['welfare_gap_ce_pct_steady_state_rule'])} | "
                f"{_fmt(100 * s['policy_error_steady_state_rule'])} | | | |"
            )
        _copy(run, "learning_curve", f"planner_{algo}_learning_curve")
        _copy(run, "policy_learned_vs_dp", f"planner_{algo}_policy")
    print()


def scaling(root: Path) -> None:
    run = root / "learn-scaling"
    if not (run / "scaling.parquet").exists():
        return
    t = pl.read_parquet(run / "scaling.parquet")
    print(
        "| exercise | N^h | N^c | K_ss numerical | learned long-run K | K / K_ss | welfare/household (RL) | "
        "welfare/household (ss rule) | CE vs ss rule % | env steps to converge | wall s to converge | "
        "train env steps | train wall s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in t.iter_rows(named=True):
        print(
            f"| {r['exercise']} | {r['n_households']} | {r['n_goods']} | {_fmt(r['k_steady_state_numerical'])} | "
            f"{_fmt(r['k_learned_long_run'])} | {_fmt(r['k_learned_over_steady_state'])} | "
            f"{_fmt(r['welfare_per_household_rl'])} | {_fmt(r['welfare_per_household_ss_rule'])} | "
            f"{_fmt(r['ce_gap_vs_ss_rule_pct'])} | {_fmt(r['env_steps_to_converge'], 0)} | "
            f"{_fmt(r['wall_s_to_converge'], 1)} | {_fmt(r['train_env_steps'])} | {_fmt(r['train_wall_s'], 1)} |"
        )
    print()
    _copy(run, "scaling_capital", "scaling_capital")
    _copy(run, "scaling_learning", "scaling_learning")


def ablation(root: Path) -> None:
    run = root / "learn-ablation"
    if not (run / "ablation.parquet").exists():
        return
    t = pl.read_parquet(run / "ablation.parquet")
    print(
        "| action | budget | CE gap % | policy error % | long-run K/K_ss | env steps to 1% CE | wall s to 1% CE "
        "| train wall s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in t.iter_rows(named=True):
        print(
            f"| {r['action']} | {r['budget']} | {_fmt(r['welfare_gap_ce_pct'])} | {_fmt(100 * r['policy_error'])} | "
            f"{_fmt(r['mean_capital_ratio'])} | {_fmt(r['env_steps_to_1pct'], 0)} | {_fmt(r['wall_s_to_1pct'], 1)} | "
            f"{_fmt(r['train_wall_s'], 1)} |"
        )
    print()
    _copy(run, "ablation_learning", "ablation_learning")


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    planner(root)
    scaling(root)
    ablation(root)


if __name__ == "__main__":
    main()
