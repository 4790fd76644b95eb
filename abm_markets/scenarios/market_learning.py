"""Scenario ``market-learning`` (seed 000, sections 3.1 and 4.2): learning households and capital-good firms trading
through a market of the investment economy, held against the market's reference answers.

Households (one shared policy by default, independent learners: each is rewarded with its own utility) and
capital-good firms that are either competitive (the engine's rule ``p = phi q``) or learning (they post price and
capacity each period) trade under ``market = walrasian | posted | bilateral``. Either side may follow a rule
instead: ``households = "rule"`` spends the competitive steady-state share of output.

Every run reports the learned long run on a fixed evaluation path against the benchmarks of
:mod:`abm_markets.solvers.market_power`: ``capital_learned`` (mean K per household and good over the second half
of the path) against ``capital_competitive`` and ``capital_strategic`` (the buyer-side Nash steady state, what
households who learn their own price impact reach under Walrasian clearing), ``price_learned`` and
``markup_learned`` (price over the marginal cost ``phi q`` of what a firm produced) against ``markup_nash`` and
``markup_joint``, ``profit_gain`` (Calvano et al.'s Delta), and the exploitability of the learned profile:
a best response of household 0 (consumption-equivalent %) and of firm 0 (% of profit) trained against the frozen
others (:func:`abm_markets.learn.exploit.best_response_gain`). Training stops when the evaluated long-run capital
(and, with learning firms, the markup) of the last ``converge_window`` evaluations lies within a relative band
``converge_tol``, or at ``train_iterations`` / ``max_wall_s``.

``steps.parquet`` and ``markets.parquet`` (docs/logs.md) hold the first ``n_logged`` economies of the evaluation
path under the initial and the learned policies (``policy = initial | learned``): each household's capital,
consumption, utility and TFP, each firm's price, output and profit, each good's price, output and sales.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import polars as pl
import torch

from abm_markets.config import param
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext
from abm_markets.scenarios import register
from abm_markets.scenarios._logs import investment_logs, labelled, write_logs
from abm_markets.scenarios.learning import LearningScenarioConfig, bands_settled


@dataclasses.dataclass(frozen=True, kw_only=True)
class MarketLearningConfig(LearningScenarioConfig):
    """Learning households and firms in the investment economy's market formulation."""

    n_households: int = param(5, "Households N^h.", ge=1)
    n_capital_goods: int = param(1, "Capital goods N^c.", ge=1)
    firms_per_good: int = param(1, "Firms M per capital good.", ge=1)
    market: str = param(
        "walrasian", "Market mechanism: walrasian, posted or bilateral.", choices=("walrasian", "posted", "bilateral")
    )
    households: str = param(
        "learning",
        "Households: learning (PPO, own utility as reward) or rule (the competitive steady-state spending share).",
        choices=("learning", "rule"),
    )
    firms: str = param(
        "competitive",
        "Capital-good firms: competitive (rule p = phi q) or learning (post price and capacity each period).",
        choices=("competitive", "learning"),
    )
    household_obs: tuple[str, ...] = param(
        ("own_capital", "own_tfp", "agg_capital", "agg_tfp"), "Blocks every household observes (see the economy)."
    )
    information: tuple[str, ...] = param(
        (),
        "Information structure per group and subgroup, e.g. households[:50]=own_capital+own_tfp+agg_capital "
        "(overrides household_obs for the groups it names).",
    )
    network: str = param("complete", "Trading network of the bilateral market.", choices=("complete", "random", "ring"))
    sharing: str = param(
        "shared", "shared: one policy per group; per_agent: one per agent.", choices=("shared", "per_agent")
    )
    central_critic: bool = param(False, "Critics see the global state as well as the agent's own observation.")
    credit: str = param(
        "own",
        "Advantage of each learning agent: own (the derivative of its own discounted return in its own action "
        "through the replayed market, along the policy's mean path, continued credit_horizon periods: an agent "
        "that knows its effect on prices) or team (model-free PPO: the GAE advantage of its own reward).",
        choices=("own", "team"),
    )
    credit_horizon: int = param(128, "credit = own: periods the replay continues past each rollout.", ge=0)
    train_iterations: int = param(300, "Training iterations (at most).", ge=1)
    lr_schedule: str = param(
        "linear", "Learning rate: constant, or linear down to zero.", choices=("constant", "linear")
    )
    std_end: float | None = param(0.1, "PPO exploration noise at the end (log-linear schedule).", gt=0.0)
    init_log_std: float = param(-1.2, "Initial log standard deviation of the Gaussian policies.")
    policy_average: float = param(0.2, "Weight per iteration of the deployed policy's moving average.", ge=0.0, le=1.0)
    vf_coef: float = param(8.0, "PPO weight of the critic's loss.", gt=0.0)
    k_spread_common: float = param(0.3, "Spread of a common factor of all capital at resets.", ge=0.0, lt=1.0)
    update_streams: int = param(1600, "PPO update on at most this many (economy, agent) streams.", ge=1)
    max_wall_s: float = param(900.0, "Wall-time cap of training (seconds).", gt=0.0)
    converge_tol: float = param(
        0.002,
        "Convergence: (max - min) / mean of the evaluated long-run K (and markup) over the last converge_window "
        "evaluations.",
        gt=0.0,
    )
    eval_paths: int = param(16, "Economies of the fixed evaluation path.", ge=1)
    eval_periods: int = param(400, "Periods of the evaluation path.", ge=10)
    exploit_iterations: int = param(30, "Best-response training iterations per exploitability check (0 = skip).", ge=0)
    exploit_economies: int = param(32, "Economies of each best-response training.", ge=1)

    def validate(self) -> None:
        if self.households == "rule" and self.firms == "competitive":
            raise ConfigError(
                "market-learning with households = 'rule' and firms = 'competitive' has no learners; "
                "expected households = 'learning' or firms = 'learning'"
            )
        self.economy()

    def economy(self, **changes: Any) -> Any:  # type: ignore[override]
        base = {
            "formulation": "market",
            "n_households": self.n_households,
            "n_capital_goods": self.n_capital_goods,
            "firms_per_good": self.firms_per_good,
            "market": self.market,
            "firms": "decision" if self.firms == "learning" else "competitive",
            "household_obs": self.household_obs,
            "information": self.information,
            "network": self.network,
        }
        base.update(changes)
        return super().economy(**base)

    def groups(self) -> tuple[str, ...]:
        return tuple(
            g for g, on in (("households", self.households == "learning"), ("firms", self.firms == "learning")) if on
        )

    def fixed_sources(self, economy: Any) -> dict[str, Any]:
        """Sources of the groups that do not learn: rule households spend the competitive steady-state share."""
        from abm_markets.learn.sources import steady_state_share_source

        return {} if self.households == "learning" else {"households": steady_state_share_source(economy)}

    def _learning_agents(self) -> int:
        h = self.n_households if self.households == "learning" else 0
        return h + (self.n_capital_goods * self.firms_per_good if self.firms == "learning" else 0)

    def economies(self) -> int:
        """Training economies: ``train_economies / (learning agents)``, at least 64 (or train_economies)."""
        return max(min(64, self.train_economies), self.train_economies // max(1, self._learning_agents()))

    def train_config(self, **changes: Any) -> Any:
        agents = self._learning_agents()
        b = self.economies()
        base = {
            "groups": self.groups(),
            "n_economies": b,
            "init_log_std": self.init_log_std,
            "policy_average": self.policy_average,
            "k_spread_common": self.k_spread_common,
            "vf_coef": self.vf_coef,
            "sharing": self.sharing,
            "central_critic": self.central_critic,
            "credit": self.credit,
            "credit_path": "mean",
            "credit_horizon": self.credit_horizon if self.credit == "own" else 0,
            "update_streams": self.update_streams,
            "minibatch": max(self.train_minibatch, min(self.update_streams, b * max(1, agents)) * self.rollout_len),
        }
        base.update(changes)
        return super().train_config(**base)

    def exploit_config(self) -> Any:
        """Best responses: one agent, credited with the derivative of its own return (along the mean path, continued
        128 periods), whatever the learners' credit."""
        return self.train_config(
            n_economies=self.exploit_economies,
            iterations=self.exploit_iterations,
            init_log_std=-2.0,
            std_end=0.05,
            credit="own",
            credit_horizon=128,
            update_streams=None,
            minibatch=self.exploit_economies * self.rollout_len,
            max_wall_s=None,
        )

    def estimated_bytes(self) -> int:
        h, j, m = self.n_households, self.n_capital_goods, self.firms_per_good
        b = self.economies()
        rollout = b * self.rollout_len * (h * j + j * m) * 32 * 8
        evaluation = self.eval_paths * self.eval_periods * (h * j + j * m) * 16 * 8
        return 2 * (rollout + evaluation)


@torch.no_grad()
def long_run(economy: Any, path: Any, decide: Any) -> dict[str, float]:
    """Means over the second half of the evaluation path: capital per household and good, price, a firm's
    output, price over the marginal cost ``phi q`` of that output, profit per firm and period; and the
    households' discounted utility (per household, mean over the path's economies)."""
    cfg = economy.cfg
    state = path.state0
    half = path.periods // 2
    acc: dict[str, list[torch.Tensor]] = {k: [] for k in ("price", "produced", "markup", "profit")}
    utility = torch.zeros(economy.n_households, dtype=torch.float64)
    capital_i: list[torch.Tensor] = []
    for t in range(path.periods):
        state, out = economy.step(state, decide(state), noise=path.noise[t])
        utility = utility + cfg.beta**t * out.utility.double().mean(0)
        if t >= half:
            produced = out.produced.double()
            capital_i.append(state.capital.double().mean((0, 2)))
            acc["price"].append(out.firm_price.double().mean())
            acc["produced"].append(produced.mean())
            acc["markup"].append((out.firm_price.double() / (cfg.phi * produced).clamp_min(1e-12)).mean())
            acc["profit"].append(out.profit.double().mean())
    res: dict[str, Any] = {k: float(torch.stack(v).mean()) for k, v in acc.items()}
    by_household = torch.stack(capital_i).mean(0)
    res["capital"] = float(by_household.mean())
    res["welfare_per_household"] = float(utility.mean())
    res["welfare_by_household"] = utility.tolist()
    res["capital_by_household"] = by_household.tolist()
    return res


def subgroup_results(economy: Any, learned: dict[str, Any], capital_competitive: float) -> list[dict[str, Any]]:
    """Per subgroup of households of the information structure: its members, blocks, mean discounted utility per
    household and mean long-run capital over the competitive steady state."""
    group = economy.group("households")
    out = []
    for sub in economy.information.subgroups(group):
        idx = list(sub.members)
        out.append(
            {
                "households": f"{idx[0]}-{idx[-1]}" if idx == list(range(idx[0], idx[-1] + 1)) else str(idx),
                "observes": "+".join(sub.observes),
                "welfare_per_household": sum(learned["welfare_by_household"][i] for i in idx) / len(idx),
                "capital_over_competitive": sum(learned["capital_by_household"][i] for i in idx)
                / len(idx)
                / capital_competitive,
            }
        )
    return out


@register(
    "market-learning",
    config=MarketLearningConfig,
    description="Learning households and firms in a market vs competitive, buyer-side and market-power benchmarks",
    expected_wall_s=183.5,
    expected_wall_source="runs/ml-a-own/n_households=5-s0..2: 77-268 s, 1 thread, 2 runs at once",
)
def run(cfg: MarketLearningConfig, ctx: RunContext) -> dict[str, Any]:
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.exploit import best_response_gain
    from abm_markets.learn.train import Trainer, train
    from abm_markets.solvers.market_power import buyer_nash_set, market_benchmarks, profit_gain

    econ = cfg.economy()
    eco = InvestmentEconomy(econ, device=ctx.device)
    bm = market_benchmarks(econ, households=cfg.households)
    strategic_range = (bm.capital_strategic, bm.capital_strategic)
    if econ.market == "posted" and econ.firms == "competitive" and cfg.households == "learning":
        # posted prices: the buyer-side Nash set (immune to every spending deviation) through the engine's market;
        # capital_strategic is its midpoint (the set is 0.03% of K wide at N^h = 5)
        strategic_range = buyer_nash_set(econ, "persistent")
        k_mid = 0.5 * (strategic_range[0] + strategic_range[1])
        p_mid = econ.phi * econ.n_households * econ.delta * k_mid / econ.firms_per_good
        bm = dataclasses.replace(bm, capital_strategic=k_mid, price_strategic=p_mid)
    trainer = Trainer(eco, cfg.train_config(), seed=ctx.seed, fixed=cfg.fixed_sources(eco))
    path = ev.make_eval_path(eco, cfg.eval_paths, cfg.eval_periods, ctx.generator(offset=100))
    keys = ("eval_capital_ratio",) + (("eval_markup",) if cfg.firms == "learning" else ())

    def periodic(tr: Trainer) -> dict[str, float]:
        lr = long_run(eco, path, tr.decide())
        return {
            "eval_capital_ratio": lr["capital"] / bm.capital_competitive,
            "eval_capital_vs_strategic": lr["capital"] / bm.capital_strategic,
            "eval_price": lr["price"],
            "eval_markup": lr["markup"],
            "eval_profit": lr["profit"],
        }

    settled: list[dict[str, Any]] = []

    def stop(rows: list[dict[str, Any]]) -> bool:
        if bands_settled(rows, keys, cfg.converge_window, cfg.converge_tol):
            settled.append(rows[-1])
            return True
        return False

    before = long_run(eco, path, trainer.decide())
    logs = [labelled(investment_logs(eco, path, trainer.decide(), cfg.n_logged), policy="initial")]
    train(trainer, ctx, evaluate=periodic, eval_every=cfg.eval_every, desc="market-learning", stop=stop)
    learned = long_run(eco, path, trainer.decide())
    logs.append(labelled(investment_logs(eco, path, trainer.decide(), cfg.n_logged), policy="learned"))
    write_logs(ctx, logs)
    profile = trainer.decide()
    exploit: dict[str, dict[str, float]] = {}
    for group in trainer.learners if cfg.exploit_iterations else ():
        exploit[group] = best_response_gain(
            eco, profile, group=group, slot=0, cfg=cfg.exploit_config(), path=path, seed=ctx.seed + 1, start=trainer
        )
    nan = float("nan")
    summary: dict[str, Any] = {
        "capital_learned": learned["capital"],
        "capital_competitive": bm.capital_competitive,
        "capital_strategic": bm.capital_strategic,
        "capital_strategic_low": strategic_range[0],
        "capital_strategic_high": strategic_range[1],
        "capital_initial": before["capital"],
        "capital_learned_over_competitive": learned["capital"] / bm.capital_competitive,
        "capital_learned_over_strategic": learned["capital"] / bm.capital_strategic,
        "price_learned": learned["price"],
        "price_competitive": bm.price_competitive,
        "price_strategic": bm.price_strategic,
        "markup_learned": learned["markup"],
        "markup_nash": bm.markup_nash,
        "markup_joint": bm.markup_joint,
        "profit_learned": learned["profit"],
        "profit_nash": bm.profit_nash,
        "profit_joint": bm.profit_joint,
        "profit_gain": profit_gain(learned["profit"], bm.profit_nash, bm.profit_joint),
        **_against_strategic_buyers(econ, cfg, learned["profit"]),
        "welfare_per_household": learned["welfare_per_household"],
        "subgroups": subgroup_results(eco, learned, bm.capital_competitive),
        "exploitability_households_ce_pct": exploit["households"]["exploitability"] if "households" in exploit else nan,
        "exploitability_firms_pct": exploit["firms"]["exploitability"] if "firms" in exploit else nan,
        "best_response_gain_households_ce_pct": exploit["households"]["gain"] if "households" in exploit else nan,
        "best_response_gain_firms_pct": exploit["firms"]["gain"] if "firms" in exploit else nan,
        "train_wall_s": trainer.train_wall_s,
        "train_iterations": trainer.iteration_done,
        "train_env_steps": trainer.env_steps,
        "train_agent_steps": trainer.agent_steps,
        "converged": bool(settled),
        "market": cfg.market,
        "n_households": cfg.n_households,
        "n_capital_goods": cfg.n_capital_goods,
        "firms_per_good": cfg.firms_per_good,
        "households": cfg.households,
        "firms": cfg.firms,
    }
    scalar = ("capital", "price", "produced", "markup", "profit", "welfare_per_household")
    ctx.write_table(
        "long_run",
        pl.DataFrame(
            [{"policy": p, **{k: r[k] for k in scalar}} for p, r in (("initial", before), ("learned", learned))]
        ),
    )
    _plots(ctx, ctx.metrics, bm)
    return summary


def learned_market(run_dir: str | Any, *, flag: str = "run directory", **changes: Any) -> tuple[Any, dict[str, Any]]:
    """The economy of a ``market-learning`` run directory and its learned policies as batched sources
    ``{action key: state -> actions}`` (the deployed, averaged actors of the run's last checkpoint): what
    :class:`~abm_markets.model.InvestmentModel` takes as ``policies`` to run the learned market in Mesa.
    ``changes`` override the run's settings first (e.g. another ``information`` with the same observation layout).

    Raises:
        UserError: Not a run directory of this scenario, or no readable checkpoint (one line).
    """
    from pathlib import Path

    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.errors import UserError
    from abm_markets.learn.sources import PolicySource
    from abm_markets.learn.train import TrainConfig, Trainer
    from abm_markets.runner import read_run_dir
    from abm_markets.runs import latest_checkpoint_path, load_checkpoint

    out = Path(run_dir)
    saved = read_run_dir(out, flag)
    if saved.scenario != "market-learning":
        raise UserError(f"{str(out)!r} is a {saved.scenario!r} run; expected a market-learning run directory")
    cfg = MarketLearningConfig.from_dict({**saved.settings, **changes})
    path = latest_checkpoint_path(out)
    if path is None:
        raise UserError(f"{str(out)!r} has no checkpoint; expected a finished or checkpointed market-learning run")
    ckpt = load_checkpoint(path, out)
    econ = cfg.economy()
    eco = InvestmentEconomy(econ)
    trainer = Trainer(eco, TrainConfig.from_dict(ckpt["train_config"]), fixed=cfg.fixed_sources(eco))
    trainer.load_state_dict(ckpt)
    if trainer.averaged is not None:
        trainer.load_actor_parameters(trainer.averaged)
    return econ, {lrn.group.engine_key: PolicySource(lrn) for lrn in trainer.learners.values()}


def _plots(ctx: RunContext, metrics: list[dict[str, Any]], bm: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in metrics if m.get("eval_capital_ratio") is not None]
    if not rows:
        return
    x = [m["iteration"] for m in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(x, [m["eval_capital_ratio"] for m in rows], marker=".", label="learned long-run K / K_competitive")
    axes[0].axhline(1.0, ls="--", color="grey", label="competitive steady state")
    if math.isfinite(bm.capital_strategic):
        axes[0].axhline(
            bm.capital_strategic / bm.capital_competitive, ls=":", color="C3", label="buyer-side Nash steady state"
        )
    axes[0].set_xlabel("iteration")
    axes[0].set_ylabel("K / K_competitive")
    axes[0].legend(fontsize=8)
    axes[1].plot(x, [m["eval_markup"] for m in rows], marker=".", label="learned markup (price / marginal cost)")
    axes[1].axhline(1.0, ls="--", color="grey", label="competitive")
    axes[1].axhline(bm.markup_nash, ls=":", color="C3", label="firms' Nash")
    axes[1].axhline(bm.markup_joint, ls="-.", color="C2", label="joint profit")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("iteration")
    axes[1].set_ylabel("markup")
    axes[1].legend(fontsize=8)
    ctx.save_figure("market_learning", fig)


def _against_strategic_buyers(econ: Any, cfg: Any, profit: float) -> dict[str, float]:
    """Firms' benchmarks against strategic (learning) households, for runs where both learn (NaN otherwise, and
    for mechanisms where they are not derived): docs/markets_learning.md, "Against strategic buyers"."""
    from abm_markets.solvers.market_power import profit_gain, strategic_buyer_benchmarks

    nan = float("nan")
    keys = ("capital_nash", "capital_joint", "profit_nash", "profit_joint")
    if not (cfg.households == "learning" and cfg.firms == "learning"):
        return {f"{k}_strategic_buyers": nan for k in (*keys, "profit_gain")} | {"buyer_factor_fixed_capacity": nan}
    sb = strategic_buyer_benchmarks(econ)
    out = {f"{k}_strategic_buyers": getattr(sb, k) for k in keys}
    out["profit_gain_strategic_buyers"] = profit_gain(profit, sb.profit_nash, sb.profit_joint)
    out["buyer_factor_fixed_capacity"] = sb.buyer_factor
    return out
