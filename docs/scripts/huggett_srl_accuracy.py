"""Accuracy table of docs/srl.md ("Accuracy of the aggregate-risk solution") from ``huggett-srl`` runs.

Usage: ``python docs/scripts/huggett_srl_accuracy.py RUN_DIR [RUN_DIR ...]``, one default run per seed, e.g.
``abm-markets run huggett-srl --seed 1 --out runs/hsrl_s1``. Prints a Markdown table: each seed's value, and
with two or more seeds the mean and a 95 % t-interval over seeds. The first run's ``plots/accuracy.png`` is copied to
``docs/img/srl_ge_accuracy.png``.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

IMG = Path(__file__).resolve().parents[1] / "img"
ROWS = (
    ("euler_mean_log10", "Euler error, mass-weighted mean log10 (SRL)", "{:.2f}"),
    ("euler_p99_log10", "Euler error, 99th percentile log10 (SRL)", "{:.2f}"),
    ("euler_max_log10", "Euler error, max log10 (SRL)", "{:.2f}"),
    ("reference_euler_mean_log10", "Euler error, mean log10 (reference)", "{:.2f}"),
    ("reference_euler_p99_log10", "Euler error, 99th percentile log10 (reference)", "{:.2f}"),
    ("reference_euler_max_log10", "Euler error, max log10 (reference)", "{:.2f}"),
    ("r_mean", "mean r, SRL", "{:.4f}"),
    ("reference_r_mean", "mean r, reference", "{:.4f}"),
    ("r_mean_gap_bp", "mean r gap SRL - reference (bp)", "{:.1f}"),
    ("r_sd_gap_bp", "sd r gap SRL - reference (bp)", "{:.1f}"),
    ("r_path_gap_bp", "mean abs r gap on the common paths (bp)", "{:.1f}"),
    ("policy_gap_mean", "policy gap, mean abs b' (visited cells)", "{:.3f}"),
    ("policy_gap_q99", "policy gap, 99th pct abs b' (visited cells)", "{:.3f}"),
    ("best_response_policy_gap_mean", "gap to the best response to SRL's law, mean", "{:.3f}"),
    ("srl_law_r2", "R2 of the law fitted to SRL's rates", "{:.4f}"),
    ("reference_law_r2", "R2 of the reference's law", "{:.4f}"),
    ("reference_iterations", "reference iterations", "{:.0f}"),
    ("srl_wall_s", "SRL training (s)", "{:.1f}"),
    ("euler_s", "Euler errors, SRL (s)", "{:.1f}"),
    ("reference_s", "reference incl. its Euler errors (s)", "{:.1f}"),
)
T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26}


def main() -> None:
    runs = [Path(a) for a in sys.argv[1:]]
    if not runs:
        raise SystemExit(__doc__)
    sums = [json.loads((r / "summary.json").read_text()) for r in runs]
    seeds = [s.get("seed", "?") for s in sums]
    head = "| figure | " + " | ".join(f"seed {s}" for s in seeds)
    head += " | mean (95 % interval) |" if len(sums) > 1 else " |"
    print(head)
    print("|---" * (len(sums) + 1 + (len(sums) > 1)) + "|")
    for key, label, fmt in ROWS:
        vals = [float(s[key]) for s in sums if key in s]
        if len(vals) != len(sums):
            continue
        cells = [fmt.format(v) for v in vals]
        if len(vals) > 1:
            mean = sum(vals) / len(vals)
            sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))
            half = T95.get(len(vals) - 1, 1.96) * sd / math.sqrt(len(vals))
            cells.append(f"{fmt.format(mean)} ({fmt.format(mean - half)}, {fmt.format(mean + half)})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    shutil.copyfile(runs[0] / "plots" / "accuracy.png", IMG / "srl_ge_accuracy.png")


if __name__ == "__main__":
    main()
