"""Table and figure of docs/irf_ssj.md: Krusell-Smith impulse responses, project vs sequence-jacobian.

Run from the repository root (about 2 minutes on one core)::

    OMP_NUM_THREADS=1 python docs/scripts/irf_ssj.py [--out runs/irf_ssj]

Writes every response in long format to ``<out>/irfs.parquet`` (source, variable, t, value, se), prints the
Markdown tables of the page, and draws ``docs/img/irf_ssj_ks.png`` from the Parquet file alone.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import polars as pl
import torch

from abm_markets.solvers.krusell_smith import KSConfig, solve_krusell_smith
from abm_markets.solvers.ssj_oracle import ssj_impulse_responses
from abm_markets.solvers.transition import (
    VARIABLES,
    TransitionConfig,
    impulse_response,
    irf_gap_pct,
    ks_girf,
    steady_state,
    transition_jacobian,
)

# ---------------------------------------------------------------- configuration
CFG = TransitionConfig(n_a=200, T=300)  # the KS calibration and asset grid of KSCalibration
KS = KSConfig()  # KS algorithm at its defaults (n_a 200, n_K 12, 2,000 periods)
SMALL, BIG = 1e-4, 0.01  # log TFP shocks
HORIZON = 20  # periods in the gap measure
GIRF_PATHS, GIRF_HORIZON, SEED = 2000, 30, 0
IMG = Path(__file__).resolve().parents[1] / "img" / "irf_ssj_ks.png"


def frame(source: str, irf: dict[str, torch.Tensor], se: dict[str, torch.Tensor] | None = None) -> pl.DataFrame:
    """Long-format rows of one set of responses (per unit of log TFP)."""
    rows = []
    for k in VARIABLES:
        n = min(int(irf[k].shape[0]), GIRF_HORIZON + 10)
        for t in range(n):
            rows.append((source, k, t, float(irf[k][t]), float(se[k][t]) if se is not None else None))
    schema = {"source": pl.String, "variable": pl.String, "t": pl.Int64, "value": pl.Float64, "se": pl.Float64}
    return pl.DataFrame(rows, schema=schema, orient="row")


def compute(out: Path) -> tuple[pl.DataFrame, dict]:
    info: dict = {}
    t0 = time.perf_counter()
    ss = steady_state(CFG)
    info["project_ss_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    J = transition_jacobian(CFG, ss)
    info["project_jacobian_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    sol = solve_krusell_smith(KS)
    info["ks_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    girf = ks_girf(sol, KS, horizon=GIRF_HORIZON, n_paths=GIRF_PATHS, generator=torch.Generator().manual_seed(SEED))
    info["girf_s"] = time.perf_counter() - t0
    xh = girf.log_z_shock
    t0 = time.perf_counter()
    steady, linear, nonlinear = ssj_impulse_responses(CFG, eps_nonlinear=(BIG, xh))
    info["ssj_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    project = {
        "project, eps = 1e-4": impulse_response(CFG, SMALL, ss=ss, jacobian=J),
        "project, eps = +-1e-4 central": impulse_response(CFG, SMALL, ss=ss, jacobian=J, central=True),
        "project, eps = 1 %": impulse_response(CFG, BIG, ss=ss, jacobian=J),
        "project, eps = log z_high": impulse_response(CFG, xh, ss=ss, jacobian=J),
    }
    info["project_transitions_s"] = time.perf_counter() - t0
    info.update(
        project_K=ss.K, project_r=ss.r, project_C=ss.C, project_excess=ss.excess, ssj=steady, log_z_high=xh, ks=sol
    )
    frames = [frame("SSJ linear", linear), frame("SSJ nonlinear, eps = 1 %", nonlinear[BIG])]
    frames.append(frame("SSJ nonlinear, eps = log z_high", nonlinear[xh]))
    frames += [frame(name, irf) for name, irf in project.items()]
    scaled = {k: v / xh for k, v in girf.mean.items()}
    frames.append(frame("KS-algorithm GIRF", scaled, {k: v / xh for k, v in girf.se.items()}))
    table = pl.concat(frames)
    out.mkdir(parents=True, exist_ok=True)
    table.write_parquet(out / "irfs.parquet")
    return table, info


def responses(table: pl.DataFrame, source: str) -> dict[str, torch.Tensor]:
    d = table.filter(pl.col("source") == source).sort("t")
    return {k: torch.tensor(d.filter(pl.col("variable") == k)["value"].to_list()) for k in VARIABLES}


def print_tables(table: pl.DataFrame, info: dict) -> None:
    ssj = info["ssj"]
    print("| quantity | project | sequence-jacobian | relative gap |")
    print("|---|---:|---:|---:|")
    for k in ("K", "r", "C"):
        p = info[f"project_{k}"]
        print(f"| {k} | {p:.8f} | {ssj[k]:.8f} | {p / ssj[k] - 1:+.1e} |")
    print(f"| asset-market residual | {info['project_excess']:.1e} | {ssj['asset_mkt']:.1e} | |")
    print()
    rows = [
        ("project, eps = 1e-4", "SSJ linear"),
        ("project, eps = +-1e-4 central", "SSJ linear"),
        ("project, eps = 1 %", "SSJ linear"),
        ("project, eps = 1 %", "SSJ nonlinear, eps = 1 %"),
        ("project, eps = log z_high", "SSJ linear"),
        ("project, eps = log z_high", "SSJ nonlinear, eps = log z_high"),
        ("KS-algorithm GIRF", "SSJ linear"),
        ("KS-algorithm GIRF", "project, eps = log z_high"),
    ]
    print("| project | against | " + " | ".join(VARIABLES) + " | max |")
    print("|---|---|" + "---:|" * (len(VARIABLES) + 1))
    for a, b in rows:
        gap = irf_gap_pct(responses(table, a), responses(table, b), horizon=HORIZON)
        cells = " | ".join(f"{gap[k]:.2g}" for k in VARIABLES)
        print(f"| {a} | {b} | {cells} | **{gap['max']:.2g}** |")
    girf = table.filter((pl.col("source") == "KS-algorithm GIRF") & (pl.col("t") < HORIZON))
    lin = table.filter((pl.col("source") == "SSJ linear") & (pl.col("t") < HORIZON))
    noise = []
    for k in VARIABLES:
        peak = lin.filter(pl.col("variable") == k)["value"].abs().max()
        noise.append(f"{k} {100 * 2 * girf.filter(pl.col('variable') == k)['se'].max() / peak:.2g}")
    print(f"\nGIRF Monte Carlo noise, 2 s.e. as % of the SSJ peak, max over t < {HORIZON}: " + ", ".join(noise))
    ks = info["ks"]
    print(
        f"KS algorithm: converged {ks.converged} in {ks.outer_iterations} outer iterations, "
        f"R^2 min {float(ks.r2.min()):.6f}, Den Haan max {ks.den_haan_max:.2f} %; log z_high = {info['log_z_high']:.5f}"
    )
    times = {k: round(v, 1) for k, v in info.items() if k.endswith("_s")}
    print(f"wall times (s): {times}")


def plot(parquet: Path) -> None:
    """Responses of K, C and r per unit of log TFP, read from the Parquet file only."""
    table = pl.read_parquet(parquet).filter(pl.col("t") < GIRF_HORIZON)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    styles = {
        "SSJ linear": {"color": "black", "lw": 2.0, "label": "SSJ first order"},
        "project, eps = 1e-4": {"color": "tab:orange", "ls": "none", "marker": "o", "ms": 3.5},
        "project, eps = log z_high": {"color": "tab:blue", "ls": "--"},
        "KS-algorithm GIRF": {"color": "tab:red", "lw": 1.2},
    }
    styles["project, eps = 1e-4"]["label"] = "project nonlinear, eps = 1e-4"
    styles["project, eps = log z_high"]["label"] = "project nonlinear, eps = log z_high"
    styles["KS-algorithm GIRF"]["label"] = f"KS-algorithm GIRF ({GIRF_PATHS} paths, ±2 s.e.)"
    titles = {"K": "capital K_t (start of period)", "C": "consumption C_t", "r": "interest rate r_t"}
    for ax, k in zip(axes, ("K", "C", "r"), strict=True):
        for source, style in styles.items():
            d = table.filter((pl.col("source") == source) & (pl.col("variable") == k)).sort("t")
            ax.plot(d["t"], d["value"], **style)
            if d["se"].null_count() == 0:
                lo, hi = d["value"] - 2 * d["se"], d["value"] + 2 * d["se"]
                ax.fill_between(d["t"], lo, hi, color=style["color"], alpha=0.2)
        ax.axhline(0.0, color="grey", lw=0.5)
        ax.set_title(titles[k])
        ax.set_xlabel("period t")
    axes[0].set_ylabel("response per unit of log z_0")
    axes[0].legend(fontsize=7.5, loc="lower right")
    fig.suptitle("Krusell-Smith: TFP impulse responses, project vs sequence-space Jacobian (T = 300, 200 asset points)")
    fig.tight_layout()
    fig.savefig(IMG, dpi=120)
    print(f"wrote {IMG}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/irf_ssj"), help="folder for irfs.parquet")
    args = parser.parse_args()
    table, info = compute(args.out)
    print_tables(table, info)
    plot(args.out / "irfs.parquet")


if __name__ == "__main__":
    main()
