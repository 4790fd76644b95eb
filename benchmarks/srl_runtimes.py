"""Wall time of structural RL to convergence, side by side with the SRL paper's A100 figures.

Runs each of the four SRL scenarios that exist in this checkout (Krusell-Smith,
Huggett with aggregate shocks, HANK, partial-equilibrium Huggett) ``--runs``
times with seeds 0, 1, ... through :func:`abm_markets.runner.run_scenario`,
and reads from each ``summary.json`` whether it converged, the epochs and the
SRL training wall time (``srl_wall_s``, else ``wall_s``; reference solutions
and evaluation are not counted) plus the scenario's accuracy figures.

The paper (Yang, Wang, Schaab and Moll; slide "Runtimes", seed 002) reports
averages of 10 runs on one A100 GPU (Google Colab), JAX.

Usage::

    python benchmarks/srl_runtimes.py                 # 10 runs of each model (long)
    python benchmarks/srl_runtimes.py --runs 3
    python benchmarks/srl_runtimes.py --quick         # 1 run, 20 epochs: per-epoch cost only
    python benchmarks/srl_runtimes.py --models huggett-srl huggett-pe-srl --json out.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# model -> (scenario, module that must exist, paper epochs, paper A100 seconds, accuracy keys, fixed overrides)
MODELS: dict[str, tuple[str, str, float, float, tuple[str, ...], dict[str, object]]] = {
    "ks-srl": (
        "ks-srl",
        "abm_markets.srl.ks",
        438.4,
        56.55,
        ("mean_K", "stationary_K", "ks_mean_K", "K_path_max_gap_pct", "resid_goods_max", "euler_error_mean"),
        {"n_agents": 0},
    ),
    "huggett-srl": (
        "huggett-srl",
        "abm_markets.srl.huggett",
        480.6,
        75.29,
        ("resid_bond_mean_abs", "resid_bond_max_abs", "r_mean", "r_sd"),
        {"stationary_reference": False},
    ),
    "hank-srl": (
        "hank-srl",
        "abm_markets.srl.hank",
        496.5,
        199.53,
        ("resid_goods_max", "resid_bond_max", "resid_goods_mean", "resid_bond_mean", "pc_resid_max_abs"),
        {},
    ),
    # not in the paper's table: the aggregate-shock Huggett with the price grid widened to [-0.01, 0.06], so that
    # the clearing rate of the highest TFP states lies on the grid (compare its residuals with huggett-srl's)
    "huggett-srl-wide": (
        "huggett-srl",
        "abm_markets.srl.huggett",
        480.6,
        75.29,
        ("resid_bond_mean_abs", "resid_bond_max_abs", "r_mean", "r_sd"),
        {"stationary_reference": False, "r_min": -0.01},
    ),
    "huggett-pe-srl": (
        "huggett-pe-srl",
        "abm_markets.srl.huggett",
        289.3,
        39.49,
        ("policy_diff_mean", "welfare_ce_pct", "consumption_rel_diff_mean"),
        {},
    ),
}
QUICK = {"max_epochs": 20, "min_epochs": 0, "warmup_epochs": 5, "eval_paths": 4, "eval_periods": 20, "eval_burn_in": 10}


def _run_one(scenario: str, overrides: dict[str, object], seed: int) -> dict:
    from abm_markets.runner import run_scenario

    with tempfile.TemporaryDirectory() as tmp:
        out = run_scenario(scenario, overrides=overrides, seed=seed, out=Path(tmp) / "run", progress=False)
        return json.loads((out / "summary.json").read_text())


def _quick_overrides(scenario: str) -> dict[str, object]:
    """Only the quick-mode keys this scenario's config actually has."""
    from abm_markets import scenarios

    fields = set(scenarios.get(scenario).config.field_docs())
    return {k: v for k, v in QUICK.items() if k in fields}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10, help="runs (seeds 0..N-1) per model; default 10 as in the paper")
    ap.add_argument("--quick", action="store_true", help="1 run of 20 epochs per model: per-epoch cost, no convergence")
    ap.add_argument(
        "--models",
        nargs="*",
        default=["ks-srl", "huggett-srl", "hank-srl", "huggett-pe-srl"],
        help=f"of {', '.join(MODELS)}",
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1: the SRL loop is many small ops)"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error(f"unknown model(s) {unknown}; valid: {', '.join(MODELS)}")
    import torch

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    runs = 1 if args.quick else args.runs
    print(
        f"# SRL runtimes: {runs} run(s) per model, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{os.cpu_count()} CPU(s) visible, load average {os.getloadavg()[0]:.1f} at start"
        + (" [quick: 20 epochs, per-epoch cost only]" if args.quick else "")
    )
    results = {}
    for name in args.models:
        scenario, module, paper_epochs, paper_s, acc_keys, fixed = MODELS[name]
        if importlib.util.find_spec(module) is None:
            print(f"{name}: skipped ({module} not in this checkout)")
            continue
        overrides = dict(fixed)
        if args.quick:
            overrides.update(_quick_overrides(scenario))
        rows = []
        for seed in range(runs):
            t0 = time.perf_counter()
            try:
                s = _run_one(scenario, overrides, seed)
            except Exception as e:  # a model under construction elsewhere must not stop the others
                print(f"  {name} seed {seed}: failed ({type(e).__name__}: {e})", flush=True)
                continue
            wall = float(s.get("srl_wall_s", s["wall_s"]))
            rows.append(
                {
                    "seed": seed,
                    "converged": bool(s.get("converged")),
                    "epochs": int(s["epochs"]),
                    "srl_wall_s": wall,
                    "s_per_epoch": wall / max(int(s["epochs"]), 1),
                    "scenario_s": time.perf_counter() - t0,
                    **{k: s[k] for k in acc_keys if k in s},
                }
            )
            print(f"  {name} seed {seed}: {rows[-1]}", flush=True)
        if not rows:
            continue
        walls = [r["srl_wall_s"] for r in rows]
        epochs = [r["epochs"] for r in rows]
        spe = statistics.mean(r["s_per_epoch"] for r in rows)
        res = {
            "runs": runs,
            "converged": sum(r["converged"] for r in rows),
            "epochs_mean": statistics.mean(epochs),
            "wall_s_mean": statistics.mean(walls),
            "wall_s_sd": statistics.stdev(walls) if len(walls) > 1 else 0.0,
            "s_per_epoch": spe,
            "paper_epochs": paper_epochs,
            "paper_a100_s": paper_s,
            "speedup_vs_a100": paper_s / statistics.mean(walls),
            "projected_s_at_paper_epochs": spe * paper_epochs,
            "accuracy": {k: statistics.mean(float(r[k]) for r in rows) for k in acc_keys if k in rows[0]},
            "rows": rows,
        }
        results[name] = res
        if args.json is not None:  # after every model, so a long benchmark stopped early keeps what it measured
            args.json.write_text(json.dumps(results, indent=1))
    print()
    cols = ["model", "converged", "epochs (mean)", "CPU wall s (mean ± sd)", "s/epoch", "A100 epochs", "A100 s"]
    print("| " + " | ".join([*cols, "A100 s / CPU s"]) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for name, r in results.items():
        cells = [
            name,
            f"{r['converged']}/{r['runs']}",
            f"{r['epochs_mean']:.1f}",
            f"{r['wall_s_mean']:.2f} ± {r['wall_s_sd']:.2f}",
            f"{r['s_per_epoch']:.3f}",
            str(r["paper_epochs"]),
            str(r["paper_a100_s"]),
            f"{r['speedup_vs_a100']:.2f}"
            if not args.quick
            else f"n/a (not converged; s/epoch x A100 epochs = {r['projected_s_at_paper_epochs']:.1f} s)",
        ]
        print("| " + " | ".join(cells) + " |")
    for name, r in results.items():
        print(f"{name} accuracy (mean over runs): {r['accuracy']}")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
