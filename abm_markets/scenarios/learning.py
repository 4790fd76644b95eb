"""Scenarios ``investment-scaling`` and ``investment-ablation``: learning planners on the batched engine.

``investment-scaling`` (seed 000, section 4.1): a PPO planner with one capital good and ``N^h`` households
(``households_list``, default 1, 4, 100) and with ``N^c = N^h`` goods and households (``goods_list``,
default 1, 2, 10), or the cases named in ``cases`` (``N^h x N^c``, e.g. ``100x1``). For each economy the run
reports the learned long-run capital against the numerical deterministic steady state
(:func:`abm_markets.solvers.investment.steady_state`), discounted utility per household on a fixed evaluation
path (and that of the steady-state saving-share rule), and whether and when training converged. Convergence
does not refer to the run's own best: training stops at the first evaluation after which the evaluated long-run
``K / K_ss`` of the last ``converge_window`` evaluations lies within a band of relative width ``converge_tol``
(default 0.2%), or at ``train_iterations`` / ``max_wall_s`` unconverged.

``investment-ablation`` (seed 000, section 5, design lessons): the one-household planner learned with actions
as spending shares or as investment quantities, the budget imposed by scaling the plan onto the budget or by
a reward penalty; compared with the DP policy (CE gap, policy error, steps and time to a 1% CE gap).

Both write ``steps.parquet`` and ``markets.parquet`` (docs/logs.md): the trained policies (``policy = learned``,
``case`` = the case or variant; and ``policy = dp`` in the ablation) played on the first ``n_logged`` economies of
the evaluation path, per household, firm and good.

Both start the learner away from the steady state (``init_shift``, log units: ``0.7`` starts at about twice the
steady-state share or quantity), so that convergence is something to measure.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import polars as pl

from abm_markets.config import Config, param
from abm_markets.engine.config import InvestmentConfig
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext
from abm_markets.scenarios import register
from abm_markets.scenarios._logs import investment_logs, labelled, write_logs


@dataclasses.dataclass(frozen=True, kw_only=True)
class LearningScenarioConfig(Config):
    """Shared settings of the learning scenarios (economy calibration and learner)."""

    alpha: float = param(0.3, "Capital share.", gt=0.0, lt=1.0)
    beta: float = param(0.98, "Discount factor (the learners' gamma too).", gt=0.0, lt=1.0)
    delta: float = param(0.04, "Depreciation rate.", gt=0.0, le=1.0)
    phi: float = param(0.5, "Quadratic cost of capital goods.", gt=0.0)
    tfp_values: tuple[float, ...] = param((0.9, 1.1), "Idiosyncratic TFP states.", gt=0.0)
    tfp_persistence: float = param(0.9, "Persistence of idiosyncratic TFP.", ge=0.0, le=1.0)
    learner: str = param("ppo", "Tianshou algorithm: ppo, sac or dqn.", choices=("ppo", "sac", "dqn"))
    train_economies: int = param(256, "Economies stepped in parallel during training.", ge=1)
    train_iterations: int = param(60, "Training iterations per economy.", ge=1)
    rollout_len: int = param(64, "Periods per iteration.", ge=1)
    train_lr: float = param(3e-3, "Learning rate.", gt=0.0)
    lr_schedule: str = param(
        "constant",
        "Learning rate: constant, or linear down to zero over train_iterations.",
        choices=("constant", "linear"),
    )
    std_end: float | None = param(
        None,
        "PPO exploration noise: None = learned; a value = log-linear from 1 down to it over train_iterations.",
        gt=0.0,
    )
    train_minibatch: int = param(4096, "PPO minibatch (SAC/DQN use 256).", ge=1)
    init_shift: float = param(0.7, "Initial policy shift from the steady-state action (log units).")
    max_wall_s: float = param(150.0, "Wall-time cap per trained economy (seconds).", gt=0.0)
    eval_every: int = param(5, "Evaluate every this many iterations.", ge=1)
    eval_paths: int = param(64, "Economies of the fixed evaluation path.", ge=1)
    eval_periods: int = param(600, "Periods of the evaluation path.", ge=10)
    converge_window: int = param(4, "Convergence: evaluations whose long-run K / K_ss must agree.", ge=2)
    converge_tol: float = param(
        0.002, "Convergence: (max - min) / mean of K / K_ss over the last converge_window evaluations.", gt=0.0
    )
    n_logged: int = param(
        4, "Evaluation economies whose paths under the trained policies go to steps.parquet and markets.parquet.", ge=1
    )

    def validate(self) -> None:
        self.economy()  # the calibration's own checks (e.g. a steady state that overflows) before anything runs

    def economy(self, **changes: Any) -> InvestmentConfig:
        return InvestmentConfig(
            alpha=self.alpha,
            beta=self.beta,
            delta=self.delta,
            phi=self.phi,
            tfp_values=self.tfp_values,
            tfp_persistence=self.tfp_persistence,
            **changes,
        )

    def train_config(self, **changes: Any) -> Any:
        from abm_markets.learn.train import TrainConfig

        base = {
            "algorithm": self.learner,
            "n_economies": self.train_economies,
            "iterations": self.train_iterations,
            "rollout_len": self.rollout_len,
            "lr": self.train_lr,
            "lr_schedule": self.lr_schedule,
            "std_end": self.std_end,
            "minibatch": self.train_minibatch,
            "gamma": self.beta,
            "init_shift": self.init_shift,
            "max_wall_s": self.max_wall_s,
            "checkpoint_every": 0,
        }
        if self.learner != "ppo":
            base["minibatch"] = 256
        base.update(changes)
        return TrainConfig(**base)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScalingScenarioConfig(LearningScenarioConfig):
    """Scaling exercises: households with one good, and as many goods as households."""

    households_list: tuple[int, ...] = param(
        (1, 2, 4, 100), "N^h of the one-good exercise (empty = skip; N^h = 2 is also compared with DP).", ge=1
    )
    goods_list: tuple[int, ...] = param((1, 2, 10), "N^c = N^h of the many-goods exercise (empty = skip).", ge=1)
    cases: tuple[str, ...] = param(
        (), "Cases N^h x N^c to run instead of the two lists (e.g. 100x1, 2x2); empty = the lists."
    )
    train_economies: int = param(
        256,
        "Economies of the one-household case; a case with N^h N^c decisions uses this / (N^h N^c), at least 64.",
        ge=1,
    )
    train_iterations: int = param(100, "Training iterations per case (at most).", ge=1)
    lr_schedule: str = param(
        "linear",
        "Learning rate: constant, or linear down to zero over train_iterations.",
        choices=("constant", "linear"),
    )
    std_end: float | None = param(
        0.1,
        "PPO exploration noise: None = learned; a value = log-linear from exp(init_log_std) down to it.",
        gt=0.0,
    )
    init_log_std: float = param(-1.2, "Initial log standard deviation of the Gaussian policy (logit units).")
    credit: str = param(
        "difference",
        "Credit of the planner's households: difference (each household its own first-order difference reward) "
        "or team (the planner's advantage for all).",
        choices=("difference", "team"),
    )
    credit_horizon: int = param(
        128,
        "credit = difference: periods the credit replay continues past each rollout at the policy's mean before "
        "it bootstraps from the critic (0 = bootstrap at the rollout's end).",
        ge=0,
    )
    credit_path: str = param(
        "mean",
        "credit = difference: dG/da along the rollout's sampled actions or along the policy's mean actions.",
        choices=("sampled", "mean"),
    )
    policy_average: float = param(
        0.2,
        "PPO: the evaluated and deployed policy is an exponential moving average of the actor's iterates with this "
        "weight per iteration (0 = the last iterate).",
        ge=0.0,
        le=1.0,
    )
    vf_coef: float = param(8.0, "PPO weight of the critic's loss (the difference credit leans on the critic).", gt=0.0)
    k_spread_common: float = param(
        0.3, "Spread of a common factor of all households' capital at resets.", ge=0.0, lt=1.0
    )
    update_household_streams: int = param(
        1600,
        "PPO update on at most this many (economy, household) streams per iteration: a case updates on the "
        "planner streams of max(8, this / (N^h N^c)) of its economies, drawn at random.",
        ge=1,
    )
    max_wall_s: float = param(300.0, "Wall-time cap per case (seconds of training).", gt=0.0)

    def validate(self) -> None:
        super().validate()
        self.case_list()
        if not self.households_list and not self.goods_list and not self.cases:
            raise ConfigError("investment-scaling needs cases, households_list or goods_list to be non-empty")

    def case_list(self) -> list[tuple[str, int, int]]:
        """``(exercise, N^h, N^c)`` of every case; ``cases`` entries are ``HxJ`` with positive integers."""
        if not self.cases:
            return [("households", h, 1) for h in self.households_list] + [("goods", n, n) for n in self.goods_list]
        out = []
        for c in self.cases:
            parts = c.lower().split("x")
            if len(parts) != 2 or not all(p.strip().isdigit() and int(p) >= 1 for p in parts):
                raise ConfigError(f"ScalingScenarioConfig.cases contains {c!r}; expected N^h x N^c such as 100x1")
            h, j = int(parts[0]), int(parts[1])
            out.append(("households" if j == 1 else "goods", h, j))
        return out

    def economies(self, h: int, j: int) -> int:
        """Training economies of a case with ``h`` households and ``j`` goods."""
        return max(min(64, self.train_economies), self.train_economies // (h * j))

    def case_train_config(self, h: int, j: int) -> Any:
        """The training settings of the case with ``h`` households and ``j`` goods: :meth:`economies` economies,
        the update on the streams of ``update_household_streams / (h j)`` of them but at least 8 (fewer starve the
        critic: at N^h = 1000 one economy per update never came within 2% of the steady state), all of them in
        one minibatch per epoch (at least ``train_minibatch`` rows). With normalised advantages every Adam step
        is about ``lr`` long whatever the gradient, so more, smaller minibatches make a larger random walk where
        the gradient is mostly noise (the one-household case, 4 minibatches of 4096 rows, kept moving by 1-2%)."""
        b = self.economies(h, j)
        streams = max(8, self.update_household_streams // (h * j))
        rows = min(streams, b) * self.rollout_len
        return self.train_config(n_economies=b, update_streams=streams, minibatch=max(self.train_minibatch, rows))

    def train_config(self, **changes: Any) -> Any:
        base = {
            "init_log_std": self.init_log_std,
            "credit": self.credit,
            "credit_horizon": self.credit_horizon,
            "credit_path": self.credit_path,
            "policy_average": self.policy_average,
            "k_spread_common": self.k_spread_common,
            "vf_coef": self.vf_coef,
        }
        base.update(changes)
        return super().train_config(**base)

    def estimated_bytes(self) -> int:
        """The largest case: rollouts (B x T x N^h x N^c, ~32 float64 per slot), evaluation path and steady state."""
        cases = [(h, j) for _, h, j in self.case_list()]
        worst = 0
        for h, j in cases:
            slots = h * j
            n = slots + j
            rollout = self.economies(h, j) * self.rollout_len * slots * 32 * 8
            evaluation = self.eval_paths * self.eval_periods * slots * 16 * 8
            worst = max(worst, 2 * (rollout + evaluation) + n * 8 * (min(n, 200) + 64))
        return worst


@dataclasses.dataclass(frozen=True, kw_only=True)
class AblationScenarioConfig(LearningScenarioConfig):
    """Design-lesson ablation: action parametrisation and budget constraint."""

    variants: tuple[str, ...] = param(
        ("shares-scale", "quantities-scale", "quantities-penalty"),
        "Variants action-budget: shares-scale, shares-penalty, quantities-scale, quantities-penalty.",
    )
    budget_penalty: float = param(1.0, "Reward penalty per unit of budget overshoot (budget = penalty).", ge=0.0)
    vfi_grid: int = param(201, "Capital grid of the DP reference.", ge=20)

    def validate(self) -> None:
        super().validate()
        valid = ("shares-scale", "shares-penalty", "quantities-scale", "quantities-penalty")
        for v in self.variants:
            if v not in valid:
                raise ConfigError(f"AblationScenarioConfig.variants contains {v!r}; expected one of {', '.join(valid)}")
        if not self.variants:
            raise ConfigError("AblationScenarioConfig.variants = () is invalid; expected at least one variant")

    def estimated_bytes(self) -> int:
        """One household and good: rollouts, evaluation path and the DP grid, float64, x2."""
        rollout = self.train_economies * self.rollout_len * 32 * 8
        evaluation = self.eval_paths * self.eval_periods * 16 * 8
        dp = self.vfi_grid * self.vfi_grid * len(self.tfp_values) * 8 * 4
        return 2 * (rollout + evaluation + dp)


class _RunLabel:
    """A view of the run context for one of several trainings: labelled metric rows, no checkpoints/resume."""

    def __init__(self, ctx: RunContext, label: str):
        self.ctx, self.label = ctx, label
        self.resume = False
        self.metrics: list[dict[str, Any]] = []

    def log_metrics(self, **row: Any) -> None:
        self.metrics.append(row)
        self.ctx.log_metrics(run=self.label, **row)

    def save_checkpoint(self, name: str, state: Any) -> None:
        return None

    def flush_metrics(self) -> None:
        self.ctx.flush_metrics()

    def progress(self, total: int, desc: str) -> Any:
        return self.ctx.progress(total, desc)


def bands_settled(rows: list[dict[str, Any]], keys: tuple[str, ...], window: int, tol: float) -> bool:
    """Every metric in ``keys`` of the last ``window`` evaluations lies in a band of relative width ``tol``
    (``(max - min) / |mean|``). It refers to no run's best, only to recent moves."""
    for key in keys:
        vals = [r[key] for r in rows if r.get(key) is not None and math.isfinite(r[key])]
        if len(vals) < window:
            return False
        last = vals[-window:]
        if (max(last) - min(last)) / abs(sum(last) / window) >= tol:
            return False
    return True


def capital_settled(rows: list[dict[str, Any]], window: int, tol: float) -> bool:
    """The convergence criterion: the evaluated long-run ``K / K_ss`` of the last ``window`` evaluations lies in a
    band of relative width ``tol``."""
    return bands_settled(rows, ("eval_capital_ratio",), window, tol)


@register(
    "investment-scaling",
    config=ScalingScenarioConfig,
    description="Learning planner with 1/4/100 households and 1/2/10 goods: long-run capital vs steady state",
    expected_wall_s=572.5,
    expected_wall_source="runs/scaling-v7/base-s0..4: 522-670 s, 1 thread, 2 runs at once",
)
def run_scaling(cfg: ScalingScenarioConfig, ctx: RunContext) -> dict[str, Any]:

    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.experiments import train_planner
    from abm_markets.learn.sources import as_decide, steady_state_share_source
    from abm_markets.solvers.investment import steady_state

    cases = cfg.case_list()
    rows = []
    logs: list[tuple[pl.DataFrame, pl.DataFrame]] = []
    for i, (exercise, h, j) in enumerate(cases):
        econ = cfg.economy(n_households=h, n_capital_goods=j)
        eco = InvestmentEconomy(econ, device=ctx.device)
        ss = steady_state(econ)
        k_num = float(ss.capital.mean())
        path = ev.make_eval_path(eco, cfg.eval_paths, cfg.eval_periods, ctx.generator(offset=100 + i))
        label = f"{exercise}-H{h}-J{j}"
        view = _RunLabel(ctx, label)
        settled = []

        def stop(train_rows: list[dict[str, Any]], settled: list[dict[str, Any]] = settled) -> bool:
            if capital_settled(train_rows, cfg.converge_window, cfg.converge_tol):
                settled.append(train_rows[-1])
                return True
            return False

        trainer, summ = train_planner(
            eco,
            cfg.case_train_config(h, j),
            view,
            seed=ctx.seed + i,
            eval_every=cfg.eval_every,
            eval_path=path,
            desc=label,
            stop=stop,
        )
        rule = ev.welfare(eco, path, as_decide(steady_state_share_source(eco)))
        w = ev.welfare(eco, path, trainer.decide())
        logs.append(labelled(investment_logs(eco, path, trainer.decide(), cfg.n_logged), case=label, policy="learned"))
        dp = _two_household_dp(econ, eco, path) if (h, j) == (2, 1) else None
        steps = float(settled[0]["env_steps"]) if settled else math.nan
        wall = float(settled[0]["wall_s"]) if settled else math.nan
        ce_vs_rule = ev.ce_gap_pct(
            w["welfare"], rule["welfare"], beta=cfg.beta, crra=1.0, periods=path.periods, n_households=h
        )
        rows.append(
            {
                "exercise": exercise,
                "n_households": h,
                "n_capital_goods": j,
                "capital_ratio": w["mean_capital_ratio"] * eco.k_ss / k_num,
                "ce_vs_rule_pct": ce_vs_rule,
                "env_steps": summ["train_env_steps"],
                "converged": bool(settled),
                "capital_ratio_dp": dp["mean_capital_ratio"] * eco.k_ss / k_num if dp else math.nan,
                "ce_vs_dp_pct": (
                    ev.ce_gap_pct(
                        w["welfare"], dp["welfare"], beta=cfg.beta, crra=1.0, periods=path.periods, n_households=h
                    )
                    if dp
                    else math.nan
                ),
                "n_goods": j,
                "k_steady_state_numerical": k_num,
                "k_steady_state_closed_form": eco.k_ss,
                "k_learned_long_run": w["mean_capital_ratio"] * eco.k_ss,
                "k_learned_over_steady_state": w["mean_capital_ratio"] * eco.k_ss / k_num,
                "welfare_per_household_rl": w["welfare_per_household"],
                "welfare_per_household_ss_rule": rule["welfare_per_household"],
                "ce_gap_vs_ss_rule_pct": ce_vs_rule,
                "env_steps_to_converge": steps,
                "wall_s_to_converge": wall,
                "train_env_steps": summ["train_env_steps"],
                "train_agent_steps": summ["train_agent_steps"],
                "train_wall_s": summ["train_wall_s"],
            }
        )
        ctx.flush_metrics()
    table = pl.DataFrame(rows)
    ctx.write_table("scaling", table)
    write_logs(ctx, logs)
    _scaling_plots(ctx, table, ctx.metrics)
    return {"cases": rows, "learner": cfg.learner, "device": str(ctx.device)}


def _two_household_dp(econ: Any, eco: Any, path: Any) -> dict[str, float]:
    """Welfare and long-run ``K / K_ss`` of the DP policy of the two-household planner on the evaluation path
    (:func:`abm_markets.solvers.planner_two.solve_vfi_two`, 61 capital points per household)."""
    from abm_markets.learn import evaluate as ev
    from abm_markets.solvers.planner_two import solve_vfi_two

    sol = solve_vfi_two(econ, n_k=61)

    def decide(state: Any) -> dict[str, Any]:
        k = state.capital[..., 0]
        shares = sol.spending_shares(k[:, 0], k[:, 1], state.z_idx[:, 0], state.z_idx[:, 1])
        return {"households": shares.unsqueeze(-1).to(state.capital.dtype)}

    return ev.welfare(eco, path, decide)


def _scaling_plots(ctx: RunContext, table: pl.DataFrame, metrics: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, exercise, xlab in ((axes[0], "households", "N^h (one good)"), (axes[1], "goods", "N^c = N^h")):
        sub = table.filter(pl.col("exercise") == exercise)
        if sub.height == 0:
            continue
        x = sub["n_households"].to_list()
        ax.plot(
            x, sub["k_learned_over_steady_state"].to_list(), marker="o", label="learned long-run K / numerical K_ss"
        )
        ax.axhline(1.0, ls="--", color="grey", label="numerical steady state")
        ax.set_xscale("log")
        ax.set_xlabel(xlab)
        ax.set_ylabel("K / K_ss")
        ax.legend(fontsize=8)
    ctx.save_figure("scaling_capital", fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = sorted({m["run"] for m in metrics if "run" in m})
    for lab in labels:
        ev_rows = [m for m in metrics if m.get("run") == lab and m.get("eval_capital_ratio") is not None]
        if ev_rows:
            ax.plot(
                [m["env_steps"] for m in ev_rows], [m["eval_capital_ratio"] for m in ev_rows], marker=".", label=lab
            )
    ax.axhline(1.0, ls="--", color="grey")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("long-run K / K_ss on the evaluation path")
    ax.legend(fontsize=7)
    ctx.save_figure("scaling_learning", fig)


@register(
    "investment-ablation",
    config=AblationScenarioConfig,
    description="Design lessons: shares vs quantities as actions, budget by scaling vs penalty (vs DP)",
    expected_wall_s=64.4,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run_ablation(cfg: AblationScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.learn.experiments import dp_reference, train_planner
    from abm_markets.solvers.investment import solve_vfi

    base = cfg.economy()
    sol = solve_vfi(base, n_k=cfg.vfi_grid)
    ref_eco = InvestmentEconomy(base, device=ctx.device)
    ref = dp_reference(ref_eco, sol, ctx.generator(offset=2), eval_paths=cfg.eval_paths, eval_periods=cfg.eval_periods)
    rows = []
    logs = [labelled(investment_logs(ref_eco, ref.path, ref.decide, cfg.n_logged), policy="dp")]
    for i, variant in enumerate(cfg.variants):
        action, budget = variant.split("-")
        econ = cfg.economy(action=action, budget=budget, budget_penalty=cfg.budget_penalty)
        eco = InvestmentEconomy(econ, device=ctx.device)
        view = _RunLabel(ctx, variant)
        # the DP reference acts in the variant's action space (shares or quantities) on the same path
        ref_v = dataclasses.replace(ref, decide=_dp_decide(eco, sol))
        t0 = time.perf_counter()
        trainer, summ = train_planner(
            eco, cfg.train_config(), view, seed=ctx.seed + i, ref=ref_v, eval_every=cfg.eval_every, desc=variant
        )
        logs.append(labelled(investment_logs(eco, ref.path, trainer.decide(), cfg.n_logged), case=variant,
                              policy="learned"))  # fmt: skip
        first = [r for r in view.metrics if r.get("eval_ce_gap_pct") is not None and r["eval_ce_gap_pct"] <= 1.0]
        rows.append(
            {
                "variant": variant,
                "action": action,
                "budget": budget,
                "welfare_gap_ce_pct": summ["welfare_gap_ce_pct"],
                "policy_error": summ["policy_error"],
                "mean_capital_ratio": summ["mean_capital_ratio_rl"],
                "env_steps_to_1pct": float(first[0]["env_steps"]) if first else math.nan,
                "wall_s_to_1pct": float(first[0]["wall_s"]) if first else math.nan,
                "train_env_steps": summ["train_env_steps"],
                "train_wall_s": summ["train_wall_s"],
                "wall_s": time.perf_counter() - t0,
            }
        )
        ctx.flush_metrics()
    table = pl.DataFrame(rows)
    ctx.write_table("ablation", table)
    write_logs(ctx, logs)
    _ablation_plot(ctx, ctx.metrics)
    return {"variants": rows, "learner": cfg.learner, "welfare_dp": ref.welfare}


def _dp_decide(eco: Any, sol: Any) -> Any:
    from abm_markets.learn.sources import DPSource, as_decide

    return as_decide(DPSource(eco, sol))


def _ablation_plot(ctx: RunContext, metrics: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for lab in sorted({m["run"] for m in metrics if "run" in m}):
        ev_rows = [m for m in metrics if m.get("run") == lab and m.get("eval_ce_gap_pct") is not None]
        if ev_rows:
            ax.plot(
                [m["env_steps"] for m in ev_rows],
                [max(m["eval_ce_gap_pct"], 1e-4) for m in ev_rows],
                marker=".",
                label=lab,
            )
    ax.axhline(1.0, ls=":", color="grey", label="1% CE")
    ax.set_yscale("log")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("CE welfare gap to DP (%)")
    ax.legend(fontsize=8)
    ctx.save_figure("ablation_learning", fig)
