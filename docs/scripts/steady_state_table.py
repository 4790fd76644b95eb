"""Tables and figures of docs/steady_state.md: closed forms vs numerical steady states, VFI accuracy, policy plot.

Run from the repository root: ``python docs/scripts/steady_state_table.py``. Prints Markdown tables; writes
``docs/img/vfi_policy.png`` and ``docs/img/vfi_euler_errors.png``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.solvers.investment import (
    closed_form_steady_state,
    consumption_equivalent,
    euler_errors,
    simulate,
    simulate_paths,
    solve_euler_collocation,
    solve_vfi,
    steady_state,
)

IMG = Path(__file__).resolve().parents[1] / "img"
SHAPES = [(1, 1), (4, 1), (100, 1), (1, 2), (2, 2), (1, 10), (10, 10), (100, 10)]


def steady_state_table() -> None:
    print(
        "| N^h | N^c | formulation | K seed | K corrected | K numerical | seed/numerical - 1 | seed residual "
        "| price p | total share sum_j s_j | numerical residual | solve s |"
    )
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for nh, nc in SHAPES:
        for form in ("planner", "market"):
            cfg = InvestmentConfig(n_households=nh, n_capital_goods=nc, formulation=form)
            t0 = time.perf_counter()
            num = steady_state(cfg)
            dt = time.perf_counter() - t0
            seed = closed_form_steady_state(cfg, "seed")
            corr = closed_form_steady_state(cfg, "corrected")
            k_num = float(num.capital.mean())
            spread = float(num.capital.max() / num.capital.min() - 1)
            assert spread < 1e-12, spread  # no symmetry imposed, symmetric answer found
            print(
                f"| {nh} | {nc} | {form} | {seed.capital[0, 0]:.6f} | {corr.capital[0, 0]:.6f} | {k_num:.6f} "
                f"| {seed.capital[0, 0] / k_num - 1:+.2%} | {seed.residual:.2e} | {num.price[0]:.6f} "
                f"| {num.saving_share.sum(1)[0]:.6f} | {num.residual:.1e} | {dt:.2f} |"
            )


def heterogeneous_example() -> None:
    z = np.array([0.8, 0.9, 1.1, 1.2])
    print("\nHeterogeneous TFP (N^h = 4, N^c = 2), z =", z.tolist())
    print("| formulation | household | Z | K_i1 = K_i2 | s_i1 + s_i2 | C_i | residual |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for form in ("planner", "market"):
        st = steady_state(InvestmentConfig(n_households=4, n_capital_goods=2, formulation=form), z=z)
        for i in range(4):
            print(
                f"| {form} | {i} | {z[i]:.1f} | {st.capital[i, 0]:.5f} | {st.saving_share[i].sum():.5f} "
                f"| {st.consumption[i]:.5f} | {st.residual:.1e} |"
            )


def ergodic_sample(cfg: InvestmentConfig, sol, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    paths = simulate_paths(sol, cfg, 1200, 100, torch.Generator().manual_seed(seed))
    return paths["capital"][200:].reshape(-1), paths["z_index"][200:].reshape(-1)


def vfi_accuracy(cfg: InvestmentConfig, label: str) -> dict[int, object]:
    sols = {}
    times = {}
    for n_k in (51, 101, 201, 401, 801):
        t0 = time.perf_counter()
        sols[n_k] = solve_vfi(cfg, n_k=n_k)
        times[n_k] = time.perf_counter() - t0
    ref = sols[801]
    k, z = ergodic_sample(cfg, ref)
    print(
        f"\nVFI accuracy, {label}: {k.numel()} ergodic states (100 paths x 1000 periods after 200 burn-in), "
        f"K in [{float(k.min()):.2f}, {float(k.max()):.2f}]"
    )
    print(
        "| n_k | improvement steps | time s | max abs(TV - V) | Euler error max | mean log10 Euler error "
        "| policy vs n_k=801 (max rel) | value vs n_k=801 (max CE) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    v_ref = ref.value(k, z)
    kp_ref = ref.next_capital(k, z)
    for n_k, sol in sols.items():
        ee = euler_errors(sol, k, z).abs()
        pol = float(((sol.next_capital(k, z) - kp_ref) / k).abs().max())
        ce = float(consumption_equivalent(v_ref, sol.value(k, z), beta=cfg.beta, crra=cfg.crra).abs().max())
        print(
            f"| {n_k} | {sol.iterations} | {times[n_k]:.2f} | {sol.bellman_residual:.1e} | {float(ee.max()):.1e} "
            f"| {float(torch.log10(ee + 1e-17).mean()):.2f} | {pol:.1e} | {ce:.1e} |"
        )
    t0 = time.perf_counter()
    coll = solve_euler_collocation(cfg, n_k=61)
    dt = time.perf_counter() - t0
    gap = float(((coll.next_capital(k, z) - kp_ref) / k).abs().max())
    ee = float(euler_errors(coll, k, z).abs().max())
    print(
        f"\nEuler collocation (n_k = 61, {dt:.2f} s): residual at knots {coll.residual:.1e}, Euler error max on the "
        f"ergodic sample {ee:.1e}, max relative policy gap to VFI n_k=801: {gap:.1e}"
    )
    m = simulate(ref, cfg, 1000, 200, torch.Generator().manual_seed(1))
    print("\nSimulated moments (VFI n_k=801, 200 paths x 1000 periods after 200 burn-in):")
    print("| variable | mean | sd |")
    print("|---|---:|---:|")
    for name in ("capital", "output", "consumption", "investment", "saving_share"):
        print(f"| {name} | {m['mean_' + name]:.5f} | {m['sd_' + name]:.5f} |")
    print(f"| periods at zero-investment corner | {m['corner_share']:.3f} | |")
    return sols


def plots(cfg: InvestmentConfig, sols: dict) -> None:
    sol = sols[401]
    k = torch.linspace(float(sol.grid[0]), float(sol.grid[-1]), 400, dtype=torch.float64)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for z in range(sol.n_states):
        zz = torch.full_like(k, z, dtype=torch.long)
        lab = f"z = {float(sol.tfp[z]):.2f}"
        axes[0].plot(k, sol.next_capital(k, zz) - k, label=lab)
        axes[1].plot(k, sol.investment(k, zz), label=lab)
        axes[2].plot(k, sol.saving_share(k, zz), label=lab)
        axes[0].plot([sol.fixed_point(z)], [0.0], "o", color=f"C{z}")
    axes[0].axhline(0.0, color="grey", lw=0.7)
    axes[1].plot(k, cfg.delta * k, "k--", lw=0.8, label="delta K (replacement)")
    axes[0].set(xlabel="capital K", ylabel="K'(K, z) - K", title="Net capital change")
    axes[1].set(xlabel="capital K", ylabel="I(K, z)", title="Gross investment (>= 0, irreversible)")
    axes[2].set(xlabel="capital K", ylabel="s(K, z) = (phi/2) I^2 / Y", title="Saving share of output")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle("Stochastic planner, N^h = N^c = 1, default calibration: VFI policy (n_k = 401)")
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / "vfi_policy.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    kk = torch.linspace(float(sol.grid[0]) * 1.15, float(sol.grid[-1]) * 0.87, 600, dtype=torch.float64)
    for n_k in (51, 201, 801):
        e = euler_errors(sols[n_k], kk, torch.zeros_like(kk, dtype=torch.long)).abs()
        ax.semilogy(kk, e + 1e-17, lw=0.8, label=f"VFI n_k = {n_k}")
    ax.set(
        xlabel="capital K (low TFP state)",
        ylabel="|Euler error| (consumption units)",
        title="Euler-equation errors of the VFI policy",
    )
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(IMG / "vfi_euler_errors.png", dpi=110)
    plt.close(fig)


def main() -> None:
    torch.set_num_threads(1)
    steady_state_table()
    heterogeneous_example()
    cfg = InvestmentConfig()
    sols = vfi_accuracy(cfg, "default calibration (tfp 0.9/1.1, persistence 0.9, log utility)")
    plots(cfg, sols)
    vfi_accuracy(
        InvestmentConfig(crra=2.0, agg_tfp_values=(0.97, 1.03)),
        "CRRA 2 with an aggregate shock 0.97/1.03 (4 states)",
    )


if __name__ == "__main__":
    main()
