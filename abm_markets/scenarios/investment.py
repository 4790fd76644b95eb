"""Scenario ``investment-planner``: the stochastic planner economy (seed 000, exercise 1).

One household, one capital good, idiosyncratic TFP risk. The planner's problem is
solved by value-function iteration; ``n_economies`` economies are simulated on the
batched engine under the DP-optimal policy from the deterministic steady state,
and the run directory gets the steady state (numerical and closed form), the
simulated moments, long-format logs and plots of capital, consumption,
investment and the policy function.

With ``learner = ppo`` (default), ``sac`` or ``dqn`` a learning planner is trained on the batched
engine (:mod:`abm_markets.learn`) and compared with the DP policy on a fixed evaluation shock path from
the same initial state: ``welfare_rl``, ``welfare_dp``, ``welfare_gap_ce_pct`` (consumption-equivalent
loss in percent), ``policy_error`` (mean ``|K'_rl - K'_dp| / K`` over the DP ergodic set),
``train_env_steps`` and ``train_wall_s``. ``learner = dp`` keeps the DP policy only.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import polars as pl
import torch

from abm_markets.config import param
from abm_markets.engine.config import InvestmentConfig
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext, long_frame
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class PlannerScenarioConfig(InvestmentConfig):
    """The investment economy's settings plus simulation and solver settings."""

    learner: str = param(
        "ppo",
        "Decision source of the planner: ppo, sac, dqn (trained with Tianshou on the batched engine, compared "
        "with DP) or dp (value-function iteration policy only).",
        choices=("ppo", "sac", "dqn", "dp"),
    )
    train_economies: int = param(512, "Economies stepped in parallel during training.", ge=1)
    train_iterations: int = param(60, "Training iterations (rollout + update).", ge=0)
    rollout_len: int = param(64, "Periods collected per training iteration.", ge=1)
    train_lr: float = param(3e-3, "Learning rate of the learner.", gt=0.0)
    action_center: str = param(
        "steady_state",
        "Action parametrisation: steady_state (zero raw action plays the steady-state saving share) or none.",
        choices=("steady_state", "none"),
    )
    init_shift: float = param(
        0.6931471805599453,
        "Where learning starts: the untrained policy plays the action centre shifted by this many logit units "
        "(default log 2: about twice the steady-state saving share, about 3% CE from DP); 0 starts on the "
        "steady-state rule, which is already within 0.02% CE of DP.",
    )
    credit: str = param(
        "difference",
        "PPO only: difference (the advantage of each action is the derivative of the return along the policy's "
        "mean path through the economy's differentiable step, continued credit_horizon periods) or team "
        "(Tianshou's GAE advantage from the critic alone: model-free).",
        choices=("difference", "team"),
    )
    credit_horizon: int = param(128, "PPO, credit = difference: periods the credit replay continues.", ge=0)
    policy_average: float = param(
        0.2,
        "PPO: weight of each iteration in the averaged (deployed and evaluated) actor; 0 = last iterate.",
        ge=0.0,
        le=1.0,
    )
    train_max_wall_s: float = param(600.0, "Stop training after this many seconds.", gt=0.0)
    checkpoint_every: int = param(10, "Checkpoint every this many training iterations.", ge=0)
    eval_every: int = param(10, "Evaluate on a small fixed path every this many iterations (0 = never).", ge=0)
    eval_paths: int = param(256, "Economies of the fixed evaluation path.", ge=1)
    eval_periods: int = param(1000, "Periods of the fixed evaluation path (beta^T is the truncation weight).", ge=10)
    n_economies: int = param(256, "Economies simulated in parallel (batch B).", ge=1)
    periods: int = param(400, "Periods simulated per economy.", ge=2)
    burn_in: int = param(100, "Periods dropped before computing ergodic moments.", ge=0)
    n_logged: int = param(8, "Economies written to steps.parquet / markets.parquet.", ge=1)
    vfi_grid: int = param(300, "Capital grid points of the value-function iteration.", ge=20)
    vfi_tol: float = param(1e-10, "Bellman-residual tolerance of the value-function iteration.", gt=0.0)

    def validate(self) -> None:
        super().validate()
        if self.n_households != 1 or self.n_capital_goods != 1:
            raise ConfigError(
                f"investment-planner solves the one-household, one-good planner by DP; got n_households = "
                f"{self.n_households}, n_capital_goods = {self.n_capital_goods} (expected 1 and 1; "
                "the investment-scaling scenario covers larger economies)"
            )
        if self.formulation != "planner":
            raise ConfigError(f"investment-planner needs formulation = 'planner', got {self.formulation!r}")
        if self.burn_in >= self.periods:
            raise ConfigError(f"burn_in = {self.burn_in} must be below periods = {self.periods}")

    def estimated_bytes(self) -> int:
        """Simulation (8 series [T, B]), evaluation path, training rollouts and the DP grid, float64, x2."""
        shocks = len(self.tfp_values) * len(self.agg_tfp_values)
        sim = 8 * self.periods * self.n_economies * 8
        evaluation = 8 * self.eval_periods * self.eval_paths * 8
        train = self.train_economies * self.rollout_len * 32 * 8 if self.learner != "dp" else 0
        dp = self.vfi_grid * self.vfi_grid * shocks * 8 * 4
        return 2 * (sim + evaluation + train + dp) + super().estimated_bytes()


def economy_config(cfg: InvestmentConfig) -> InvestmentConfig:
    """The plain :class:`InvestmentConfig` part of a scenario config."""
    names = [f.name for f in dataclasses.fields(InvestmentConfig)]
    return InvestmentConfig(**{n: getattr(cfg, n) for n in names})


def joint_shock_index(eco: Any, state: Any) -> torch.Tensor:
    """Index into the DP solver's tensor-product shock chain (idiosyncratic-major) ``[B, H]``."""
    n_agg = eco.agg.n_states
    return state.z_idx * n_agg + state.agg_idx.unsqueeze(-1)


def simulate_policy(
    eco: Any, policy: Any, *, batch: int, periods: int, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """Simulate ``batch`` economies for ``periods`` under ``policy(state) -> actions [B, H, J]``.

    Returns stacked series ``[T, B, ...]`` of capital, output, consumption, investment,
    saving share, tfp, price and utility.
    """
    state = eco.initial_state(batch, generator)
    keys = ("capital", "output", "consumption", "investment", "saving_share", "tfp", "price", "utility")
    series: dict[str, list[torch.Tensor]] = {k: [] for k in keys}
    for _ in range(periods):
        action = policy(state)
        k_now = state.capital
        state, out = eco.step(state, {"households": action}, generator)
        series["capital"].append(k_now)
        series["output"].append(out.output)
        series["consumption"].append(out.consumption)
        series["investment"].append(out.investment)
        series["saving_share"].append(out.spending.sum(-1) / out.output)
        series["tfp"].append(out.tfp)
        series["price"].append(out.price)
        series["utility"].append(out.utility)
    return {k: torch.stack(v) for k, v in series.items()}


def discounted(values: torch.Tensor, beta: float) -> torch.Tensor:
    """``sum_t beta^t values[t]`` along the first axis."""
    disc = beta ** torch.arange(values.shape[0], dtype=values.dtype, device=values.device)
    return torch.tensordot(disc, values, dims=([0], [0]))


@register(
    "investment-planner",
    config=PlannerScenarioConfig,
    description="Stochastic planner investment economy (1 household, 1 good): learning planner (PPO) vs the DP policy",
    expected_wall_s=62.1,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run(cfg: PlannerScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.solvers.investment import closed_form_steady_state, solve_vfi, steady_state

    econ = economy_config(cfg)
    t0 = time.perf_counter()
    ss = steady_state(econ)
    ss_closed = closed_form_steady_state(econ, "corrected")
    sol = solve_vfi(econ, n_k=cfg.vfi_grid, tol=cfg.vfi_tol)
    solve_s = time.perf_counter() - t0
    ctx.log_metrics(
        phase="vfi", iterations=sol.iterations, bellman_residual=sol.bellman_residual, solve_s=solve_s, env_steps=0
    )

    eco = InvestmentEconomy(econ, device=ctx.device)
    sol_dev = sol.to(ctx.device)

    def dp_policy(state: Any) -> torch.Tensor:
        share = sol_dev.saving_share(state.capital[..., 0], joint_shock_index(eco, state))
        return share.to(eco.dtype).unsqueeze(-1)

    gen = ctx.generator(offset=1)
    gen_copy = ctx.generator(offset=1)  # the same shocks for the learned planner's simulation
    with ctx.progress(1, "simulating DP policy", unit="run") as bar:
        sim = simulate_policy(eco, dp_policy, batch=cfg.n_economies, periods=cfg.periods, generator=gen)
        bar.update(1)
    ctx.log_metrics(phase="simulate", env_steps=cfg.n_economies * cfg.periods, solve_s=time.perf_counter() - t0)

    # consistency: the engine's next capital equals the DP policy's K'
    k_next_engine = sim["capital"][1:, :, 0, 0]
    k_now = sim["capital"][:-1, :, 0, 0]
    tfp_idx = _tfp_index(sim["tfp"][:-1, :, 0], sol_dev.tfp)
    k_next_dp = sol_dev.next_capital(k_now, tfp_idx)
    engine_vs_dp = float(torch.max(torch.abs(k_next_engine - k_next_dp) / k_now))

    # ---------------------------------------------------------------- logs
    n_log = min(cfg.n_logged, cfg.n_economies)
    steps = _steps_frame(sim, cfg.periods, n_log)
    t_idx = np.repeat(np.arange(cfg.periods), n_log)
    e_idx = np.tile(np.arange(n_log), cfg.periods)
    markets = long_frame(
        {
            "t": t_idx,
            "economy": e_idx,
            "good": np.zeros_like(t_idx),
            "shadow_price": sim["price"][:, :n_log, 0].reshape(-1),
            "produced": sim["investment"][:, :n_log, 0, 0].reshape(-1),
        },
        ("t", "economy", "good"),
    )
    ctx.write_log("markets", markets)
    policy_df = _policy_frame(sol)
    ctx.write_table("policy", policy_df)

    # -------------------------------------------------------------- moments
    erg = slice(cfg.burn_in, cfg.periods)
    moments: dict[str, float] = {}
    for name in ("capital", "output", "consumption", "investment", "saving_share"):
        x = sim[name][erg].reshape(-1)
        moments[f"{name}_mean"] = float(x.mean())
        moments[f"{name}_sd"] = float(x.std())
    moments["zero_investment_share"] = float((sim["investment"][erg] <= 1e-12).double().mean())
    welfare = discounted(sim["utility"][:, :, 0], cfg.beta)
    disc_tail = cfg.beta**cfg.periods / (1 - cfg.beta)

    _plots(ctx, steps, policy_df, k_ss=float(ss.capital[0, 0]))
    learned, decide = _learn(cfg, econ, sol, ctx)
    if decide is not None:  # the learned planner on the same shocks, logged next to DP (column ``policy``)
        sim_rl = simulate_policy(
            eco, lambda st: decide(st)["households"], batch=cfg.n_economies, periods=cfg.periods, generator=gen_copy
        )
        learned_steps = _steps_frame(sim_rl, cfg.periods, n_log).with_columns(pl.lit("learned").alias("policy"))
        steps = pl.concat([steps.with_columns(pl.lit("dp").alias("policy")), learned_steps])
        learned["capital_mean_learned"] = float(sim_rl["capital"][erg].mean())
        learned["saving_share_mean_learned"] = float(sim_rl["saving_share"][erg].mean())
        _plot_learned_vs_dp(ctx, sim, sim_rl, k_ss=float(ss.capital[0, 0]), learner=cfg.learner)
    else:
        steps = steps.with_columns(pl.lit("dp").alias("policy"))
    ctx.write_log("steps", steps)
    return {
        **learned,
        "steady_state": ss.to_json(),
        "steady_state_closed_form": ss_closed.to_json(),
        "steady_state_gap": float(abs(ss.capital[0, 0] - ss_closed.capital[0, 0]) / ss_closed.capital[0, 0]),
        "dp": {
            "grid_points": cfg.vfi_grid,
            "iterations": sol.iterations,
            "bellman_residual": sol.bellman_residual,
            "solve_s": solve_s,
            "stochastic_steady_state_mean_capital": moments["capital_mean"],
        },
        "moments": moments,
        "welfare_dp": learned.get("welfare_dp", float(welfare.mean())),
        "welfare_dp_simulated": float(welfare.mean()),
        "welfare_dp_truncation_weight": disc_tail,
        "engine_vs_dp_max_rel_gap": engine_vs_dp,
        "capital_mean": moments["capital_mean"],
        "consumption_mean": moments["consumption_mean"],
        "saving_share_mean": moments["saving_share_mean"],
        "n_economies": cfg.n_economies,
        "periods": cfg.periods,
    }


def _steps_frame(sim: dict[str, torch.Tensor], periods: int, n_log: int) -> pl.DataFrame:
    """Long-format log (``t``, ``economy``, ``agent``, ``variable``, ``value``) of the first ``n_log`` economies."""
    t_idx = np.repeat(np.arange(periods), n_log)
    e_idx = np.tile(np.arange(n_log), periods)
    cols = {
        "t": t_idx,
        "economy": e_idx,
        "agent": np.zeros_like(t_idx),
        **{
            name: sim[name][:, :n_log].reshape(periods, n_log, -1)[..., 0].reshape(-1)
            for name in ("capital", "output", "consumption", "investment", "saving_share", "tfp", "utility")
        },
    }
    return long_frame(cols, ("t", "economy", "agent"))


def _plot_learned_vs_dp(
    ctx: RunContext, sim_dp: dict[str, torch.Tensor], sim_rl: dict[str, torch.Tensor], *, k_ss: float, learner: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, var, label in ((axes[0], "capital", "capital K"), (axes[1], "saving_share", "saving share s")):
        for name, sim, style in (("DP policy", sim_dp, "-"), (f"learned ({learner})", sim_rl, "--")):
            x = sim[var][:, :, 0].reshape(sim[var].shape[0], -1).double()
            ax.plot(x.mean(1).cpu(), style, label=f"{name}: mean over economies")
        if var == "capital":
            ax.axhline(k_ss, ls=":", color="grey", label="deterministic steady state")
        ax.set_xlabel("period (same shocks for both policies)")
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    ctx.save_figure("learned_vs_dp_paths", fig)
    plt.close(fig)


def _learn(cfg: PlannerScenarioConfig, econ: InvestmentConfig, sol: Any, ctx: RunContext) -> tuple[dict[str, Any], Any]:
    """Train the learning planner (unless ``learner = dp``) and compare it with DP on a fixed evaluation path.

    Returns the summary entries and the learned decision function (None for ``learner = dp``)."""
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.learn.experiments import dp_comparison, dp_reference, train_planner
    from abm_markets.learn.train import TrainConfig

    eco = InvestmentEconomy(econ, device=ctx.device)
    ref = dp_reference(eco, sol, ctx.generator(offset=2), eval_paths=cfg.eval_paths, eval_periods=cfg.eval_periods)
    if cfg.learner == "dp":
        out = dp_comparison(eco, ref.decide, ref)
        out.update(learner="dp", train_env_steps=0, train_wall_s=0.0)
        return out, None
    tcfg = TrainConfig(
        algorithm=cfg.learner,
        groups=("planner",),
        n_economies=cfg.train_economies,
        iterations=cfg.train_iterations,
        rollout_len=cfg.rollout_len,
        lr=cfg.train_lr,
        gamma=cfg.beta,
        action_center=cfg.action_center,
        init_shift=cfg.init_shift,
        max_wall_s=cfg.train_max_wall_s,
        checkpoint_every=cfg.checkpoint_every,
        **_ALGO_DEFAULTS.get(cfg.learner, {}),
        **(
            {
                "credit": cfg.credit,
                "credit_path": "mean",
                "credit_horizon": cfg.credit_horizon,
                "policy_average": cfg.policy_average,
            }
            if cfg.learner == "ppo"
            else {}
        ),
    )
    trainer, out = train_planner(
        eco, tcfg, ctx, seed=ctx.seed, ref=ref, eval_every=cfg.eval_every, desc=f"training {cfg.learner}"
    )
    _learning_plots(ctx, trainer, ref, sol)
    out["learner"] = cfg.learner
    out["train_config"] = tcfg.to_dict()
    return out, trainer.decide()


_ALGO_DEFAULTS: dict[str, dict[str, Any]] = {
    # off-policy learners: fewer economies per period (each period is a gradient step), smaller batches
    "sac": {"minibatch": 256, "updates_per_step": 4},
    "dqn": {"minibatch": 256, "updates_per_step": 4},
}


def _learning_plots(ctx: RunContext, trainer: Any, ref: Any, sol: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from abm_markets.learn.evaluate import fixed_noise

    rows = [r for r in ctx.metrics if "eval_ce_gap_pct" in r and r["eval_ce_gap_pct"] is not None]
    if rows:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot([r["env_steps"] for r in rows], [max(r["eval_ce_gap_pct"], 1e-4) for r in rows], marker="o")
        ax.set_xlabel("environment steps (periods x economies)")
        ax.set_ylabel("CE welfare gap to DP (%)")
        ax.set_yscale("log")
        ax.axhline(0.5, ls="--", color="grey", label="target 0.5%")
        ax.legend(fontsize=8)
        ctx.save_figure("learning_curve", fig)
    # learned vs DP policy K'(K, z) on the DP grid range
    eco = trainer.economy
    k = torch.linspace(float(sol.grid[0]), float(sol.grid[-1]), 200, dtype=eco.dtype, device=eco.device)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for z in range(sol.n_states):
        st = eco.initial_state(k.shape[0], torch.Generator(device=eco.device).manual_seed(0))
        st = dataclasses.replace(
            st,
            capital=k.reshape(-1, 1, 1),
            z_idx=torch.full_like(st.z_idx, z // eco.agg.n_states),
            agg_idx=torch.full_like(st.agg_idx, z % eco.agg.n_states),
        )
        noise = fixed_noise(eco, st)
        k_rl = eco.step(st, trainer.decide()(st), noise=noise)[0].capital[:, 0, 0]
        k_dp = eco.step(st, ref.decide(st), noise=noise)[0].capital[:, 0, 0]
        line = ax.plot(k.cpu(), (k_dp - k).cpu(), label=f"DP, Z = {float(sol.tfp[z]):.3g}")[0]
        ax.plot(
            k.cpu(), (k_rl - k).cpu(), ls="--", color=line.get_color(), label=f"learned, Z = {float(sol.tfp[z]):.3g}"
        )
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_xlabel("K")
    ax.set_ylabel("K' - K")
    ax.legend(fontsize=8)
    ctx.save_figure("policy_learned_vs_dp", fig)


def _tfp_index(tfp: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Map TFP levels back to the solver's state index (nearest value)."""
    return torch.argmin(torch.abs(tfp.unsqueeze(-1) - values), dim=-1)


def _policy_frame(sol: Any) -> pl.DataFrame:
    k = torch.linspace(float(sol.grid[0]), float(sol.grid[-1]), 200, dtype=sol.grid.dtype)
    rows = []
    for z in range(sol.n_states):
        zi = torch.full_like(k, z, dtype=torch.long)
        rows.append(
            pl.DataFrame(
                {
                    "shock_state": np.full(k.shape[0], z),
                    "tfp": np.full(k.shape[0], float(sol.tfp[z])),
                    "capital": k.numpy(),
                    "next_capital": sol.next_capital(k, zi).numpy(),
                    "saving_share": sol.saving_share(k, zi).numpy(),
                    "value": sol.value(k, zi).numpy(),
                }
            )
        )
    return pl.concat(rows)


def _plots(ctx: RunContext, steps: pl.DataFrame, policy: pl.DataFrame, *, k_ss: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    wide = steps.pivot(on="variable", index=["t", "economy"], values="value").sort("t", "economy")
    for var, label in (
        ("capital", "capital K"),
        ("consumption", "consumption C"),
        ("investment", "investment I"),
    ):
        fig, ax = plt.subplots(figsize=(7, 3.5))
        for e in wide["economy"].unique().sort().to_list()[:8]:
            sub = wide.filter(pl.col("economy") == e)
            ax.plot(sub["t"], sub[var], lw=0.8, alpha=0.8)
        mean = wide.group_by("t").agg(pl.col(var).mean()).sort("t")
        ax.plot(mean["t"], mean[var], color="black", lw=2, label="mean of logged economies")
        if var == "capital":
            ax.axhline(k_ss, ls="--", color="grey", label="deterministic steady state")
        ax.set_xlabel("period")
        ax.set_ylabel(label)
        ax.legend(loc="best", fontsize=8)
        ctx.save_figure(var, fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for z in policy["shock_state"].unique().sort().to_list():
        sub = policy.filter(pl.col("shock_state") == z)
        lab = f"Z = {sub['tfp'][0]:.3g}"
        axes[0].plot(sub["capital"], sub["next_capital"], label=lab)
        axes[1].plot(sub["capital"], sub["saving_share"], label=lab)
    kk = policy["capital"]
    axes[0].plot(kk, kk, ls=":", color="grey", label="45°")
    axes[0].set_xlabel("K")
    axes[0].set_ylabel("K' (DP policy)")
    axes[1].set_xlabel("K")
    axes[1].set_ylabel("saving share s")
    for ax in axes:
        ax.legend(fontsize=8)
    ctx.save_figure("policy", fig)
