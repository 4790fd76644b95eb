"""Huggett economies solved by structural RL: ``huggett-pe-srl`` and ``huggett-srl``.

* ``huggett-pe-srl`` — partial equilibrium: the interest rate is an exogenous
  Markov chain. The SRL policy is compared with the project's EGM solution on
  the same grids: savings-policy difference (weighted by the ergodic
  distribution) and discounted-utility difference on common shock paths.
* ``huggett-srl`` — Huggett with aggregate income risk, bonds in zero net
  supply, the rate clearing the bond market each period on a 20-point grid.
  Reports the clearing residual along simulated paths, the rate's moments and
  the stationary equilibrium rate without aggregate risk (EGM + bisection).
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
    compare_lags: bool = param(False, "Also train the variant with the other lag setting (0 <-> 1) and compare.")

    def validate(self) -> None:
        HuggettConfig.validate(self)
        SRLConfig.validate(self)

    def estimated_bytes(self) -> int:
        """See :func:`_estimated_bytes`."""
        return _estimated_bytes(self)


def _estimated_bytes(cfg: Any) -> int:
    """Rouwenhorst matrices, the policy table, and the distributions of the simulated paths (with autograd)."""
    nz = cfg.n_tfp * (cfg.n_r if cfg.equilibrium == "partial" else 1)
    n_p = cfg.n_prices ** (cfg.n_lags + 1) if cfg.equilibrium == "general" else 1
    table = nz * n_p * cfg.n_assets * cfg.n_income
    chains = (cfg.n_income**2 + cfg.n_tfp**2 + cfg.n_r**2) * 8 * 4
    paths = (cfg.n_paths + cfg.eval_paths) * (cfg.horizon + cfg.eval_periods) * cfg.n_assets * cfg.n_income * 8 * 4
    return chains + table * 8 * 8 + paths


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
    import torch

    from abm_markets.srl.huggett import HuggettModel
    from abm_markets.srl.solver import simulate, simulate_markov, solve

    econ, srl = _split(cfg)
    econ = dataclasses.replace(econ, n_lags=n_lags)
    model = HuggettModel(econ, device=ctx.device, dtype=srl.torch_dtype)
    res = solve(model, srl, generator=ctx.generator(0), device=ctx.device, ctx=ctx if log else None)
    g = ctx.generator(7)  # same offset for both lag variants: common shock path
    z0 = torch.zeros(cfg.eval_paths, dtype=torch.long, device=ctx.device) + model.agg_transition.shape[0] // 2
    z_path = simulate_markov(model.agg_transition, z0, cfg.eval_periods, g)
    roll = simulate(
        model,
        res.params,
        n_paths=cfg.eval_paths,
        periods=cfg.eval_periods,
        generator=g,
        burn_in=cfg.eval_burn_in,
        z_path=z_path,
    )
    return {"model": model, "result": res, "rollout": roll}


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
    if r_star is not None:
        fig["stationary_r"] = r_star
    return fig


@register(
    "huggett-srl",
    config=HuggettGEScenarioConfig,
    description="Huggett with aggregate income risk, bonds in zero net supply, solved by structural RL (bond clearing)",
    expected_wall_s=37.4,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
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
