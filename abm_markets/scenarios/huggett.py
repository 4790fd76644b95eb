"""Huggett economies solved by structural RL: ``huggett-pe-srl`` and ``huggett-srl``.

* ``huggett-pe-srl`` — partial equilibrium: the interest rate is an exogenous
  Markov chain. The SRL policy is compared with the project's EGM solution on
  the same grids: savings-policy difference (weighted by the ergodic
  distribution) and discounted-utility difference on common shock paths.
* ``huggett-srl`` — Huggett with aggregate income risk, bonds in zero net
  supply, the rate clearing the bond market each period on a 20-point grid.
  Reports the clearing residual along simulated paths, the rate's moments and
  the stationary equilibrium rate without aggregate risk (EGM + bisection).
  Accuracy: Euler-equation errors along the evaluation paths with exact
  expectations (tomorrow's clearing rate for every next TFP state), and a
  Krusell-Smith reference (``reference = true``): EGM under a perceived law of
  the rate, iterated to its fixed point, with the gaps of the rate path and
  the savings policy between SRL and the reference (docs/srl.md).
  ``n_lags = 1`` puts last period's rate into the policy's state;
  ``compare_lags = true`` trains both variants and reports the difference.

Both write ``steps.parquet`` (docs/logs.md: the evaluation paths' aggregates; in
partial equilibrium for the SRL and the EGM policy on the same shocks) and
``distribution.parquet`` (the households' distribution at the end of the
evaluation, mean over paths).

Source: Yang, Wang, Schaab and Moll, *Structural Reinforcement Learning for
Heterogeneous Agent Macroeconomics* (seed 002); Huggett (1993).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from abm_markets.config import param
from abm_markets.runs import RunContext
from abm_markets.scenarios import register
from abm_markets.scenarios._logs import distribution_frame
from abm_markets.srl.huggett import HuggettConfig
from abm_markets.srl.solver import SRLConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Eval:
    eval_paths: int = param(64, "Paths simulated to evaluate the learned policy.", ge=1)
    eval_periods: int = param(200, "Logged periods per evaluation path.", ge=2)
    eval_burn_in: int = param(
        200, "Periods discarded before the evaluation (from the fixed initial distribution).", ge=0
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class HuggettPEScenarioConfig(HuggettConfig, SRLConfig, _Eval):
    """Partial-equilibrium Huggett by SRL vs EGM (economy, solver and evaluation settings in one table)."""

    equilibrium: str = param("partial", "Must be partial for this scenario.", choices=("partial",))
    n_tfp: int = param(1, "Rouwenhorst states of aggregate TFP (1: no TFP risk; r is the aggregate shock).", ge=1)

    def validate(self) -> None:
        HuggettConfig.validate(self)
        SRLConfig.validate(self)

    def estimated_bytes(self) -> int:
        """See :func:`_estimated_bytes`."""
        return _estimated_bytes(self)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HuggettGEScenarioConfig(HuggettConfig, SRLConfig, _Eval):
    """Huggett with aggregate risk by SRL (economy, solver and evaluation settings in one table)."""

    equilibrium: str = param("general", "Must be general for this scenario.", choices=("general",))
    stationary_reference: bool = param(True, "Also solve the stationary equilibrium without aggregate risk (EGM).")
    euler_paths: int = param(
        16, "Evaluation paths (the first ones) on which Euler-equation errors are computed (0: none).", ge=0
    )
    reference: bool = param(
        True,
        "Also solve the Krusell-Smith reference (EGM under a perceived law of the rate, iterated to its fixed point"
        " on the evaluation paths) and report the gaps; needs n_lags = 0 (skipped otherwise).",
    )
    reference_damping: float = param(
        0.25, "Share of the way the reference's perceived law moves to its refit each iteration.", gt=0.0, le=1.0
    )
    reference_tol: float = param(
        1e-4, "Reference converged: mean |forecast change| at the simulated states below this (rate units).", gt=0.0
    )
    reference_max_iter: int = param(25, "Most iterations of the reference's law.", ge=1)
    compare_lags: bool = param(False, "Also train the variant with the other lag setting (0 <-> 1) and compare.")

    def validate(self) -> None:
        HuggettConfig.validate(self)
        SRLConfig.validate(self)

    def estimated_bytes(self) -> int:
        """See :func:`_estimated_bytes`."""
        return _estimated_bytes(self)


def _estimated_bytes(cfg: Any) -> int:
    """Rouwenhorst matrices, the policy table, the distributions of the simulated paths (with autograd), and in
    general equilibrium the Euler-error pass and the reference's Markov chain over (Z, r, y)."""
    nz = cfg.n_tfp * (cfg.n_r if cfg.equilibrium == "partial" else 1)
    n_p = cfg.n_prices ** (cfg.n_lags + 1) if cfg.equilibrium == "general" else 1
    table = nz * n_p * cfg.n_assets * cfg.n_income
    chains = (cfg.n_income**2 + cfg.n_tfp**2 + cfg.n_r**2) * 8 * 4
    paths = (cfg.n_paths + cfg.eval_paths) * (cfg.horizon + cfg.eval_periods) * cfg.n_assets * cfg.n_income * 8 * 4
    cells = cfg.n_assets * cfg.n_income
    euler = getattr(cfg, "euler_paths", 0) * cells * (nz * cfg.n_income * 8 * 6 + cfg.eval_periods * 16)
    reference = (nz * cfg.n_prices * cfg.n_income) ** 2 * 8 * 3 if getattr(cfg, "reference", False) else 0
    return chains + table * 8 * 8 + paths + euler + reference


def _split(cfg: Any) -> tuple[HuggettConfig, SRLConfig]:
    def pick(cls: type) -> Any:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})

    return pick(HuggettConfig), pick(SRLConfig)


def _learning_curve(ctx: RunContext, history: list[dict[str, float]], name: str, resid: bool) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    ncol = 3 if resid else 2
    fig, ax = plt.subplots(1, ncol, figsize=(4.2 * ncol, 3.2))
    ax[0].plot(ep, [h["objective_household"] for h in history], lw=0.8)
    ax[0].set(xlabel="epoch", ylabel="discounted utility (batch mean)", title="objective")
    ax[1].semilogy(ep, [h["update"] for h in history], lw=0.8, label="q99 |update|")
    ax[1].set(xlabel="epoch", ylabel="asset units", title="policy update")
    if resid:
        ax[2].semilogy(ep, [max(h["resid_bond_max"], 1e-12) for h in history], lw=0.8, label="max")
        ax[2].semilogy(ep, [max(h["resid_bond_mean"], 1e-12) for h in history], lw=0.8, label="mean")
        ax[2].set(xlabel="epoch", ylabel="|bond demand - supply|", title="clearing residual (training paths)")
        ax[2].legend()
    fig.tight_layout()
    ctx.save_figure(name, fig)


def _paths_table(roll: Any, n_keep: int = 16) -> Any:
    """Long-format log (docs/logs.md) of the rollout's aggregate paths: the first ``n_keep`` paths are the
    economies, every logged series a variable, ``agent = -1`` (aggregates of the continuum)."""
    import numpy as np
    import polars as pl

    n, T = roll.z.shape[0], roll.z.shape[1] - 1
    keep = min(n, n_keep)
    ids = {"t": np.tile(np.arange(T), keep), "economy": np.repeat(np.arange(keep), T), "agent": -1}
    return pl.concat(
        pl.DataFrame({**ids, "variable": name, "value": v[:keep].reshape(-1).double().numpy()})
        for name, v in roll.logs.items()
    )


# ---------------------------------------------------------------------------------------------- partial equilibrium
@register(
    "huggett-pe-srl",
    config=HuggettPEScenarioConfig,
    description="Huggett partial equilibrium (exogenous Markov rate) by structural RL vs EGM on the same grids",
    expected_wall_s=33.0,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run_pe(cfg: HuggettPEScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    import torch

    from abm_markets.srl.huggett import HuggettModel, compare_with_egm
    from abm_markets.srl.solver import describe, solve

    econ, srl = _split(cfg)
    model = HuggettModel(econ, device=ctx.device, dtype=srl.torch_dtype)
    res = solve(model, srl, generator=ctx.generator(0), device=ctx.device, ctx=ctx)
    cmp = compare_with_egm(
        model,
        res.params,
        n_paths=cfg.eval_paths,
        periods=cfg.eval_periods,
        burn_in=cfg.eval_burn_in,
        generator=ctx.generator(1),
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import polars as pl

    _learning_curve(ctx, res.history, "learning_curve", resid=False)
    b = model.b64.numpy()
    srl_b, ref_b, mass = cmp.pop("b_next_srl"), cmp.pop("b_next_egm"), cmp.pop("mass")
    nz, nb, ny = ref_b.shape
    z_show = [0, nz // 2, nz - 1]
    top = int((mass.sum(dim=(0, 2)) > 1e-6).nonzero().max()) + 5
    fig, ax = plt.subplots(1, len(z_show), figsize=(13, 3.4), sharey=True)
    for a, k in zip(ax, z_show, strict=True):
        for iy in range(ny):
            a.plot(b[:top], ref_b[k, :top, iy].numpy() - b[:top], "k-", lw=0.8, label="EGM" if iy == 0 else None)
            a.plot(b[:top], srl_b[k, :top, iy].numpy() - b[:top], "--", lw=1.2, label=f"SRL y{iy}")
        a.set(title=f"r = {float(model.R_agg64[k]) - 1:.4f}", xlabel="bonds b")
    ax[0].set_ylabel("b' - b")
    ax[0].legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("policy_vs_egm", fig)
    fig, a = plt.subplots(figsize=(5, 3.2))
    a.plot(b[:top], mass.sum(dim=(0, 2))[:top].numpy())
    a.set(xlabel="bonds b", ylabel="mass", title="ergodic distribution (EGM policy, evaluation paths)")
    ctx.save_figure("distribution", fig)
    zz, bb, yy = torch.meshgrid(torch.arange(nz), torch.arange(nb), torch.arange(ny), indexing="ij")
    ctx.write_table(
        "policy",
        pl.DataFrame(
            {
                "z": zz.reshape(-1).numpy(),
                "r": (model.R_agg64[zz.reshape(-1)] - 1).numpy(),
                "b": model.b64[bb.reshape(-1)].numpy(),
                "y": model.y64[yy.reshape(-1)].numpy(),
                "b_next_srl": srl_b.reshape(-1).double().numpy(),
                "b_next_egm": ref_b.reshape(-1).double().numpy(),
                "mass": mass.reshape(-1).double().numpy(),
            }
        ),
    )
    rolls = {p: cmp.pop(f"rollout_{p}") for p in ("srl", "egm")}  # the same shocks from the same distribution
    ctx.write_log("steps", pl.concat(_paths_table(r).with_columns(policy=pl.lit(p)) for p, r in rolls.items()))
    ctx.write_table(
        "distribution",
        pl.concat(distribution_frame(model.b64, model.y64, r.dist.double().mean(0), p) for p, r in rolls.items()),
    )
    return {**describe(res), **cmp}


# ---------------------------------------------------------------------------------------------- general equilibrium
def _train_eval_ge(cfg: HuggettGEScenarioConfig, ctx: RunContext, n_lags: int, log: bool) -> dict[str, Any]:
    """Train one lag variant, simulate it on the evaluation paths and compute its Euler errors."""
    import torch

    from abm_markets.srl.huggett import HuggettModel, burn_in, euler_errors
    from abm_markets.srl.solver import rollout, simulate_markov, solve

    econ, srl = _split(cfg)
    econ = dataclasses.replace(econ, n_lags=n_lags)
    model = HuggettModel(econ, device=ctx.device, dtype=srl.torch_dtype)
    res = solve(model, srl, generator=ctx.generator(0), device=ctx.device, ctx=ctx if log else None)
    g = ctx.generator(7)  # same offset for both lag variants: common shock path
    z0 = torch.zeros(cfg.eval_paths, dtype=torch.long, device=ctx.device) + model.agg_transition.shape[0] // 2
    z_path = simulate_markov(model.agg_transition, z0, cfg.eval_periods, g)
    z_burn = simulate_markov(model.agg_transition, z0, cfg.eval_burn_in, g)
    z_burn[:, -1] = z_path[:, 0]  # the burn-in ends where the evaluation starts
    dist0, carry0 = burn_in(model, res.params, z_burn)
    with torch.no_grad():
        roll = rollout(model, res.params, z_path, dist0, carry0)
    out = {"model": model, "result": res, "rollout": roll, "z_path": z_path, "z_burn": z_burn, "euler": None}
    if cfg.euler_paths:
        k = min(cfg.euler_paths, cfg.eval_paths)
        t0 = time.perf_counter()
        out["euler"] = euler_errors(
            model, res.params, z_path=z_path[:k], dist0=dist0[:k], carry0={n: v[:k] for n, v in carry0.items()}
        )
        out["euler"]["euler_s"] = time.perf_counter() - t0
    return out


def _ge_figures(out: dict[str, Any], r_star: float | None) -> dict[str, Any]:
    """Headline figures of one trained GE variant on its evaluation paths."""
    from abm_markets.srl.solver import describe

    roll = out["rollout"]
    resid = roll.logs["resid_bond"].abs()
    r = roll.logs["r"]
    z = roll.logs["Z"].log()
    rc = r - r.mean(dim=1, keepdim=True)
    zc = z - z.mean(dim=1, keepdim=True)
    corr = float((rc * zc).sum() / ((rc**2).sum() * (zc**2).sum()).sqrt())
    fig = {
        **describe(out["result"]),
        "resid_bond_mean_abs": float(resid.mean()),
        "resid_bond_max_abs": float(resid.max()),
        "resid_bond_q99_abs": float(resid.double().quantile(0.99)),
        "bracketed_share": float(roll.logs["bracketed"].mean()),
        "r_mean": float(r.mean()),
        "r_sd": float(r.std()),
        "r_min": float(r.min()),
        "r_max": float(r.max()),
        "corr_r_logZ": corr,
        "C_mean": float(roll.logs["C"].mean()),
        "welfare": float(roll.objective["household"].mean()),
    }
    if out["euler"] is not None:
        fig.update({k: v for k, v in out["euler"].items() if isinstance(v, float)})
    if r_star is not None:
        fig["stationary_r"] = r_star
    return fig


def _reference_figures(cfg: HuggettGEScenarioConfig, main: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Krusell-Smith reference for the no-lag variant and its gaps to the SRL solution (summary, reference)."""
    import torch

    from abm_markets.srl.huggett import euler_errors, perceived_law_reference

    t0 = time.perf_counter()
    model, res, roll = main["model"], main["result"], main["rollout"]
    ref = perceived_law_reference(
        model,
        roll.logs["r"],
        z_burn=main["z_burn"],
        z_path=main["z_path"],
        damping=cfg.reference_damping,
        tol=cfg.reference_tol,
        max_iter=cfg.reference_max_iter,
    )
    r_srl, r_ref = roll.logs["r"].double(), ref["rollout"].logs["r"].double()
    with torch.no_grad():
        b_srl = model.policy_values(res.params).double().cpu()
    out: dict[str, Any] = {
        "reference_r_mean": float(r_ref.mean()),
        "reference_r_sd": float(r_ref.std()),
        "r_mean_gap_bp": 1e4 * float(r_srl.mean() - r_ref.mean()),
        "r_sd_gap_bp": 1e4 * float(r_srl.std() - r_ref.std()),
        "r_path_gap_bp": 1e4 * float((r_srl - r_ref).abs().mean()),
        "reference_bracketed_share": float(ref["rollout"].logs["bracketed"].mean()),
        "reference_law_r2": ref["law"].r2,
        "reference_law_resid_sd_bp": 1e4 * ref["law"].resid_sd,
        "srl_law_r2": ref["law_srl"].r2,
        "reference_iterations": ref["iterations"],
        "reference_converged": ref["converged"],
        "reference_law_change_bp": 1e4 * ref["law_change"],
    }
    if main["euler"] is not None:
        occ = main["euler"]["occupation"]
        occ = occ / occ.sum()
        support = occ > 1e-5
        for name, other in (("policy_gap", ref["b_next"]), ("best_response_policy_gap", ref["best_response"])):
            gap = (b_srl - other).abs()
            out[f"{name}_mean"] = float((gap * occ).sum())
            out[f"{name}_q99"] = float(gap[support].quantile(0.99))
        k = min(cfg.euler_paths, cfg.eval_paths)
        ref_euler = euler_errors(
            model,
            ref["params"],
            z_path=main["z_path"][:k],
            dist0=ref["dist0"][:k],
            carry0={n: v[:k] for n, v in ref["carry0"].items()},
        )
        out.update({f"reference_{n}": v for n, v in ref_euler.items() if isinstance(v, float)})
        ref["euler"] = ref_euler
    out["reference_s"] = time.perf_counter() - t0
    return out, ref


def _accuracy_figure(ctx: RunContext, main: dict[str, Any], ref: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    model, roll = main["model"], main["rollout"]
    b = model.b64.numpy()
    fig, ax = plt.subplots(1, 3 if main["euler"] is not None else 1, figsize=(14, 3.4), squeeze=False)
    ax = ax[0]
    ax[0].plot(roll.logs["r"][0].numpy(), lw=0.9, label="SRL")
    ax[0].plot(ref["rollout"].logs["r"][0].numpy(), lw=0.9, ls="--", label="reference (EGM, perceived law)")
    ax[0].set(xlabel="t", ylabel="r_t", title="rate on a common shock path")
    ax[0].legend(fontsize=7)
    if main["euler"] is not None:
        occ = main["euler"]["occupation"]
        top = int((occ.sum(dim=(0, 1, 3)) > 1e-6 * occ.sum()).nonzero().max()) + 3
        for name, e in (("SRL", main["euler"]), ("reference", ref["euler"])):
            ax[1].plot(b[:top], e["by_asset_mean_log10"][:top].numpy(), lw=0.9, label=f"{name} mean")
            ax[1].plot(b[:top], e["by_asset_max_log10"][:top].numpy(), lw=0.6, ls=":", label=f"{name} max")
        ax[1].set(xlabel="bonds b", ylabel="log10 |Euler error|", title="Euler errors along the paths")
        ax[1].legend(fontsize=7)
        with torch.no_grad():
            b_srl = model.policy_values(main["result"].params).double().cpu()
        kz, jp = divmod(int(occ.sum(dim=(2, 3)).argmax()), occ.shape[1])  # the most visited (Z, r) cell
        for iy in range(b_srl.shape[-1]):
            ax[2].plot(b[:top], b_srl[kz, jp, :top, iy].numpy() - b[:top], lw=1.1, label=f"SRL y{iy}")
            ax[2].plot(b[:top], ref["b_next"][kz, jp, :top, iy].numpy() - b[:top], "k:", lw=0.9)
        ax[2].set(
            xlabel="bonds b",
            ylabel="b' - b",
            title=f"policy at Z state {kz}, r = {float(model.price_grid64[jp]) - 1:.4f} (dotted: reference)",
        )
        ax[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("accuracy", fig)


@register(
    "huggett-srl",
    config=HuggettGEScenarioConfig,
    description="Huggett with aggregate income risk, bonds in zero net supply, solved by structural RL (bond clearing)",
    expected_wall_s=107.3,
    expected_wall_source="one default run with the accuracy reference (seed 2), 1 thread, load about 3, 2026-11-29",
)
def run_ge(cfg: HuggettGEScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    r_star = None
    t_ref = time.perf_counter()
    if cfg.stationary_reference:
        from abm_markets.solvers.household import huggett_stationary
        from abm_markets.srl.huggett import HuggettModel

        ref_model = HuggettModel(dataclasses.replace(_split(cfg)[0], n_tfp=1, n_lags=0))
        st = huggett_stationary(
            ref_model.b64,
            ref_model.y64,
            ref_model.Py64,
            beta=cfg.beta,
            sigma=cfg.sigma,
            b_lim=cfg.borrowing_limit,
            bond_supply=cfg.bond_supply,
        )
        r_star = st.r
    ref_s = time.perf_counter() - t_ref
    main = _train_eval_ge(cfg, ctx, cfg.n_lags, log=True)
    summary = _ge_figures(main, r_star)
    summary["stationary_reference_s"] = ref_s
    if cfg.reference and cfg.n_lags == 0:
        ref_summary, ref = _reference_figures(cfg, main)
        summary.update(ref_summary)
        _accuracy_figure(ctx, main, ref)
    model, res, roll = main["model"], main["result"], main["rollout"]

    _learning_curve(ctx, res.history, "learning_curve", resid=True)
    ctx.write_log("steps", _paths_table(roll))
    ctx.write_table("distribution", distribution_frame(model.b64, model.y64, roll.dist.double().mean(0), "srl"))
    T = roll.logs["r"].shape[1]
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.4))
    for n in range(min(4, roll.logs["r"].shape[0])):
        ax[0].plot(roll.logs["r"][n].numpy(), lw=0.8)
        ax[1].plot(roll.logs["Z"][n].numpy(), lw=0.8)
        ax[2].plot(roll.logs["resid_bond"][n].abs().clamp_min(1e-12).numpy(), lw=0.6)
    if r_star is not None:
        ax[0].axhline(r_star, color="k", ls=":", lw=1, label="stationary r* (no aggregate risk)")
        ax[0].legend(fontsize=7)
    ax[0].set(title="interest rate r_t", xlabel="t")
    ax[1].set(title="aggregate TFP Z_t", xlabel="t")
    ax[2].set(title="|bond market residual|", xlabel="t", yscale="log")
    fig.tight_layout()
    ctx.save_figure("simulated_paths", fig)
    # policy at the middle TFP state for a few rates (lag = the same rate when lagged)
    with torch.no_grad():
        bv = model.policy_values(res.params)
    while bv.dim() > 4:  # lag axes: take the diagonal lag = current grid price
        bv = torch.diagonal(bv, dim1=1, dim2=2).movedim(-1, 1)
    b = model.b64.numpy()
    dist = roll.dist.mean(0).sum(1)
    top = int((dist > 1e-6).nonzero().max()) + 5
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    kz = bv.shape[0] // 2
    for jp in (0, bv.shape[1] // 2, bv.shape[1] - 1):
        for iy in range(bv.shape[-1]):
            ax[0].plot(
                b[:top],
                (bv[kz, jp, :top, iy].double().numpy() - b[:top]),
                lw=0.8,
                label=f"r={float(model.price_grid64[jp]) - 1:.3f} y{iy}",
            )
    ax[0].set(xlabel="bonds b", ylabel="b' - b", title="savings policy (middle Z)")
    ax[0].legend(fontsize=6, ncol=3)
    ax[1].plot(b[:top], dist[:top].numpy())
    ax[1].set(xlabel="bonds b", ylabel="mass", title=f"distribution at t={T} (mean over paths)")
    fig.tight_layout()
    ctx.save_figure("policy_distribution", fig)

    if cfg.compare_lags:
        other = _train_eval_ge(cfg, ctx, 1 - min(cfg.n_lags, 1), log=False)
        o = _ge_figures(other, r_star)
        r_main, r_other = roll.logs["r"], other["rollout"].logs["r"]
        summary["lag_comparison"] = {
            "other_n_lags": 1 - min(cfg.n_lags, 1),
            **{f"other_{k}": v for k, v in o.items() if k != "stationary_r"},
            "r_path_mean_abs_diff": float((r_main - r_other).abs().mean()),
            "r_path_max_abs_diff": float((r_main - r_other).abs().max()),
            "welfare_diff_other_minus_main": o["welfare"] - summary["welfare"],
        }
        fig, ax = plt.subplots(figsize=(7, 3.2))
        ax.plot(r_main[0].numpy(), lw=0.9, label=f"n_lags={cfg.n_lags}")
        ax.plot(r_other[0].numpy(), lw=0.9, ls="--", label=f"n_lags={1 - min(cfg.n_lags, 1)}")
        ax.set(xlabel="t", ylabel="r_t", title="equilibrium rate on a common shock path")
        ax.legend()
        fig.tight_layout()
        ctx.save_figure("lag_comparison", fig)
    return summary
