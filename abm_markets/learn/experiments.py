"""Train-and-compare building blocks shared by the learning scenarios.

:func:`train_planner` trains the configured groups on an economy and reports, on a fixed evaluation path,
the learned policy's welfare and long-run capital; :func:`dp_comparison` adds the DP reference (welfare,
consumption-equivalent gap, policy error over the DP ergodic set) where one exists (one household, one good,
planner).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from abm_markets.engine.investment import InvestmentEconomy, InvestmentState
from abm_markets.learn import evaluate as ev
from abm_markets.learn.sources import DPSource, as_decide, steady_state_share_source
from abm_markets.learn.train import TrainConfig, Trainer, train

__all__ = ["DPReference", "dp_comparison", "dp_reference", "planner_diagnostics", "train_planner"]


@dataclass
class DPReference:
    """DP solution wrapped for comparisons: decision function, welfare on the evaluation path, ergodic states."""

    decide: Callable[[InvestmentState], dict[str, torch.Tensor]]
    path: ev.EvalPath
    welfare: float
    ergodic: InvestmentState


def dp_reference(
    economy: InvestmentEconomy,
    solution: Any,
    generator: torch.Generator,
    *,
    eval_paths: int,
    eval_periods: int,
    ergodic_paths: int = 64,
    ergodic_periods: int = 100,
) -> DPReference:
    """Evaluation path, DP welfare on it and DP ergodic states (one household, one good, planner)."""
    decide = as_decide(DPSource(economy, solution))
    path = ev.make_eval_path(economy, eval_paths, eval_periods, generator)
    w = ev.welfare(economy, path, decide)["welfare"]
    erg = ev.ergodic_states(economy, decide, ergodic_paths, ergodic_periods, generator)
    return DPReference(decide, path, w, erg)


def dp_comparison(
    economy: InvestmentEconomy, decide: Callable[[InvestmentState], dict[str, torch.Tensor]], ref: DPReference
) -> dict[str, float]:
    """``welfare_rl``, ``welfare_dp``, ``welfare_gap_ce_pct``, ``policy_error``, ``mean_capital_ratio_rl``."""
    w = ev.welfare(economy, ref.path, decide)
    cfg = economy.cfg
    return {
        "welfare_rl": w["welfare"],
        "welfare_dp": ref.welfare,
        "welfare_gap_ce_pct": ev.ce_gap_pct(
            w["welfare"],
            ref.welfare,
            beta=cfg.beta,
            crra=cfg.crra,
            periods=ref.path.periods,
            n_households=economy.n_households,
        ),
        "policy_error": ev.policy_error(economy, ref.ergodic, decide, ref.decide),
        "mean_capital_ratio_rl": w["mean_capital_ratio"],
    }


def planner_diagnostics(
    economy: InvestmentEconomy, decide: Callable[[InvestmentState], dict[str, torch.Tensor]], ref: DPReference
) -> dict[str, float]:
    """Euler-equation errors of the learned policy over the DP ergodic set, and the state dependence of its
    saving share against DP's (OLS slopes on log K and log z); one household, one good, planner."""
    err = ev.euler_errors(economy, ref.ergodic, decide)
    log_err = torch.log10(err[~err.isnan()].clamp_min(1e-16))
    err_dp = ev.euler_errors(economy, ref.ergodic, ref.decide)
    log_dp = torch.log10(err_dp[~err_dp.isnan()].clamp_min(1e-16))
    learned, dp = ev.share_slopes(economy, ref.ergodic, decide), ev.share_slopes(economy, ref.ergodic, ref.decide)
    return {
        "euler_error_log10_mean": float(log_err.mean()) if log_err.numel() else float("nan"),
        "euler_error_log10_max": float(log_err.max()) if log_err.numel() else float("nan"),
        "euler_error_log10_mean_dp": float(log_dp.mean()),
        "share_slope_logk_learned": learned["logk"],
        "share_slope_logk_dp": dp["logk"],
        "share_slope_logz_learned": learned["logz"],
        "share_slope_logz_dp": dp["logz"],
    }


def train_planner(
    economy: InvestmentEconomy,
    train_cfg: TrainConfig,
    ctx: Any | None,
    *,
    seed: int,
    ref: DPReference | None = None,
    eval_every: int = 0,
    eval_path: ev.EvalPath | None = None,
    desc: str = "training",
    stop: Callable[[list[dict[str, float]]], bool] | None = None,
) -> tuple[Trainer, dict[str, Any]]:
    """Train ``train_cfg.groups`` on ``economy``; evaluate periodically and at the end.

    During training, every ``eval_every`` iterations the metrics row gets ``eval_welfare`` on ``eval_path``
    (default: a 64-economy, 600-period path) and, with a DP reference, ``eval_ce_gap_pct``.

    Returns:
        ``(trainer, summary)`` with ``train_env_steps``, ``train_agent_steps``, ``train_wall_s``,
        ``welfare_rl`` and ``mean_capital_ratio_rl`` on the final evaluation path (``ref.path`` if given,
        else ``eval_path``), ``welfare_steady_state_rule``, and the DP comparison when ``ref`` is given.
    """
    trainer = Trainer(economy, train_cfg, seed=seed)
    if eval_path is None:
        eval_path = ev.make_eval_path(
            economy, 64, 600, torch.Generator(device=economy.device).manual_seed(seed + 31337)
        )
    w_dp_small = ev.welfare(economy, eval_path, ref.decide)["welfare"] if ref is not None else None
    cfg = economy.cfg
    initial: dict[str, float] = {}
    if ref is not None:  # the untrained policy (same initialisation on a resume): where learning starts from
        start = dp_comparison(economy, trainer.decide(), ref)
        initial = {
            "initial_welfare_gap_ce_pct": start["welfare_gap_ce_pct"],
            "initial_policy_error": start["policy_error"],
        }

    def periodic(tr: Trainer) -> dict[str, float]:
        w = ev.welfare(economy, eval_path, tr.decide())
        row = {"eval_welfare": w["welfare"], "eval_capital_ratio": w["mean_capital_ratio"]}
        if w_dp_small is not None:
            row["eval_ce_gap_pct"] = ev.ce_gap_pct(
                w["welfare"],
                w_dp_small,
                beta=cfg.beta,
                crra=cfg.crra,
                periods=eval_path.periods,
                n_households=economy.n_households,
            )
        return row

    t0 = time.perf_counter()
    train(trainer, ctx, evaluate=periodic if eval_every else None, eval_every=eval_every, desc=desc, stop=stop)
    final_path = ref.path if ref is not None else eval_path
    decide = trainer.decide()
    summary: dict[str, Any] = {
        "train_env_steps": trainer.env_steps,
        "train_agent_steps": trainer.agent_steps,
        "train_wall_s": trainer.train_wall_s,
        "train_iterations": trainer.iteration_done,
        "train_and_eval_wall_s": time.perf_counter() - t0,
        **initial,
    }
    rule = ev.welfare(economy, final_path, as_decide(steady_state_share_source(economy)))
    summary["welfare_steady_state_rule"] = rule["welfare"]
    if ref is not None:
        summary.update(dp_comparison(economy, decide, ref))
        summary["welfare_gap_ce_pct_steady_state_rule"] = ev.ce_gap_pct(
            rule["welfare"],
            ref.welfare,
            beta=cfg.beta,
            crra=cfg.crra,
            periods=final_path.periods,
            n_households=economy.n_households,
        )
        summary["policy_error_steady_state_rule"] = ev.policy_error(
            economy, ref.ergodic, as_decide(steady_state_share_source(economy)), ref.decide
        )
        if economy.n_households == 1 and economy.n_goods == 1 and cfg.formulation == "planner":
            summary.update(planner_diagnostics(economy, decide, ref))
    else:
        w = ev.welfare(economy, final_path, decide)
        summary["welfare_rl"] = w["welfare"]
        summary["mean_capital_ratio_rl"] = w["mean_capital_ratio"]
    return trainer, summary
