"""Krusell-Smith and HANK solved by structural RL: ``ks-srl`` and ``hank-srl``.

* ``ks-srl`` — Krusell-Smith by SRL (policy over individual state, TFP and
  current prices), compared on the same grids with two independent references
  implemented in the project: the stationary equilibrium without aggregate risk
  (EGM + Young + bisection, :mod:`abm_markets.solvers.aiyagari`) and the
  Krusell-Smith algorithm (:mod:`abm_markets.solvers.krusell_smith`: log-linear
  law of motion per TFP state, R^2, Den Haan's maximum error). Both policies are
  simulated on one common TFP path with the distribution on the grid (no
  sampling noise): K and C paths, mean K, Euler-equation errors along the path.
  Finally the SRL policy drives a Mesa economy of ``n_agents`` individual
  households through the same path (finite-agent check).
* ``hank-srl`` — HANK with a forward-looking Rotemberg Phillips curve; the
  households' savings and the firms' pricing policy are learned together
  (:mod:`abm_markets.srl.hank`). Reports the bond-, goods-market and Taylor-rule
  residuals, the Phillips-curve residual and impulse responses to a monetary
  shock.

Both write ``steps.parquet`` (docs/logs.md: ``ks-srl`` the common path's TFP,
capital and consumption per policy and each Mesa household's assets; ``hank-srl``
every evaluation path and the impulse responses) and ``distribution.parquet``
(the households' distribution at the end of the evaluation); ``ks-srl`` also
``policy.parquet`` (savings of SRL and the KS algorithm at the stationary K).

Source: Yang, Wang, Schaab and Moll, *Structural Reinforcement Learning for
Heterogeneous Agent Macroeconomics* (seed 002); Krusell and Smith (1998);
Den Haan (2010).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from abm_markets.config import param
from abm_markets.runs import RunContext
from abm_markets.scenarios import register
from abm_markets.scenarios._logs import distribution_frame, grid_frame
from abm_markets.srl.hank import HANKEconomyConfig
from abm_markets.srl.ks import KSEconomyConfig
from abm_markets.srl.solver import SRLConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class KSScenarioConfig(KSEconomyConfig, SRLConfig):
    """Krusell-Smith by SRL vs the KS algorithm (economy, solver and evaluation settings in one table)."""

    ks_T: int = param(2000, "Periods of the common TFP path (KS-algorithm regressions and comparison).", ge=100)
    ks_burn: int = param(200, "Discarded initial periods of the common path.", ge=0)
    euler_periods: int = param(300, "Periods of the common path on which Euler errors are computed.", ge=2)
    n_agents: int = param(10_000, "Households of the finite-agent Mesa economy (0: skip the check).", ge=0)
    agent_periods: int = param(200, "Periods of the finite-agent check (from the start of the common path).", ge=1)
    irf_paths: int = param(
        2000, "TFP paths per branch of the impulse responses against sequence-jacobian (0: skip the check).", ge=0
    )

    def validate(self) -> None:
        SRLConfig.validate(self)
        from abm_markets.errors import ConfigError

        if self.ks_burn >= self.ks_T - 50:
            raise ConfigError(f"KSScenarioConfig.ks_burn = {self.ks_burn} is invalid; expected < ks_T - 50")

    def estimated_bytes(self) -> int:
        """SRL paths (distribution over assets x efficiency per period, with autograd: x16), the KS algorithm's
        common path and policy grids, and the finite-agent Mesa economy (about 4 KiB per household)."""
        grid = getattr(self, "n_a", 200) * getattr(self, "n_e", 3)
        srl = self.n_paths * self.horizon * grid * 8 * 16
        ks = self.ks_T * grid * 8 * 4 + getattr(self, "n_K", 12) * getattr(self, "n_z", 3) * grid * 8 * 8
        return srl + ks + self.n_agents * 4096 + self.n_agents * self.agent_periods * 8 * 4


def _pick(cfg: Any, cls: type) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------- Krusell-Smith
@register(
    "ks-srl",
    config=KSScenarioConfig,
    description="Krusell-Smith by structural RL vs stationary equilibrium, KS algorithm and a Mesa finite-agent check",
    expected_wall_s=238.0,
    expected_wall_source="one default run with the SSJ check, 1 thread, CPU shared at load 6, 2026-11-30",
)
def run_ks(cfg: KSScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    import torch

    from abm_markets.solvers.krusell_smith import (
        KSConfig,
        euler_errors,
        interp_policy_K,
        simulate_policy,
        solve_krusell_smith,
    )
    from abm_markets.srl.finite_agents import run_finite_agents
    from abm_markets.srl.ks import KSModel
    from abm_markets.srl.solver import simulate, solve

    t_start = time.perf_counter()
    econ = _pick(cfg, KSEconomyConfig)
    scfg = _pick(cfg, SRLConfig)

    # 1. references: stationary equilibrium and the KS algorithm on the same grids
    t0 = time.perf_counter()
    kcfg = KSConfig(
        beta=cfg.beta, sigma=cfg.sigma, alpha=cfg.alpha, delta=cfg.delta, rho_e=cfg.rho_e, sd_e=cfg.sd_e,
        n_e=cfg.n_e, rho_z=cfg.rho_z, sd_z=cfg.sd_z, n_z=cfg.n_z, a_max=cfg.a_max, n_a=cfg.n_a,
        grid_power=cfg.grid_power, n_K=cfg.n_K, K_width=cfg.K_width, T=cfg.ks_T, burn=cfg.ks_burn, seed=ctx.seed,
    )  # fmt: skip
    ks = solve_krusell_smith(kcfg)
    ks_wall = time.perf_counter() - t0

    # 2. structural RL
    model = KSModel(econ, K_ss=ks.stationary_K, dist_ss=ks.dist0, device=ctx.device, dtype=scfg.torch_dtype)
    res = solve(model, scfg, generator=ctx.generator(), device=ctx.device, ctx=ctx)

    # 3. common TFP path: SRL with the solver's simulator (clearing logs) and float64 non-stochastic simulation
    burn = cfg.ks_burn
    z_path = ks.z_idx.to(ctx.device)[None]
    roll = simulate(
        model, res.params, n_paths=1, periods=cfg.ks_T - 1, generator=ctx.generator(1),
        z_path=z_path, dist0=model.dist_ss[None],
    )  # fmt: skip
    srl_fn = model.savings_fn(res.params)
    K_srl, C_srl, dists_srl = simulate_policy(
        srl_fn, ks.a_grid, ks.P_e, ks.e, ks.z, ks.z_idx, ks.dist0, cfg.alpha, cfg.delta
    )

    def ks_fn(K: torch.Tensor, zi: int) -> torch.Tensor:
        return interp_policy_K(ks.a_next[..., zi], ks.K_grid, K).clamp(min=0.0)

    _, _, dists_ks = simulate_policy(ks_fn, ks.a_grid, ks.P_e, ks.e, ks.z, ks.z_idx, ks.dist0, cfg.alpha, cfg.delta)
    sl = slice(burn, burn + cfg.euler_periods)
    eargs = (ks.a_grid, ks.e, ks.P_e, ks.z, ks.P_z)
    tail = (cfg.beta, cfg.sigma, cfg.alpha, cfg.delta)
    ee_srl = euler_errors(srl_fn, *eargs, K_srl[sl], ks.z_idx[sl], dists_srl[sl], *tail, detail=True)
    ee_ks = euler_errors(ks_fn, *eargs, ks.K_path[sl], ks.z_idx[sl], dists_ks[sl], *tail, detail=True)
    detail = {n: (ee.pop("per_period_mean_log10"), ee.pop("by_asset_mean_log10")) for n, ee in (("SRL", ee_srl),
              ("KS algorithm", ee_ks))}  # fmt: skip

    # 4. finite agents (Mesa) under the SRL policy on the same path
    agents: dict[str, Any] = {}
    if cfg.n_agents > 0:
        Tg = min(cfg.agent_periods, cfg.ks_T)
        fa = run_finite_agents(
            srl_fn, Tg, a_grid=ks.a_grid, e=ks.e, P_e=ks.P_e, z=ks.z, z_path=ks.z_idx[:Tg], dist0=ks.dist0,
            alpha=cfg.alpha, delta=cfg.delta, n_households=cfg.n_agents, seed=ctx.seed,
        )  # fmt: skip
        zK = (fa["K"] - K_srl[:Tg].numpy()) / fa["se_K"]
        zC = (fa["C"] - C_srl[:Tg].numpy()) / fa["se_C"]
        agents = {
            "agents_n": cfg.n_agents,
            "agents_periods": Tg,
            "agents_K_max_abs_z": float(np.abs(zK).max()),
            "agents_C_max_abs_z": float(np.abs(zC).max()),
            "agents_K_mean_abs_z": float(np.abs(zK).mean()),
            "agents_K_max_gap_pct": float(100 * np.abs(fa["K"] / K_srl[:Tg].numpy() - 1).max()),
            "agents_K_se_pct_mean": float(100 * (fa["se_K"] / fa["K"]).mean()),
        }

    # 5. impulse responses of both policies against sequence-space Jacobians (docs/irf_ssj.md)
    irf = _irf_against_ssj(cfg, ks, model.savings_batch(res.params), ctx) if cfg.irf_paths > 0 else {}

    # 6. logs, plots, summary
    Kk, Ck = ks.K_path.numpy(), ks.C_path.numpy()
    Ks, Cs = K_srl.numpy(), C_srl.numpy()

    def rows(variable: str, policy: str | None, v: Any, agent: Any = -1, t: Any = None) -> pl.DataFrame:
        v = np.asarray(v, dtype=np.float64)
        return pl.DataFrame(
            {"t": np.arange(v.shape[0]) if t is None else t, "economy": 0, "agent": agent, "variable": variable,
             "value": v, "policy": pl.Series([policy] * v.shape[0], dtype=pl.String)}
        )  # fmt: skip

    frames = [rows("tfp", None, ks.z[ks.z_idx].numpy())]
    for policy, K, C in (("srl", Ks, Cs), ("ks_algorithm", Kk, Ck)):
        frames += [rows("capital", policy, K), rows("consumption", policy, C)]
    if agents:  # the Mesa households under the SRL policy: aggregates and standard errors per period, and each
        # household's assets and labour efficiency at the start of the first period not simulated
        frames += [rows(name, "srl_agents", fa[k]) for name, k in (("capital", "K"), ("consumption", "C"),
                   ("capital_se", "se_K"), ("consumption_se", "se_C"))]  # fmt: skip
        idx = np.arange(cfg.n_agents)
        frames += [
            rows("assets", "srl_agents", fa["assets"], agent=idx, t=Tg),
            rows("income", "srl_agents", fa["efficiency"], agent=idx, t=Tg),
        ]
    ctx.write_log("steps", pl.concat(frames, how="vertical_relaxed"))
    ends = (("srl", dists_srl[-1]), ("ks_algorithm", dists_ks[-1]))  # end of the common path
    ctx.write_table("distribution", pl.concat(distribution_frame(ks.a_grid, ks.e, d, p) for p, d in ends))
    K0 = torch.tensor(ks.stationary_K, dtype=torch.float64)
    ctx.write_table(  # savings policies at the stationary K, every TFP state
        "policy",
        pl.concat(
            grid_frame(ks.a_grid, ks.e, p, next_asset=fn(K0, zi)).with_columns(tfp=float(ks.z[zi]), capital=float(K0))
            for zi in range(cfg.n_z)
            for p, fn in (("srl", srl_fn), ("ks_algorithm", ks_fn))
        ),
    )
    resid = roll.logs["resid_goods"].abs()
    post = slice(burn, None)
    summary: dict[str, Any] = {
        "stationary_K": ks.stationary_K,
        "stationary_r": ks.stationary_r,
        "mean_K": float(Ks[post].mean()),
        "mean_C": float(Cs[post].mean()),
        "ks_mean_K": float(Kk[post].mean()),
        "ks_mean_C": float(Ck[post].mean()),
        "mean_K_gap_pct": float(100 * (Ks[post].mean() / Kk[post].mean() - 1)),
        "K_path_max_gap_pct": float(100 * np.abs(Ks[post] / Kk[post] - 1).max()),
        "K_path_mean_gap_pct": float(100 * np.abs(Ks[post] / Kk[post] - 1).mean()),
        "C_path_max_gap_pct": float(100 * np.abs(Cs[post] / Ck[post] - 1).max()),
        "C_path_mean_gap_pct": float(100 * np.abs(Cs[post] / Ck[post] - 1).mean()),
        "K_path_corr": float(np.corrcoef(Ks[post], Kk[post])[0, 1]),
        "sd_log_K_srl": float(np.log(Ks[post]).std()),
        "sd_log_K_ks": float(np.log(Kk[post]).std()),
        "ks_law_of_motion": {f"z{k}": [float(ks.coef[k, 0]), float(ks.coef[k, 1])] for k in range(cfg.n_z)},
        "ks_r2": [float(v) for v in ks.r2],
        "ks_den_haan_max_pct": ks.den_haan_max,
        "ks_den_haan_mean_pct": ks.den_haan_mean,
        "ks_converged": ks.converged,
        "ks_outer_iterations": ks.outer_iterations,
        "ks_wall_s": ks_wall,
        **{f"{k}_srl": v for k, v in ee_srl.items()},
        **{f"{k}_ks": v for k, v in ee_ks.items()},
        "converged": res.converged,
        "epochs": res.epochs,
        "srl_wall_s": res.wall_s,
        "resid_goods_max": float(resid.max()),
        "resid_goods_mean": float(resid.mean()),
        "K_off_grid_share": float(roll.logs["K_off_grid"].mean()),
        "srl_vs_float64_sim_K_max_diff": float((roll.logs["K"][0].double().cpu() - K_srl[:-1]).abs().max()),
        **agents,
        **irf,
        "wall_s": time.perf_counter() - t_start,
    }
    _ks_plots(ctx, cfg, ks, model, res, Ks, Cs, dists_srl, fa if agents else None, detail)
    return summary


def _irf_against_ssj(cfg: KSScenarioConfig, ks: Any, srl_policy: Any, ctx: RunContext) -> dict[str, Any]:
    """Generalized impulse responses of the SRL and KS-algorithm policies to TFP starting in its high state
    (:func:`abm_markets.solvers.transition.ks_girf`, per unit of log TFP) against sequence-jacobian's first-order
    responses on the same calibration; ``irf_gap_vs_ssj_pct`` is SRL's max relative gap over the first 20
    periods of K, C, Y, r, w. The shock is one Rouwenhorst step (9.7% of log TFP at the defaults), so part of
    the gap is the economy's nonlinearity (docs/irf_ssj.md)."""
    try:
        import sequence_jacobian  # noqa: F401 -- only to know whether the oracle is installed
    except ImportError:
        return {"irf_gap_vs_ssj_missing": "sequence-jacobian is not installed (pip install -e '.[dev]')"}
    from abm_markets.solvers.ssj_oracle import ssj_impulse_responses
    from abm_markets.solvers.transition import TransitionConfig, irf_gap_pct, ks_girf

    t0 = time.perf_counter()
    tcfg = _pick(cfg, TransitionConfig)
    _, linear, _ = ssj_impulse_responses(tcfg)
    out: dict[str, Any] = {}
    for name, policy in (("", srl_policy), ("ks_", None)):
        g = ks_girf(ks, cfg, horizon=40, n_paths=cfg.irf_paths, generator=ctx.generator(11), policy=policy)
        per_unit = {k: v / g.log_z_shock for k, v in g.mean.items()}
        gaps = irf_gap_pct(per_unit, linear)
        out[f"{name}irf_gap_vs_ssj_pct"] = gaps["max"]
        out[f"{name}irf_gap_vs_ssj_by_variable_pct"] = {k: v for k, v in gaps.items() if k != "max"}
        if name == "":
            srl_irf = per_unit
        else:
            out["srl_irf_gap_vs_ks_girf_pct"] = irf_gap_pct(srl_irf, per_unit)["max"]
    out["irf_log_tfp_shock"] = g.log_z_shock
    out["irf_wall_s"] = time.perf_counter() - t0
    return out


def _ks_plots(ctx, cfg, ks, model, res, Ks, Cs, dists_srl, fa, euler) -> None:
    import numpy as np
    import torch

    plt = _plt()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
    for name, (per_t, by_a) in euler.items():
        ax[0].plot(np.arange(len(per_t)) + cfg.ks_burn, per_t, lw=0.9, label=name)
        m = ks.a_grid.numpy() <= 30
        ax[1].plot(ks.a_grid.numpy()[m], by_a.numpy()[m], lw=0.9, label=name)
    ax[0].set(xlabel="t", ylabel="log10 |Euler error| (mass-weighted)", title="Euler errors along the common path")
    ax[1].set(xlabel="assets a", ylabel="log10 |Euler error|", title="Euler errors by wealth (unconstrained)")
    for a in ax:
        a.legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure("ks_euler", fig)

    a = ks.a_grid.numpy()
    zi = cfg.n_z // 2
    K0 = torch.tensor(ks.stationary_K, dtype=torch.float64)
    from abm_markets.solvers.krusell_smith import interp_policy_K

    pol_ks = interp_policy_K(ks.a_next[..., zi], ks.K_grid, K0).numpy()
    pol_srl = model.savings_fn(res.params)(K0, zi).numpy()
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    m = a <= 20
    for k in range(cfg.n_e):
        ax[0].plot(a[m], pol_ks[m, k] - a[m], lw=1.2, label=f"KS algorithm, e{k}")
        ax[0].plot(a[m], pol_srl[m, k] - a[m], "--", lw=1.2, label=f"SRL, e{k}")
    ax[0].axhline(0, color="k", lw=0.5)
    ax[0].set(xlabel="assets a", ylabel="a' - a", title=f"net saving at K = K_ss, z = {float(ks.z[zi]):.3f}")
    ax[0].legend(fontsize=7)
    g_ss = ks.dist0.sum(1).numpy()
    g_end = dists_srl[-1].sum(1).numpy()
    ax[1].plot(a[m], np.cumsum(g_ss)[m], label="stationary (no aggregate risk)")
    ax[1].plot(a[m], np.cumsum(g_end)[m], "--", label="SRL, end of common path")
    ax[1].set(xlabel="assets a", ylabel="share with assets <= a", title="wealth distribution (CDF)")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    ctx.save_figure("ks_policy_distribution", fig)

    burn = cfg.ks_burn
    t = np.arange(Ks.shape[0])
    fig, ax = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True)
    span = slice(burn, min(burn + 400, Ks.shape[0]))
    ax[0].plot(t[span], ks.K_path.numpy()[span], label="KS algorithm", lw=1.2)
    ax[0].plot(t[span], Ks[span], "--", label="SRL", lw=1.2)
    if fa is not None:
        ta = np.arange(fa["K"].shape[0])
        keep = (ta >= span.start) & (ta < span.stop)
        if keep.any():
            ax[0].plot(ta[keep], fa["K"][keep], ":", label=f"SRL, {cfg.n_agents} Mesa agents", lw=1.0)
    ax[0].set(ylabel="K", title="common TFP path")
    ax[0].legend(fontsize=8)
    ax[1].plot(t[span], ks.C_path.numpy()[span], label="KS algorithm", lw=1.2)
    ax[1].plot(t[span], Cs[span], "--", label="SRL", lw=1.2)
    ax[1].set(xlabel="t", ylabel="C")
    fig.tight_layout()
    ctx.save_figure("ks_paths", fig)

    if fa is not None:
        Tg = fa["K"].shape[0]
        fig, ax = plt.subplots(1, 2, figsize=(10, 3.4))
        for i, v in enumerate(("K", "C")):
            ref = (Ks if v == "K" else Cs)[:Tg]
            ax[i].fill_between(np.arange(Tg), ref - 2 * fa[f"se_{v}"], ref + 2 * fa[f"se_{v}"], alpha=0.3,
                               label="distribution method +- 2 s.e.")  # fmt: skip
            ax[i].plot(np.arange(Tg), fa[v], lw=0.9, label=f"{cfg.n_agents} Mesa agents")
            ax[i].set(xlabel="t", ylabel=v, title=f"finite agents vs continuum: {v}")
            ax[i].legend(fontsize=8)
        fig.tight_layout()
        ctx.save_figure("ks_finite_agents", fig)

    hist = res.history
    ep = [h["epoch"] for h in hist]
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
    ax[0].plot(ep, [h["objective_household"] for h in hist], lw=0.8)
    ax[0].set(xlabel="epoch", ylabel="discounted utility (batch mean)", title="SRL objective")
    ax[1].semilogy(ep, [h["update"] for h in hist], lw=0.8)
    ax[1].axhline(cfg.tol, color="k", lw=0.5, ls="--")
    ax[1].set(xlabel="epoch", ylabel="q99 |a' update|", title="policy update")
    fig.tight_layout()
    ctx.save_figure("ks_training", fig)


# ---------------------------------------------------------------------------------------------- HANK
@dataclasses.dataclass(frozen=True, kw_only=True)
class HANKScenarioConfig(HANKEconomyConfig, SRLConfig):
    """HANK by SRL: households and firms learn together (economy, solver and evaluation settings).

    The rollout is longer than the solver's default (80 periods, 30 frozen): with
    ``beta ~ 0.97`` the discounted weight of periods beyond a short rollout is large, and a
    truncated objective biases saving (see docs/srl_ks_hank.md).
    """

    horizon: int = param(150, "Periods T per path and epoch (objective truncated at T).", ge=2)
    tail: int = param(70, "Last periods of each rollout simulated with the policy detached.", ge=0)

    eval_paths: int = param(32, "Paths simulated from the steady state to measure residuals.", ge=1)
    eval_periods: int = param(200, "Logged periods per evaluation path.", ge=2)
    eval_burn_in: int = param(100, "Periods discarded before the evaluation.", ge=0)
    irf_periods: int = param(20, "Periods of the impulse responses.", ge=2)
    irf_paths: int = param(256, "Coupled shock paths averaged for the impulse responses.", ge=1)
    irf_burn_in: int = param(
        200, "Periods at the middle shock state before the impulse (stochastic steady state).", ge=0
    )
    pc_periods: int = param(100, "Periods of one path on which the Phillips-curve residual is computed.", ge=2)

    def validate(self) -> None:
        HANKEconomyConfig.validate(self)
        SRLConfig.validate(self)

    def estimated_bytes(self) -> int:
        """SRL paths, evaluation and impulse-response paths (distribution over bonds x efficiency per period,
        with autograd: x16) and the policy tables on the price grid."""
        grid = self.n_b * self.n_e
        paths = (self.n_paths * self.horizon + self.eval_paths * (self.eval_periods + self.eval_burn_in)) * grid
        irf = 2 * self.irf_paths * (self.irf_periods + getattr(self, "irf_burn_in", 0)) * grid
        tables = self.n_m * self.n_R * self.n_w * grid * 8 * 8
        return (paths + irf) * 8 * 16 + tables


@register(
    "hank-srl",
    config=HANKScenarioConfig,
    description="HANK with a Rotemberg Phillips curve: households' savings and firms' pricing learned by SRL",
    expected_wall_s=274.0,
    expected_wall_source="one default run, 1 thread, shared CPU, 2026-11-30 (training 258 s, SSJ 10 s)",
)
def run_hank(cfg: HANKScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    import torch

    from abm_markets.srl.hank import HANKModel, simulate_path
    from abm_markets.srl.solver import simulate, simulate_markov, solve

    t_start = time.perf_counter()
    econ = _pick(cfg, HANKEconomyConfig)
    scfg = _pick(cfg, SRLConfig)
    model = HANKModel(econ, device=ctx.device, dtype=scfg.torch_dtype)
    res = solve(model, scfg, generator=ctx.generator(), device=ctx.device, ctx=ctx)
    params = res.params

    # residuals along simulated paths from the steady state
    ev = simulate(
        model, params, n_paths=cfg.eval_paths, periods=cfg.eval_periods, burn_in=cfg.eval_burn_in,
        generator=ctx.generator(1), init="fixed",
    )  # fmt: skip
    L = {k: v.double().cpu() for k, v in ev.logs.items()}

    # Phillips-curve residual (exact expectation over next period's shock) on one path
    gen = ctx.generator(2)
    mid = cfg.n_m // 2
    m_pc = simulate_markov(model.agg_transition, torch.full((1,), mid, device=ctx.device), cfg.pc_periods, gen)
    logs_pc, dists_pc = simulate_path(model, params, m_pc, model.dist_ss[None])
    pc = model.phillips_residual(params, dists_pc[0], m_pc[0, :-1]).double().cpu()
    Pi_pc = logs_pc["Pi"][0].double().cpu()

    # impulse responses: E[x_t | m_0 = top state] - E[x_t | m_0 = middle state] over coupled shock
    # chains (same uniform draws), from the stochastic steady state (burn-in at the middle state)
    T = cfg.irf_periods
    base = torch.full((1, cfg.irf_burn_in + 1), mid, device=ctx.device)
    _, d_burn = simulate_path(model, params, base, model.dist_ss[None])
    n_irf = cfg.irf_paths
    g0 = d_burn[:, -1].expand(n_irf, -1, -1).contiguous()
    P = model.agg_transition
    m_hi = simulate_markov(P, torch.full((n_irf,), cfg.n_m - 1, device=ctx.device), T, ctx.generator(3))
    m_lo = simulate_markov(P, torch.full((n_irf,), mid, device=ctx.device), T, ctx.generator(3))
    logs_hi, _ = simulate_path(model, params, m_hi, g0)
    logs_lo, _ = simulate_path(model, params, m_lo, g0)
    keys = ("R", "Pi", "w", "Y", "C", "m")
    irf = {k: (logs_hi[k].mean(0) - logs_lo[k].mean(0)).double().cpu().numpy() for k in keys}
    lvl = {k: logs_lo[k].mean(0).double().cpu().numpy() for k in keys}
    ssj, ssj_summary = _hank_vs_ssj(econ, irf, float(model.m64[-1]))

    # steps: every evaluation path (economy = path); impulse responses as irf_* rows of economy -1 (a mean over
    # the coupled shock paths)
    rows = [
        pl.DataFrame({"t": np.arange(T), "economy": -1, "agent": -1, "variable": f"irf_{k}", "value": v})
        for k, v in irf.items()
    ]
    for k in ("R", "Pi", "w", "Y", "C", "m", "resid_bond", "resid_goods", "resid_taylor"):
        v = L[k].numpy()  # [paths, T]
        p_i, t_i = np.meshgrid(np.arange(v.shape[0]), np.arange(v.shape[1]), indexing="ij")
        rows.append(
            pl.DataFrame({"t": t_i.ravel(), "economy": p_i.ravel(), "agent": -1, "variable": k, "value": v.ravel()})
        )
    ctx.write_log("steps", pl.concat(rows, how="vertical_relaxed"))
    ctx.write_table("distribution", distribution_frame(model.b64, model.e64, ev.dist.double().mean(0), "srl"))

    hist = res.history
    summary: dict[str, Any] = {
        "converged": res.converged,
        "epochs": res.epochs,
        "srl_wall_s": res.wall_s,
        "beta": model.beta,
        "chi": model.chi,
        "resid_bond_max": float(L["resid_bond"].abs().max()),
        "resid_bond_mean": float(L["resid_bond"].abs().mean()),
        "resid_goods_max": float(L["resid_goods"].abs().max()),
        "resid_goods_mean": float(L["resid_goods"].abs().mean()),
        "resid_taylor_max": float(L["resid_taylor"].abs().max()),
        "resid_taylor_mean": float(L["resid_taylor"].abs().mean()),
        "bracketed_share": float(L["bracketed"].mean()),
        "pc_resid_mean_abs": float(pc.abs().mean()),
        "pc_resid_max_abs": float(pc.abs().max()),
        "Pi_mean_abs_on_pc_path": float(Pi_pc.abs().mean()),
        "mean_R": float(L["R"].mean()),
        "mean_Pi": float(L["Pi"].mean()),
        "sd_Pi": float(L["Pi"].std()),
        "mean_w": float(L["w"].mean()),
        "mean_Y": float(L["Y"].mean()),
        "sd_log_Y": float(torch.log(L["Y"]).std()),
        "irf_shock_m": float(irf["m"][0]),
        "irf_R_impact_bp": float(1e4 * irf["R"][0]),
        "irf_Pi_impact_bp": float(1e4 * irf["Pi"][0]),
        "irf_Y_impact_pct": float(100 * irf["Y"][0] / lvl["Y"][0]),
        "irf_C_impact_pct": float(100 * irf["C"][0] / lvl["C"][0]),
        "irf_w_impact_pct": float(100 * irf["w"][0] / lvl["w"][0]),
        "irf_Pi_cumulative_bp": float(1e4 * irf["Pi"].sum()),
        "irf_Y_cumulative_pct": float(100 * (irf["Y"] / lvl["Y"]).sum()),
        "final_update": hist[-1]["update"] if hist else None,
        **ssj_summary,
        "wall_s": time.perf_counter() - t_start,
    }
    _hank_plots(ctx, cfg, model, params, res, irf, lvl, L, pc, Pi_pc, ssj)
    return summary


def _hank_vs_ssj(econ: HANKEconomyConfig, irf: dict[str, Any], m0: float) -> tuple[Any, dict[str, Any]]:
    """The SRL responses against sequence-space Jacobians (docs/irf_ssj.md, HANK).

    The SRL response to the top shock state ``m0`` is divided by ``m0`` and compared with SSJ's
    first-order response to ``m_t = rho_m^t`` (the chain's expected path) and with SSJ's own
    nonlinear transition of the same size, over the first ``min(20, irf_periods)`` periods.

    Returns:
        ``(ssj result or None, summary entries)``; without the ``dev`` extra the entries hold only
        ``irf_vs_ssj_skipped`` (the reason).
    """
    import importlib.util

    import torch

    if importlib.util.find_spec("sequence_jacobian") is None:
        return None, {"irf_vs_ssj_skipped": "sequence_jacobian is not installed (pip install -e '.[dev]')"}
    from abm_markets.solvers.hank_ssj import VARIABLES, hank_ssj
    from abm_markets.solvers.transition import irf_gap_pct

    t0 = time.perf_counter()
    ssj = hank_ssj(econ, nonlinear_shocks=(m0,))
    srl = {k: torch.as_tensor(irf[k] / m0) for k in VARIABLES}
    horizon = min(20, len(irf["R"]))

    def oracle(path: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(path[k][:horizon]) for k in VARIABLES}

    gap = irf_gap_pct(srl, oracle(ssj.linear), horizon=horizon, variables=VARIABLES)
    gap_nl = irf_gap_pct(srl, oracle(ssj.nonlinear[m0]), horizon=horizon, variables=VARIABLES)
    nl = irf_gap_pct(oracle(ssj.nonlinear[m0]), oracle(ssj.linear), horizon=horizon, variables=VARIABLES)
    lin = ssj.linear
    return ssj, {
        "irf_gap_vs_ssj_pct": gap.pop("max"),
        "irf_gap_vs_ssj_pct_by_variable": gap,
        "irf_gap_vs_ssj_nonlinear_pct": gap_nl.pop("max"),
        "irf_gap_vs_ssj_nonlinear_pct_by_variable": gap_nl,
        "ssj_nonlinearity_pct": nl.pop("max"),
        "ssj_steady": {k: ssj.steady[k] for k in ("beta", "R", "w", "Y", "C", "asset_mkt", "goods_mkt")},
        "ssj_rho_m": ssj.rho_m,
        "ssj_R_impact_bp": float(1e4 * m0 * lin["R"][0]),
        "ssj_Pi_impact_bp": float(1e4 * m0 * lin["Pi"][0]),
        "ssj_Y_impact_pct": float(100 * m0 * lin["Y"][0] / ssj.steady["Y"]),
        "ssj_C_impact_pct": float(100 * m0 * lin["C"][0] / ssj.steady["C"]),
        "ssj_wall_s": time.perf_counter() - t0,
    }


def _hank_plots(ctx, cfg, model, params, res, irf, lvl, L, pc, Pi_pc, ssj=None) -> None:
    import numpy as np

    plt = _plt()
    T = irf["R"].shape[0]
    t = np.arange(T)
    fig, ax = plt.subplots(1, 5, figsize=(16, 3.0))
    spec = [
        ("m", 1e4, "monetary shock m (bp)"),
        ("R", 1e4, "real rate R (bp)"),
        ("Pi", 1e4, "inflation (bp)"),
        ("Y", 100 / lvl["Y"][0], "output (% dev.)"),
        ("C", 100 / lvl["C"][0], "consumption (% dev.)"),
    ]
    m0 = float(irf["m"][0])
    for a, (k, sc, title) in zip(ax, spec, strict=True):
        a.plot(t, irf[k] * sc, marker=".", lw=1, label="SRL")
        if ssj is not None:
            ref = m0 * (ssj.rho_m**t if k == "m" else ssj.linear[k][:T])
            a.plot(t, ref * sc, "k--", lw=1, label="SSJ first order")
        a.axhline(0, color="k", lw=0.5)
        a.set(title=title, xlabel="t")
    if ssj is not None:
        ax[0].legend(fontsize=7)
    fig.tight_layout()
    fig.suptitle("expected responses to a contractionary monetary shock (top state at t = 0; coupled chains)", y=1.04)
    ctx.save_figure("hank_irf", fig)

    fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
    for i, k in enumerate(("resid_bond", "resid_goods", "resid_taylor")):
        v = L[k].abs().numpy().ravel()
        ax[i].hist(np.log10(np.maximum(v, 1e-12)), bins=40)
        ax[i].set(title=f"log10 |{k}| (all eval periods)", xlabel="log10")
    fig.tight_layout()
    ctx.save_figure("hank_residuals", fig)

    import torch

    Pi_tab = (cfg.firm_scale * params["inflation"]).double().cpu()
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.4))
    iR = int(torch.argmin((model.R_grid.double().cpu() - cfg.R_ss).abs()))
    for mi in range(cfg.n_m):
        ax[0].plot(
            model.w_grid.cpu().numpy(),
            (1e4 * Pi_tab[mi, iR]).numpy(),
            marker=".",
            label=f"m = {float(model.m64[mi]) * 1e4:+.0f} bp",
        )
    ax[0].set(
        xlabel="wage w (= real marginal cost)",
        ylabel="inflation (bp)",
        title=f"firms' policy at R = {float(model.R_grid[iR]):.4f}",
    )
    ax[0].legend(fontsize=7)
    share = torch.sigmoid(params["savings_logit"].double().cpu())
    jw = int(torch.argmin((model.w_grid.double().cpu() - model.m_star).abs()))
    x = model._grid_cash(cfg.firm_scale * params["inflation"]).double().cpu()
    bprime = (share * x)[cfg.n_m // 2, iR, jw].clamp(max=cfg.b_max).numpy()
    b = model.b64.numpy()
    keep = b <= 25
    for k in range(cfg.n_e):
        ax[1].plot(b[keep], bprime[keep, k] - b[keep], label=f"e{k}")
    ax[1].axhline(0, color="k", lw=0.5)
    ax[1].set(xlabel="bonds b", ylabel="b' - b", title="households' net saving at steady-state prices")
    ax[1].legend(fontsize=7)
    ax[2].plot(1e4 * Pi_pc.numpy(), label="inflation")
    ax[2].plot(1e4 * pc.numpy(), label="Phillips-curve residual")
    ax[2].set(xlabel="t", ylabel="bp", title="Rotemberg Phillips curve on a path")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("hank_policies", fig)

    hist = res.history
    ep = [h["epoch"] for h in hist]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.2))
    ax[0].plot(ep, [h["objective_household"] for h in hist], lw=0.8)
    ax[0].set(xlabel="epoch", title="households' objective")
    ax[1].plot(ep, [h["objective_firm"] for h in hist], lw=0.8)
    ax[1].set(xlabel="epoch", title="firms' objective")
    ax[2].semilogy(ep, [h["update"] for h in hist], lw=0.8, label="q99 |update|")
    ax[2].semilogy(ep, [max(h["resid_bond_max"], 1e-12) for h in hist], lw=0.8, label="max |bond resid| (train)")
    ax[2].set(xlabel="epoch", title="convergence")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("hank_training", fig)
