"""Krusell and Smith (1998), the paper's benchmark economy, against the published law of motion: ``ks-1998``.

1. The Krusell-Smith algorithm (:mod:`abm_markets.solvers.ks1998`) on the
   paper's calibration and simulation length: aggregate law of motion per
   aggregate state, its R^2, Den Haan's maximum error, mean capital.
2. Structural RL (:mod:`abm_markets.srl.ks1998`): households learn a saving
   share over (aggregate state, capital as a price index, own capital,
   employment) by policy gradient; the learned policy is simulated on the same
   aggregate path and the law of motion *implied by its paths* is estimated by
   the same regression.
3. Both against the published coefficients (:data:`abm_markets.solvers.ks1998.PUBLISHED`):
   intercept and slope, and the gap of the one-step prediction ``log K'`` over the
   capital range the economy visits (coefficients are rounded to three decimals
   in the paper, which alone allows a prediction gap of up to 0.17% in log).
4. Exact Euler-equation errors of both policies on a fresh path.

Writes ``steps.parquet`` (docs/logs.md: the common path's aggregate state,
capital and consumption per policy) and ``distribution.parquet`` (the
distribution at the end of the path, per policy).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from abm_markets.config import param
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext
from abm_markets.scenarios import register
from abm_markets.scenarios._logs import distribution_frame
from abm_markets.solvers.ks1998 import KS98Calibration, KS98Config
from abm_markets.srl.solver import SRLConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class KS1998ScenarioConfig(KS98Config, SRLConfig):
    """Krusell and Smith (1998): the algorithm and SRL on the paper's economy (one table of settings)."""

    horizon: int = param(400, "Periods T per path and epoch (quarterly beta = 0.99 needs a long horizon).", ge=2)
    tail: int = param(60, "Last periods of each rollout simulated with the policy detached.", ge=0)
    tol: float = param(5e-4, "Convergence: quantile of |policy update| below this.", gt=0.0)
    min_epochs: int = param(300, "No convergence is declared before this epoch.", ge=0)
    srl: bool = param(True, "Also solve by structural RL (false: the Krusell-Smith algorithm only).")
    euler_periods: int = param(500, "Periods of the fresh path on which Euler errors are computed.", ge=2)

    def validate(self) -> None:
        KS98Config.validate(self)
        SRLConfig.validate(self)
        if self.srl and self.grid_power < 1.0:
            raise ConfigError(f"grid_power = {self.grid_power} is invalid; expected >= 1")


def _pick(cfg: Any, cls: type) -> Any:
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in dataclasses.asdict(cfg).items() if k in names})


def prediction_gap_pct(coef: Any, published: tuple[float, float], log_K: Any) -> float:
    """Max over ``log_K`` of ``100 |(b0 + b1 log K) - (p0 + p1 log K)|``: the one-step prediction gap in log %."""
    import numpy as np

    b0, b1 = (float(v) for v in coef)
    return float(100 * np.abs((b0 - published[0]) + (b1 - published[1]) * np.asarray(log_K)).max())


@register(
    "ks-1998",
    config=KS1998ScenarioConfig,
    description="Krusell and Smith (1998) benchmark: KS algorithm and structural RL vs the published law of motion",
    expected_wall_s=590.0,
    expected_wall_source="seed runs, 1 thread, CPU shared with other jobs (load 3-4), 2026-11-30",
)
def run(cfg: KS1998ScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl
    import torch

    from abm_markets.solvers import ks1998
    from abm_markets.solvers.krusell_smith import den_haan, regress_law

    t_start = time.perf_counter()
    kcfg = _pick(cfg, KS98Config)
    pub = ks1998.PUBLISHED

    # 1. the Krusell-Smith algorithm
    t0 = time.perf_counter()
    ks = ks1998.solve(kcfg, seed=ctx.seed)
    ks_wall = time.perf_counter() - t0
    burn = cfg.burn
    logK = np.log(ks.K_path[burn:].numpy())
    span = np.linspace(logK.min(), logK.max(), 50)  # the capital the economy visits
    ks_fn = ks1998.policy_from_table(ks.a_next, ks.K_grid, cfg.a_max)
    z_eval = ks1998.simulate_tfp(ks.Pz, cfg.euler_periods + 1, ctx.generator(7), start=int(ks.z_idx[-1]))
    names = ("bad", "good")

    def law(prefix: str, coef: Any, r2: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, nm in enumerate(names):
            out[f"{prefix}alm_{nm}"] = [float(coef[k, 0]), float(coef[k, 1])]
            out[f"{prefix}r2_{nm}"] = float(r2[k])
            out[f"{prefix}alm_{nm}_prediction_gap_pct"] = prediction_gap_pct(coef[k], pub[f"alm_{nm}"], span)
        return out

    summary: dict[str, Any] = {
        **law("", ks.coef, ks.r2),
        "mean_K": float(ks.K_path[burn:].mean()),
        "sd_log_K": float(logK.std()),
        "den_haan_max_pct": ks.den_haan_max,
        "den_haan_mean_pct": ks.den_haan_mean,
        "ks_converged": ks.converged,
        "ks_outer_iterations": ks.outer_iterations,
        "ks_wall_s": ks_wall,
        **{f"{k}_ks": v for k, v in ks1998.euler_errors(ks_fn, kcfg, z_eval, ks.dist_end).items()},
        "published_alm_bad": list(pub["alm_bad"]),
        "published_alm_good": list(pub["alm_good"]),
        "published_r2": pub["r2_good"],
        "published_source": pub["source"],
    }
    frames = [_rows("aggregate_state", None, ks.z_idx.numpy().astype(float))]
    frames += [_rows("capital", "ks_algorithm", ks.K_path), _rows("consumption", "ks_algorithm", ks.C_path)]
    ends = [("ks_algorithm", ks.dist_end)]
    K_srl = None

    # 2. structural RL, its paths on the same aggregate states, the law its paths imply
    if cfg.srl:
        from abm_markets.srl.ks1998 import KS98Model
        from abm_markets.srl.solver import solve

        scfg = _pick(cfg, SRLConfig)
        model = KS98Model(_pick(cfg, KS98Calibration), dist0=ks.dist_end, device=ctx.device, dtype=scfg.torch_dtype)
        res = solve(model, scfg, generator=ctx.generator(), device=ctx.device, ctx=ctx)
        srl_fn = model.savings_fn(res.params)
        K_srl, C_srl, dist_srl = ks1998.simulate(srl_fn, kcfg, ks.z_idx, ks.dist_end)
        coef_srl, r2_srl = regress_law(K_srl, ks.z_idx, 2, burn)
        dh_srl = den_haan(coef_srl, K_srl, ks.z_idx, burn)
        Ks, Kk = K_srl[burn:].numpy(), ks.K_path[burn:].numpy()
        summary |= {
            **law("srl_", coef_srl, r2_srl),
            "srl_mean_K": float(Ks.mean()),
            "srl_mean_K_gap_pct": float(100 * (Ks.mean() / Kk.mean() - 1)),
            "srl_K_path_max_gap_pct": float(100 * np.abs(Ks / Kk - 1).max()),
            "srl_den_haan_max_pct": dh_srl[0],
            "srl_vs_ks_prediction_gap_pct": max(
                prediction_gap_pct(coef_srl[k], (float(ks.coef[k, 0]), float(ks.coef[k, 1])), span) for k in (0, 1)
            ),
            **{f"{k}_srl": v for k, v in ks1998.euler_errors(srl_fn, kcfg, z_eval, ks.dist_end).items()},
            "srl_converged": res.converged,
            "srl_epochs": res.epochs,
            "srl_wall_s": res.wall_s,
        }
        frames += [_rows("capital", "srl", K_srl), _rows("consumption", "srl", C_srl)]
        ends.append(("srl", dist_srl))

    ctx.write_log("steps", pl.concat(frames, how="vertical_relaxed"))
    eps = torch.tensor([0.0, 1.0], dtype=torch.float64)
    ctx.write_table("distribution", pl.concat(distribution_frame(ks.a_grid, eps, d, p) for p, d in ends))
    _plots(ctx, cfg, ks, K_srl, summary)
    summary["wall_s"] = time.perf_counter() - t_start
    return summary


def _rows(variable: str, policy: str | None, v: Any) -> Any:
    import numpy as np
    import polars as pl

    v = np.asarray(v, dtype=np.float64)
    return pl.DataFrame(
        {"t": np.arange(v.shape[0]), "economy": 0, "agent": -1, "variable": variable, "value": v,
         "policy": pl.Series([policy] * v.shape[0], dtype=pl.String)}
    )  # fmt: skip


def _plots(ctx: RunContext, cfg: KS1998ScenarioConfig, ks: Any, K_srl: Any, summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = law_of_motion_figure(summary, ks.K_path.numpy(), ks.z_idx.numpy(), cfg.burn, K_srl)
    ctx.save_figure("ks1998_law_of_motion", fig)
    plt.close(fig)


def law_of_motion_figure(summary: dict[str, Any], K_path: Any, z_idx: Any, burn: int, K_srl: Any = None) -> Any:
    """Left: each law's ``log K'`` minus the published law's, in percent, over the capital the economy visits,
    with the simulated points and the band the published coefficients' rounding (3 decimals) leaves.
    Right: capital on the common aggregate path."""
    import matplotlib.pyplot as plt
    import numpy as np

    lk = np.log(np.asarray(K_path))
    z = np.asarray(z_idx)
    fig, ax = plt.subplots(1, 3, figsize=(14, 3.8))
    x = np.linspace(lk[burn:].min(), lk[burn:].max(), 50)
    for k, nm in enumerate(("bad", "good")):
        a = ax[k]
        p = summary[f"published_alm_{nm}"]

        def gap(c: Any, xs: Any = x, p: Any = p) -> Any:
            return 100 * ((c[0] - p[0]) + (c[1] - p[1]) * xs)

        m = z[burn:-1] == k
        pts_x, pts_y = lk[burn:-1][m][::4], lk[burn + 1 :][m][::4]
        a.plot(pts_x, 100 * (pts_y - (p[0] + p[1] * pts_x)), ".", ms=2, color="0.6", label="simulated (KS algorithm)")
        band = 100 * (0.0005 + 0.0005 * x)
        a.fill_between(x, -band, band, color="0.9", label="rounding of the published coefficients")
        b = summary[f"alm_{nm}"]
        a.plot(x, gap(b), lw=1.5, label=f"KS algorithm {b[0]:.4f} + {b[1]:.4f} log K")
        if f"srl_alm_{nm}" in summary:
            s = summary[f"srl_alm_{nm}"]
            a.plot(x, gap(s), "--", lw=1.5, label=f"SRL paths {s[0]:.4f} + {s[1]:.4f} log K")
        a.axhline(0, color="k", lw=0.6)
        a.set(
            xlabel="log K",
            ylabel="log K' minus published law (%)",
            title=f"{nm} times: published {p[0]:.3f} + {p[1]:.3f} log K",
        )
        a.legend(fontsize=7)
    t = np.arange(lk.shape[0])
    sl = slice(burn, burn + 600)
    ax[2].plot(t[sl], np.asarray(K_path)[sl], lw=1.1, label="KS algorithm")
    if K_srl is not None:
        ax[2].plot(t[sl], np.asarray(K_srl)[sl], "--", lw=1.1, label="SRL")
    ax[2].set(xlabel="quarter", ylabel="K", title="capital on the common aggregate path")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    return fig
