"""Tables of the Krusell and Smith (1998) section of docs/srl_ks_hank.md from seed runs of ``ks-1998``.

    python docs/scripts/ks1998_table.py runs/ks98/seed0 runs/ks98/seed1 runs/ks98/seed2

Prints the law of motion (KS algorithm, SRL paths, published) per aggregate state with a 95% t-interval across
seeds (each seed draws its own 11,000-quarter aggregate path), the accuracy figures, and draws the first run's
law-of-motion figure from its logs into ``docs/img/ks1998_law_of_motion.png``.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path

from scipy import stats


def _interval(values: list[float], fmt: str = ".4f") -> str:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return f"{mean:{fmt}}"
    sd = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
    half = stats.t.ppf(0.975, n - 1) * sd / n**0.5
    return f"{mean:{fmt}} ± {half:{fmt}}"


def main(runs: list[str]) -> None:
    sums = [json.loads((Path(r) / "summary.json").read_text()) for r in runs]
    sums = [s.get("summary", s) for s in sums]
    print(f"{len(sums)} seeds; mean ± 95% t-interval across seeds\n")
    print("| aggregate state | method | intercept | slope | R^2 | max gap of log K' to the published law (%) |")
    print("|---|---|---:|---:|---:|---:|")
    for nm in ("bad", "good"):
        pub = sums[0][f"published_alm_{nm}"]
        print(f"| {nm} | published (p. 877) | {pub[0]:.3f} | {pub[1]:.3f} | 0.999998 | |")
        for label, pre in (("KS algorithm", ""), ("SRL (law implied by its paths)", "srl_")):
            if f"{pre}alm_{nm}" not in sums[0]:
                continue
            b0 = _interval([s[f"{pre}alm_{nm}"][0] for s in sums])
            b1 = _interval([s[f"{pre}alm_{nm}"][1] for s in sums])
            r2 = _interval([s[f"{pre}r2_{nm}"] for s in sums], ".7f")
            gap = _interval([s[f"{pre}alm_{nm}_prediction_gap_pct"] for s in sums], ".3f")
            print(f"| {nm} | {label} | {b0} | {b1} | {r2} | {gap} |")
    print("\n| figure | KS algorithm | SRL |\n|---|---:|---:|")
    rows = (
        ("mean K", "mean_K", "srl_mean_K", ".4f"),
        ("Den Haan max error (%)", "den_haan_max_pct", "srl_den_haan_max_pct", ".3f"),
        ("Euler error, mean log10", "euler_mean_log10_ks", "euler_mean_log10_srl", ".2f"),
        ("Euler error, 99th pct log10", "euler_p99_log10_ks", "euler_p99_log10_srl", ".2f"),
        ("Euler error, max log10", "euler_max_log10_ks", "euler_max_log10_srl", ".2f"),
        ("wall time (s)", "ks_wall_s", "srl_wall_s", ".1f"),
    )
    for label, a, b, fmt in rows:
        right = _interval([s[b] for s in sums], fmt) if b in sums[0] else ""
        print(f"| {label} | {_interval([s[a] for s in sums], fmt)} | {right} |")
    if "srl_mean_K" in sums[0]:
        print(f"\nSRL mean K vs KS algorithm (%): {_interval([s['srl_mean_K_gap_pct'] for s in sums], '.3f')}")
        print(f"SRL max K path gap (%): {_interval([s['srl_K_path_max_gap_pct'] for s in sums], '.3f')}")
        gap = _interval([s["srl_vs_ks_prediction_gap_pct"] for s in sums], ".3f")
        print(f"SRL law vs KS law, max log K' gap (%): {gap}")
        print(f"SRL epochs: {[s['srl_epochs'] for s in sums]}, converged: {[s['srl_converged'] for s in sums]}")
    import polars as pl

    from abm_markets.scenarios.ks1998 import law_of_motion_figure

    steps = pl.read_parquet(Path(runs[0]) / "steps.parquet")
    get = {
        (v, p): steps.filter((pl.col("variable") == v) & pl.col("policy").eq_missing(p))["value"].to_numpy()
        for v, p in (("capital", "ks_algorithm"), ("capital", "srl"), ("aggregate_state", None))
    }
    burn = int(tomllib.loads((Path(runs[0]) / "config.toml").read_text())["scenario"]["burn"])
    fig = law_of_motion_figure(
        sums[0], get["capital", "ks_algorithm"], get["aggregate_state", None].astype(int), burn, get["capital", "srl"]
    )
    fig.savefig(Path(__file__).resolve().parents[1] / "img" / "ks1998_law_of_motion.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1:])
