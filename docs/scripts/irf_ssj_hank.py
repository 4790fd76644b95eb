"""Table and figure of docs/irf_ssj.md, HANK: the SRL-learned responses (``hank-srl`` runs) vs sequence-jacobian.

Make the two runs first (about 5 minutes each on one core), then run this script from the repository root::

    OMP_NUM_THREADS=1 abm-markets run scenarios/hank-srl.toml --set policy_interpolation=share --out runs/hank-share
    OMP_NUM_THREADS=1 abm-markets run scenarios/hank-srl.toml --out runs/hank-savings
    OMP_NUM_THREADS=1 python docs/scripts/irf_ssj_hank.py --run share=runs/hank-share \\
        --run savings=runs/hank-savings [--out runs/irf_ssj_hank]

Reads each run's ``summary.json``, ``config.toml`` and the ``irf_*`` rows of ``steps.parquet``; solves SSJ on
the same calibration (first order and its own nonlinear transition at the run's shock); writes every response
in long format to ``<out>/irfs.parquet`` (source, variable, t, value; per unit of ``m_0``), prints the Markdown
tables of the page and draws ``docs/img/irf_ssj_hank.png`` from the Parquet file alone.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import torch

from abm_markets.solvers.hank_ssj import VARIABLES, hank_ssj
from abm_markets.solvers.transition import irf_gap_pct
from abm_markets.srl.hank import HANKEconomyConfig

HORIZON = 20  # periods in the gap measure
FIGURE = Path("docs/img/irf_ssj_hank.png")


def read_run(path: Path) -> tuple[dict, dict, dict[str, np.ndarray]]:
    summary = json.loads((path / "summary.json").read_text())
    settings = tomllib.loads((path / "config.toml").read_text())
    settings = settings.get("scenario", settings)
    steps = pl.read_parquet(path / "steps.parquet").filter(pl.col("variable").str.starts_with("irf_"))
    irf = {
        v[4:]: steps.filter(pl.col("variable") == v).sort("t")["value"].to_numpy()
        for v in steps["variable"].unique().to_list()
    }
    return summary, settings, irf


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR of a hank-srl run (repeatable)")
    ap.add_argument("--out", type=Path, default=Path("runs/irf_ssj_hank"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    runs = {}
    for item in args.run:
        label, _, path = item.partition("=")
        runs[label] = read_run(Path(path))
    _, settings0, irf0 = next(iter(runs.values()))
    names = {f for f in HANKEconomyConfig.__dataclass_fields__}
    econ = HANKEconomyConfig(**{k: v for k, v in settings0.items() if k in names})
    m0 = float(irf0["m"][0])
    ssj = hank_ssj(econ, nonlinear_shocks=(m0,))

    rows = []
    for k in VARIABLES:
        rows.append(("ssj_linear", k, ssj.linear[k][:HORIZON]))
        rows.append(("ssj_nonlinear", k, ssj.nonlinear[m0][k][:HORIZON]))
    rows.append(("ssj_linear", "m", ssj.rho_m ** np.arange(HORIZON)))
    for label, (_, _, irf) in runs.items():
        for k in (*VARIABLES, "m"):
            rows.append((f"srl_{label}", k, irf[k][:HORIZON] / m0))
    frame = pl.concat(
        pl.DataFrame({"source": s, "variable": k, "t": np.arange(len(v)), "value": np.asarray(v, dtype=float)})
        for s, k, v in rows
    )
    frame.write_parquet(args.out / "irfs.parquet")

    # ---------------------------------------------------------------- tables
    def path(source: str, k: str) -> torch.Tensor:
        f = frame.filter((pl.col("source") == source) & (pl.col("variable") == k)).sort("t")
        return torch.as_tensor(f["value"].to_numpy().copy())

    s = ssj.steady
    print(f"SSJ steady state: beta {s['beta']:.10f}, R {s['R']:.6f}, w {s['w']:.8f}, Y {s['Y']:.8f}, "
          f"C {s['C']:.8f}, asset_mkt {s['asset_mkt']:.1e}, goods_mkt {s['goods_mkt']:.1e}")  # fmt: skip
    print(f"m_0 = {m0:.6f}, rho_m = {ssj.rho_m:.6f}\n")
    print(
        "| run | beta | mean R | mean w | mean Y | bond resid max / mean | goods resid max / mean "
        "| Y impact | resid_goods_max / abs(Y impact) | epochs | SRL s | run s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, (sm, _, irf) in runs.items():
        y0 = abs(float(irf["Y"][0]))
        print(
            f"| {label} | {sm['beta']:.8f} | {sm['mean_R']:.5f} | {sm['mean_w']:.5f} | {sm['mean_Y']:.5f} "
            f"| {sm['resid_bond_max']:.1e} / {sm['resid_bond_mean']:.1e} "
            f"| {sm['resid_goods_max']:.1e} / {sm['resid_goods_mean']:.1e} | {-y0:.2e} "
            f"| 1/{y0 / sm['resid_goods_max']:.1f} | {sm['epochs']} | {sm['srl_wall_s']:.0f} | {sm['wall_s']:.0f} |"
        )
    print(
        f"\nSSJ Y impact: first order {m0 * ssj.linear['Y'][0]:.2e}, nonlinear {m0 * ssj.nonlinear[m0]['Y'][0]:.2e}\n"
    )
    print("| responses | against | " + " | ".join(VARIABLES) + " | max |")
    print("|---|---|" + "---:|" * (len(VARIABLES) + 1))
    lin = {k: path("ssj_linear", k) for k in VARIABLES}
    nl = {k: path("ssj_nonlinear", k) for k in VARIABLES}
    pairs = [("SSJ nonlinear", nl, "SSJ first order", lin)]
    for label in runs:
        srl = {k: path(f"srl_{label}", k) for k in VARIABLES}
        pairs += [(f"SRL {label}", srl, "SSJ first order", lin), (f"SRL {label}", srl, "SSJ nonlinear", nl)]
    for a, pa, b, pb in pairs:
        g = irf_gap_pct(pa, pb, horizon=HORIZON, variables=VARIABLES)
        print(f"| {a} | {b} | " + " | ".join(f"{g[k]:.1f}" for k in VARIABLES) + f" | **{g['max']:.1f}** |")
    for label in runs:
        m = path(f"srl_{label}", "m")
        ar = path("ssj_linear", "m")
        gap = float(100 * (m - ar).abs().max() / ar.abs().max())
        print(f"\nSRL {label}: sampled shock path vs rho^t, max gap {gap:.1f} % of m_0")

    # ---------------------------------------------------------------- figure (from the Parquet file only)
    data = pl.read_parquet(args.out / "irfs.parquet")
    spec = [("R", 1e4, "real rate R (bp)"), ("Pi", 1e4, "inflation (bp)"), ("Y", 100, "output (% of Y_ss = 1)"),
            ("C", 100, "consumption (% of C_ss = 1)")]  # fmt: skip
    styles = {"ssj_linear": ("k", "-", "SSJ first order"), "ssj_nonlinear": ("0.5", ":", "SSJ nonlinear")}
    colors = iter(["tab:blue", "tab:orange", "tab:green"])
    for label in runs:
        styles[f"srl_{label}"] = (next(colors), "--", f"SRL, {label} interpolated")
    fig, ax = plt.subplots(1, 4, figsize=(15, 3.3))
    for a, (k, sc, title) in zip(ax, spec, strict=True):
        for source, (c, ls, lab) in styles.items():
            f = data.filter((pl.col("source") == source) & (pl.col("variable") == k)).sort("t")
            marker = "." if source.startswith("srl") else None
            a.plot(f["t"], f["value"] * m0 * sc, color=c, ls=ls, marker=marker, lw=1.2, label=lab)
        a.axhline(0, color="k", lw=0.4)
        a.set(title=title, xlabel="t")
    ax[0].legend(fontsize=7)
    fig.suptitle(f"HANK: responses to the monetary shock's top state (m_0 = {1e4 * m0:.0f} bp, rho_m = "
                 f"{ssj.rho_m:.2f}); SRL: seed 0, 256 coupled chains", y=1.02)  # fmt: skip
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=110, bbox_inches="tight")
    print(f"\nwrote {FIGURE} and {args.out / 'irfs.parquet'}")


if __name__ == "__main__":
    main()
