"""Scenario ``investment-markets``: the market formulation under each market mechanism.

The same economy (market formulation, ``N^h`` households, ``N^c`` goods, ``M``
competitive firms per good) is simulated under the Walrasian, posted-price and
bilateral-network mechanisms with the same shocks and the same household rule
(the deterministic steady-state spending share), starting away from the steady
state. The summary compares long-run capital and prices with the numerical
steady state and reports what each mechanism adds: unsold output (posted
price), the spread of prices across sellers (bilateral), firm profits.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl
import torch

from abm_markets.config import param
from abm_markets.engine.config import InvestmentConfig
from abm_markets.errors import ConfigError
from abm_markets.runs import RunContext, long_frame
from abm_markets.scenarios import register
from abm_markets.scenarios.investment import economy_config


@dataclasses.dataclass(frozen=True, kw_only=True)
class MarketsScenarioConfig(InvestmentConfig):
    """Market-comparison settings (the economy's keys plus simulation settings)."""

    formulation: str = param("market", "Must be market for this scenario.", choices=("market",))
    n_households: int = param(20, "Number of households N^h.", ge=1)
    firms_per_good: int = param(3, "Competitive capital-good firms per good.", ge=1)
    network: str = param("random", "Trading network of the bilateral market.", choices=("complete", "random", "ring"))
    k_init: float | None = param(None, "Initial capital; None = 0.6 x steady state.", gt=0.0)
    k_init_spread: float = param(0.3, "Initial capital drawn in k_init * [1 - spread, 1 + spread].", ge=0.0, lt=1.0)
    mechanisms: tuple[str, ...] = param(("walrasian", "posted", "bilateral"), "Mechanisms compared.")
    n_economies: int = param(64, "Economies simulated per mechanism (batch B).", ge=1)
    periods: int = param(300, "Periods simulated.", ge=2)
    burn_in: int = param(150, "Periods dropped before long-run averages.", ge=0)
    n_logged: int = param(4, "Economies written to the long-format logs.", ge=1)

    def validate(self) -> None:
        super().validate()
        for m in self.mechanisms:
            if m not in ("walrasian", "posted", "bilateral"):
                raise ConfigError(
                    f"MarketsScenarioConfig.mechanisms contains {m!r}; expected walrasian, posted, bilateral"
                )
        if self.firms != "competitive":
            raise ConfigError(
                "investment-markets uses rule (competitive) firms; firms = 'decision' needs learning firms"
            )
        if self.burn_in >= self.periods:
            raise ConfigError(f"burn_in = {self.burn_in} must be below periods = {self.periods}")

    def estimated_bytes(self) -> int:
        """Per mechanism: B economies x N^h x N^c x M firms, about 40 float64 working arrays per period, plus
        seven recorded series [T, B] per mechanism and the steady state."""
        b, t = self.n_economies, self.periods
        live = b * self.n_households * self.n_capital_goods * self.firms_per_good * 8 * 40
        series = len(self.mechanisms) * 7 * t * b * 8 * 2
        return live + series + super().estimated_bytes()


@register(
    "investment-markets",
    config=MarketsScenarioConfig,
    description="Market formulation under Walrasian, posted-price and bilateral-network trade, same shocks and rule",
    expected_wall_s=4.1,
    expected_wall_source="one default run, 1 thread, 2026-11-29",
)
def run(cfg: MarketsScenarioConfig, ctx: RunContext) -> dict[str, Any]:
    from abm_markets.agents.rules import steady_state_share
    from abm_markets.engine.investment import InvestmentEconomy, steady_state_capital
    from abm_markets.solvers.investment import steady_state

    base = economy_config(cfg)
    ss = steady_state(dataclasses.replace(base, firms_per_good=1))
    h, j = cfg.n_households, cfg.n_capital_goods
    results: dict[str, Any] = {}
    steps_frames, market_frames = [], []
    with ctx.progress(len(cfg.mechanisms), "mechanisms", unit="mech") as bar:
        for mech in cfg.mechanisms:
            econ = dataclasses.replace(base, market=mech)
            if cfg.k_init is None:
                econ = dataclasses.replace(econ, k_init=0.6 * steady_state_capital(econ))
            eco = InvestmentEconomy(econ, device=ctx.device)
            share = steady_state_share(econ)
            gen = ctx.generator(offset=11)  # same shocks for every mechanism
            state = eco.initial_state(cfg.n_economies, gen)
            action = torch.full((cfg.n_economies, h, j), share, dtype=eco.dtype, device=ctx.device)
            rec: dict[str, list[torch.Tensor]] = {
                k: [] for k in ("capital", "consumption", "price", "unsold", "profit", "price_spread", "spent_share")
            }
            n_log = min(cfg.n_logged, cfg.n_economies)
            by_household: dict[str, list[torch.Tensor]] = {"capital": [], "consumption": []}  # [B_log, H] each
            for _ in range(cfg.periods):
                k_now = state.capital
                state, out = eco.step(state, {"households": action}, gen)
                by_household["capital"].append(k_now[:n_log].mean(2))
                by_household["consumption"].append(out.consumption[:n_log])
                rec["capital"].append(k_now.mean((1, 2)))
                rec["consumption"].append(out.consumption.mean(1))
                rec["price"].append(out.price.mean(1))
                rec["unsold"].append((out.produced - out.sold).sum((1, 2)) / out.produced.sum((1, 2)).clamp_min(1e-300))
                rec["profit"].append(out.profit.sum((1, 2)))
                rec["price_spread"].append(
                    (out.firm_price.amax(-1) - out.firm_price.amin(-1)).mean(1) / out.price.mean(1)
                )
                rec["spent_share"].append(out.spending.sum((1, 2)) / (share * j * out.output.sum(1)))
            series = {k: torch.stack(v) for k, v in rec.items()}  # [T, B]
            erg = slice(cfg.burn_in, cfg.periods)
            p_ss = cfg.phi * h * cfg.delta * eco.k_ss / eco.n_firms  # analytic, M firms per good
            results[mech] = {
                "capital_mean": float(series["capital"][erg].mean()),
                "capital_gap_to_steady_state": float(series["capital"][erg].mean() / eco.k_ss - 1.0),
                "price_mean": float(series["price"][erg].mean()),
                "price_gap_to_steady_state": float(series["price"][erg].mean() / p_ss - 1.0),
                "consumption_mean": float(series["consumption"][erg].mean()),
                "unsold_share_mean": float(series["unsold"][erg].mean()),
                "seller_price_spread_mean": float(series["price_spread"][erg].mean()),
                "firm_profit_mean": float(series["profit"][erg].mean()),
                "spending_realised_share": float(series["spent_share"][erg].mean()),
                "periods_to_90pct_of_steady_state": _periods_to(series["capital"].mean(1), 0.9 * eco.k_ss),
            }
            # per household: capital per good (mean over its goods) at the start of t, consumption in t
            hh = {k: torch.stack(v).double().cpu().numpy() for k, v in by_household.items()}  # [T, B_log, H]
            t_h, e_h, a_h = np.meshgrid(np.arange(cfg.periods), np.arange(n_log), np.arange(h), indexing="ij")
            steps_frames.append(
                long_frame(
                    {"t": t_h.ravel(), "economy": e_h.ravel(), "agent": a_h.ravel()}
                    | {k: v.reshape(-1) for k, v in hh.items()},
                    ("t", "economy", "agent"),
                ).with_columns(pl.lit(mech).alias("mechanism"))
            )
            t_idx = np.repeat(np.arange(cfg.periods), n_log)
            e_idx = np.tile(np.arange(n_log), cfg.periods)
            market_frames.append(
                long_frame(
                    {
                        "t": t_idx,
                        "economy": e_idx,
                        "good": np.full_like(t_idx, -1),
                        "price": series["price"][:, :n_log].reshape(-1),
                        "unsold_share": series["unsold"][:, :n_log].reshape(-1),
                        "seller_price_spread": series["price_spread"][:, :n_log].reshape(-1),
                        "firm_profit": series["profit"][:, :n_log].reshape(-1),
                    },
                    ("t", "economy", "good"),
                ).with_columns(pl.lit(mech).alias("mechanism"))
            )
            ctx.log_metrics(mechanism=mech, env_steps=cfg.n_economies * cfg.periods, **results[mech])
            bar.update(1)
    steps = pl.concat(steps_frames)
    markets = pl.concat(market_frames)
    ctx.write_log("steps", steps)
    ctx.write_log("markets", markets)
    _plots(ctx, steps, markets, k_ss=eco.k_ss)
    return {
        "steady_state_one_firm_per_good": ss.to_json(),
        "steady_state_capital": eco.k_ss,
        "mechanisms": results,
        "n_households": h,
        "n_capital_goods": j,
        "firms_per_good": cfg.firms_per_good,
    }


def _periods_to(path: torch.Tensor, level: float) -> int | None:
    hit = torch.nonzero(path >= level)
    return int(hit[0]) if hit.numel() else None


def _plots(ctx: RunContext, steps: pl.DataFrame, markets: pl.DataFrame, *, k_ss: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    cap = steps.filter(pl.col("variable") == "capital").group_by("mechanism", "t").agg(pl.col("value").mean()).sort("t")
    for mech in cap["mechanism"].unique().sort().to_list():
        sub = cap.filter(pl.col("mechanism") == mech)
        axes[0].plot(sub["t"], sub["value"], label=mech)
    axes[0].axhline(k_ss, ls="--", color="grey", label="steady state")
    axes[0].set_title("mean capital")
    for ax, var, title in ((axes[1], "price", "mean price"), (axes[2], "unsold_share", "unsold share of output")):
        d = markets.filter(pl.col("variable") == var).group_by("mechanism", "t").agg(pl.col("value").mean()).sort("t")
        for mech in d["mechanism"].unique().sort().to_list():
            sub = d.filter(pl.col("mechanism") == mech)
            ax.plot(sub["t"], sub["value"], label=mech)
        ax.set_title(title)
    for ax in axes:
        ax.set_xlabel("period")
        ax.legend(fontsize=8)
    ctx.save_figure("mechanisms", fig)
