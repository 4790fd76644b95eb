"""Scenario ``equilibrium-selection-macro`` (seed 000: "equilibrium selection in models with multiple equilibrium"):
which steady state do learning households select in the investment economy with an aggregate production
externality, from where, and from which initial policy?

The economy: the market formulation, ``N^h = 10`` households, one capital good with one competitive firm, Walrasian
clearing, no TFP shocks, and ``Y_i = A(Kbar) K_i^alpha`` with the S-shaped externality ``A`` of mean capital that
households take as given (:mod:`abm_markets.solvers.externality`). Its steady states (three: a low and a high saddle,
a middle source) and the perfect-foresight reach of each are the reference; learning households credited with their
own return's derivative (``credit = own``) know their price impact, so their reference is the buyer-side one
(``steady_states_strategic``).

For every initial capital ``K_0`` in ``k0_list`` and every initial policy in ``init_shifts`` (the households' policy
centred on the steady-state spending share times ``exp(shift)``: pessimists below, optimists above), a shared PPO
policy is trained on episodes that start at ``K_0``, then played from ``K_0`` for ``eval_periods`` periods. The
*selected* steady state is the one on whose side of the middle steady state (the perfect-foresight divide) the path
ends; ``share_at_steady_state`` says how many paths end within ``select_tol`` of it. The initial policy's own path is
reported too, so a selection is learned, not inherited. ``agrees_with_perfect_foresight`` says whether
the selection is one that a rational-expectations path from ``K_0`` can reach.

Outputs: ``basins.parquet`` (one row per learner, K_0 and initial policy), ``steps.parquet`` (``capital``: mean
capital per household on the path of the first session, labelled by ``case`` and ``policy``), ``plots/basins.png``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polars as pl
import torch

from abm_markets.config import param
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext
from abm_markets.scenarios import register
from abm_markets.scenarios.market_learning import MarketLearningConfig


@dataclasses.dataclass(frozen=True, kw_only=True)
class MacroSelectionConfig(MarketLearningConfig):
    """Learning households in the investment economy with a production externality; the issue's calibration."""

    n_households: int = param(10, "Households N^h.", ge=1)
    tfp_values: tuple[float, ...] = param((1.0,), "Idiosyncratic TFP states (1.0: no shocks).", gt=0.0)
    externality_high: float = param(2.0, "A_H of the externality A(Kbar).", gt=0.0)
    externality_threshold: float = param(8.0, "K_thr of the externality.", gt=0.0)
    externality_width: float = param(0.3, "Width w of the externality.", gt=0.0)
    k0_list: tuple[float, ...] = param(
        (6.0, 7.4, 8.2, 9.5), "Initial capital per household K_0 (one case each).", gt=0.0
    )
    init_shifts: tuple[float, ...] = param(
        (-0.4, 0.4),
        "Initial policies: centred on the steady-state spending share times exp(shift) (one case each).",
    )
    k_init_spread: float = param(
        0.02, "Training resets: capital drawn in K_0 * [1 - spread, 1 + spread].", ge=0.0, lt=1.0
    )
    k_spread_common: float = param(0.0, "Spread of a common factor of all capital at resets.", ge=0.0, lt=1.0)
    train_iterations: int = param(40, "Training iterations per case (at most).", ge=1)
    train_economies: int = param(
        1280, "Economies stepped in parallel during training (shared among the learners).", ge=1
    )
    eval_paths: int = param(1, "Economies of the evaluation path (deterministic: one is enough).", ge=1)
    eval_periods: int = param(800, "Periods of the evaluation path from K_0.", ge=10)
    exploit_iterations: int = param(0, "Not used here.", ge=0)
    select_tol: float = param(
        0.03,
        "A path that ends within this relative distance of the steady state of its basin counts as at that steady "
        "state (share_at_steady_state).",
        gt=0.0,
    )
    max_wall_s: float = param(600.0, "Wall-time cap of each case's training (seconds).", gt=0.0)
    learners: tuple[str, ...] = param(
        ("ppo", "tabular-q"),
        "Learners, each on every case: ppo (the project's trainer: a shared Gaussian policy, credit = own) and "
        "tabular-q (Q-learning on own and mean capital bins, one table shared by a session's households).",
        choices=("ppo", "tabular-q"),
    )
    tabular_sessions: int = param(32, "Tabular Q: independent sessions per case (each an economy).", ge=1)
    tabular_periods: int = param(6000, "Tabular Q: training periods per session.", ge=1)
    tabular_k_bins: int = param(24, "Tabular Q: bins of own and of mean capital (log grid over [4, 14]).", ge=2)

    def validate(self) -> None:
        if self.firms != "competitive" or self.households != "learning":
            raise ConfigError(
                "equilibrium-selection-macro needs households = 'learning' and firms = 'competitive'; "
                f"got households = {self.households!r}, firms = {self.firms!r}"
            )
        if self.market != "walrasian":
            raise ConfigError(
                f"equilibrium-selection-macro: market = {self.market!r}; expected 'walrasian' (the buyer-side "
                "reference of the learners is derived for Walrasian clearing)"
            )
        if not self.k0_list or not self.init_shifts or not self.learners:
            raise ConfigError("equilibrium-selection-macro: k0_list, init_shifts and learners must not be empty")
        if any(abs(s) > 0.5 for s in self.init_shifts) and "tabular-q" in self.learners:
            raise ConfigError(
                f"equilibrium-selection-macro: init_shifts = {self.init_shifts} has a shift beyond the tabular "
                "learners' action grid; expected shifts in [-0.5, 0.5]"
            )
        super().validate()
        from abm_markets.solvers import externality as ex

        econ = self.economy()
        for strategic in (False, True):
            n = len(ex.households_model(econ, strategic).roots())
            if n != 3:
                raise ConfigError(
                    f"equilibrium-selection-macro: externality_high = {self.externality_high}, externality_threshold "
                    f"= {self.externality_threshold}, externality_width = {self.externality_width} give {n} steady "
                    "state(s); expected three (a low and a high one around a middle one)"
                )

    def economy(self, **changes: Any) -> Any:  # type: ignore[override]
        base = {
            "externality_high": self.externality_high,
            "externality_threshold": self.externality_threshold,
            "externality_width": self.externality_width,
        }
        base.update(changes)
        return super().economy(**base)


def _paths(eco: Any, path: Any, decide: Any) -> torch.Tensor:
    """Mean capital per household ``[B, T + 1]`` of every economy of the evaluation path ``path`` under ``decide``."""
    state = path.state0
    ks = [state.capital.double().mean((1, 2))]
    with torch.no_grad():
        for t in range(path.periods):
            state, _ = eco.step(state, decide(state), noise=path.noise[t])
            ks.append(state.capital.double().mean((1, 2)))
    return torch.stack(ks, 1)


def _ppo_case(
    cfg: MacroSelectionConfig, ctx: RunContext, eco: Any, k0: float, shift: float, label: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Train the shared PPO policy on episodes from ``k0``; paths ``[1, T + 1]`` of the initial and the learned
    policy from ``k0``."""
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.train import Trainer, train
    from abm_markets.scenarios.learning import _RunLabel, bands_settled

    trainer = Trainer(
        eco, cfg.train_config(init_shift=shift, k_spread=cfg.k_init_spread), seed=ctx.seed, fixed=cfg.fixed_sources(eco)
    )
    path = ev.make_eval_path(eco, cfg.eval_paths, cfg.eval_periods, ctx.generator(offset=100), k0=k0)
    before = _paths(eco, path, trainer.decide())[:1]  # the first economy of the path

    def periodic(tr: Trainer) -> dict[str, float]:
        return {"eval_capital_end": float(_paths(eco, path, tr.decide())[0, -50:].mean())}

    settled: list[dict[str, Any]] = []

    def stop(r: list[dict[str, Any]]) -> bool:
        if bands_settled(r, ("eval_capital_end",), cfg.converge_window, cfg.converge_tol):
            settled.append(r[-1])
            return True
        return False

    train(trainer, _RunLabel(ctx, label), evaluate=periodic, eval_every=cfg.eval_every, desc=label, stop=stop)
    after = _paths(eco, path, trainer.decide())[:1]
    extra = {
        "converged": bool(settled),
        "train_iterations": trainer.iteration_done,
        "train_wall_s": trainer.train_wall_s,
    }
    return before, after, extra


def _tabular_case(
    cfg: MacroSelectionConfig, ctx: RunContext, eco: Any, k0: float, shift: float
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """Tabular Q-learning households (``cfg.tabular_sessions`` sessions) from ``k0``, the initial greedy action the
    multiplier nearest ``exp(shift)``; paths ``[sessions, T + 1]`` of the initial and learned greedy policies."""
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.tabular_macro import (
        TabularMacroConfig,
        TabularMacroResult,
        greedy_decide,
        initial_table,
        run_tabular_households,
    )

    tc = TabularMacroConfig(
        k_lo=4.0, k_hi=14.0, k_bins=cfg.tabular_k_bins, sessions=cfg.tabular_sessions, periods=cfg.tabular_periods
    )
    mult = tc.log_multipliers
    tc = dataclasses.replace(tc, init_action=min(range(len(mult)), key=lambda i: abs(mult[i] - shift)))
    res = run_tabular_households(eco, tc, k0=k0, k_spread=cfg.k_init_spread, seed=ctx.seed, q_base=0.0)
    start = TabularMacroResult(q=initial_table(tc, 0.0, res.q.dtype), shares=res.shares, train_wall_s=0.0, periods=0)
    path = ev.make_eval_path(eco, tc.sessions, cfg.eval_periods, ctx.generator(offset=100), k0=k0)
    before = _paths(eco, path, greedy_decide(start, tc))
    after = _paths(eco, path, greedy_decide(res, tc))
    extra = {"converged": True, "train_iterations": tc.periods, "train_wall_s": res.train_wall_s}
    return before, after, extra


def _basin(k_end: float, k_mid: float) -> str:
    """The outer steady state whose side of the middle one (the perfect-foresight divide) a path ends on."""
    return "low" if k_end < k_mid else "high"


@register(
    "equilibrium-selection-macro",
    config=MacroSelectionConfig,
    description="Which steady state learning households select in the investment economy with a production "
    "externality, vs perfect foresight",
    expected_wall_s=1140.0,
    expected_wall_source="runs/esm/seed0, default settings, 2 threads, machine shared",
)
def run(cfg: MacroSelectionConfig, ctx: RunContext) -> dict[str, Any]:
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.solvers import externality as ex

    base = cfg.economy()
    reference: dict[str, Any] = {}
    for key, strategic in (("price_takers", False), ("strategic", True)):
        pf = ex.perfect_foresight(base, strategic, samples=8)
        reference[key] = pf
    strategic_ref = reference["strategic" if cfg.credit == "own" else "price_takers"]
    stable = {
        "low": strategic_ref.steady_states[0].capital,
        "high": strategic_ref.steady_states[-1].capital,
    }
    k_mid = strategic_ref.steady_states[1].capital
    rows: list[dict[str, Any]] = []
    paths: list[pl.DataFrame] = []
    case = 0
    for k0 in cfg.k0_list:
        for shift in cfg.init_shifts:
            econ = cfg.economy(k_init=k0, k_init_spread=cfg.k_init_spread)
            eco = InvestmentEconomy(econ, device=ctx.device)
            reach = strategic_ref.reachable(k0)
            for learner in cfg.learners:
                label = f"{learner} K0={k0:g} shift={shift:+g}"
                if learner == "ppo":
                    before, after, extra = _ppo_case(cfg, ctx, eco, k0, shift, label)
                else:
                    before, after, extra = _tabular_case(cfg, ctx, eco, k0, shift)
                k_before = before[:, -50:].mean(1)
                k_after = after[:, -50:].mean(1)
                sel_before = [_basin(float(k), k_mid) for k in k_before]
                sel_after = [_basin(float(k), k_mid) for k in k_after]
                n = len(sel_after)
                majority = max(("low", "high"), key=sel_after.count)
                near = [
                    abs(float(k) / stable[b] - 1.0) <= cfg.select_tol for k, b in zip(k_after, sel_after, strict=True)
                ]
                rows.append(
                    {
                        "learner": learner,
                        "k0": k0,
                        "init_shift": shift,
                        "sessions": n,
                        "capital_end_initial_policy": float(k_before.mean()),
                        "selected_initial_policy": max(("low", "high"), key=sel_before.count),
                        "capital_end_learned": float(k_after.mean()),
                        "selected": majority,
                        "share_low": sel_after.count("low") / n,
                        "share_high": sel_after.count("high") / n,
                        "share_at_steady_state": sum(near) / n,
                        # mean end capital of the sessions in the majority basin, over that basin's steady state
                        "capital_end_over_selected": float(
                            k_after[torch.tensor([b == majority for b in sel_after])].mean() / stable[majority]
                        ),
                        "perfect_foresight_reachable": "+".join(reach) if reach else "none",
                        "share_agrees_with_perfect_foresight": sum(x in reach for x in sel_after) / n,
                        **extra,
                    }
                )
                t = torch.arange(after.shape[1]).numpy()
                for policy, ks in (("initial", before), ("learned", after)):
                    paths.append(
                        pl.DataFrame(
                            {
                                "t": t,
                                "economy": 0,
                                "agent": -1,
                                "variable": "capital",
                                "value": ks[0].numpy(),
                                "policy": policy,
                                "case": label,
                            }
                        )
                    )
                case += 1
                ctx.flush_metrics()
    table = pl.DataFrame(rows)
    ctx.write_table("basins", table)
    ctx.write_log("steps", pl.concat(paths))
    _plot(ctx, table, pl.concat(paths), stable, reference)
    summary: dict[str, Any] = {
        "steady_states": [s.to_json() for s in reference["price_takers"].steady_states],
        "steady_states_strategic": [s.to_json() for s in reference["strategic"].steady_states],
        "perfect_foresight": reference["price_takers"].to_json(),
        "perfect_foresight_strategic": reference["strategic"].to_json(),
        "reference": "strategic" if cfg.credit == "own" else "price_takers",
        "cases": rows,
        "by_learner": {
            lrn: {
                "share_agrees_with_perfect_foresight": float(d["share_agrees_with_perfect_foresight"].mean()),
                "share_selected_high": float(d["share_high"].mean()),
                "share_selected_low": float(d["share_low"].mean()),
                "share_cases_selection_changed_by_learning": float(
                    (d["selected"] != d["selected_initial_policy"]).mean()
                ),
                "train_wall_s": float(d["train_wall_s"].sum()),
            }
            for lrn in cfg.learners
            for d in [table.filter(pl.col("learner") == lrn)]
        },
        "share_agrees_with_perfect_foresight": float(table["share_agrees_with_perfect_foresight"].mean()),
        "train_wall_s": float(table["train_wall_s"].sum()),
        "converged": bool(table["converged"].all()),
    }
    return summary


def _plot(ctx: RunContext, table: pl.DataFrame, paths: pl.DataFrame, stable: dict[str, float], ref: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    learners = table["learner"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(1, len(learners) + 1, figsize=(5.5 * (len(learners) + 1), 4.2))
    ss = ref["strategic"].steady_states
    mid = ss[1].capital if len(ss) == 3 else None
    for ax, lrn in zip(axes[:-1], learners, strict=True):
        d = paths.filter(pl.col("case").str.starts_with(f"{lrn} "))
        for i, case in enumerate(d["case"].unique(maintain_order=True)):
            for policy, ls in (("initial", ":"), ("learned", "-")):
                e = d.filter((pl.col("case") == case) & (pl.col("policy") == policy))
                ax.plot(
                    e["t"], e["value"], ls=ls, color=f"C{i % 10}", lw=1.1,
                    label=case.removeprefix(f"{lrn} ") if policy == "learned" else None,
                )  # fmt: skip
        for name, k in stable.items():
            ax.axhline(k, color="k", lw=0.8, ls="--")
            ax.text(0, k, f" {name} steady state", va="bottom", fontsize=8)
        if mid is not None:
            ax.axhline(mid, color="grey", lw=0.8, ls="-.")
            ax.text(0, mid, " middle (source)", va="bottom", fontsize=8, color="grey")
        ax.set_xlabel("period")
        ax.set_ylabel("mean capital per household")
        ax.set_title(f"{lrn}: paths from K_0, initial policy dotted, learned solid", fontsize=9)
        ax.legend(fontsize=6, ncol=2)
    ax = axes[-1]
    ylabels = []
    for row in table.iter_rows(named=True):
        key = f"{row['learner']}, shift {row['init_shift']:+g}"
        if key not in ylabels:
            ylabels.append(key)
        y = ylabels.index(key)
        ax.scatter(row["k0"], y + 0.15, marker="s", s=110, color=plt.cm.coolwarm(row["share_high"]), edgecolor="k")
        before = {"low": 0.0, "high": 1.0}.get(row["selected_initial_policy"], 0.5)
        ax.scatter(row["k0"], y - 0.15, marker="o", s=40, color=plt.cm.coolwarm(before), edgecolor="grey")
    if mid is not None:
        ax.axvline(mid, color="grey", ls="-.", label="perfect-foresight divide")
    ax.set_yticks(range(len(ylabels)), ylabels, fontsize=8)
    ax.set_ylim(-0.6, len(ylabels) - 0.4)
    ax.set_xlabel("initial capital K_0")
    ax.set_title("share selecting high (red) / low (blue): learned (square), initial policy (dot)", fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    ctx.save_figure("basins", fig)
    plt.close(fig)
