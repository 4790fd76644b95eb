"""Reference answers of the investment economy's market formulation (seed 000, section 3.1): the competitive
steady state, the buyer-side Nash steady state and the capital-good firms' market-power benchmarks.

Notation (deterministic steady state, ``Z = 1``, symmetric households and goods): ``K`` capital per household and
good, ``Q = N^h delta K`` units of each good sold per period, ``q = Q / M`` per firm, ``c = beta / (1 - beta (1 -
delta))`` and ``MPK = (alpha / N^c) K^(alpha - 1)`` the marginal product of one good's capital. Derivations in
``docs/markets_learning.md``.

* **Competitive** (price-taking households, rule firms ``p = phi q``): ``p = c MPK`` and ``p = phi N^h delta K / M``,
  so ``K^(2 - alpha) = c alpha M / (N^c N^h phi delta)``.
* **Buyer-side Nash** (Walrasian clearing of spending orders, ``p = sqrt(phi X / M)`` with ``X`` the good's
  spending): a household's extra spending raises the price it pays, ``dI_i / dx_i = (1 - x_i / (2 X)) / p``; at a
  symmetric steady state its marginal cost of a unit is ``p / (1 - 1 / (2 N^h))``, so ``K`` is the competitive one
  times ``(1 - 1 / (2 N^h))^(1 / (2 - alpha))``. Each household takes the others' spending as given (open loop).
* **Firms' Nash** (the ``M`` firms of a good compete in quantities, other goods' quantities given, households at
  their steady-state demand ``p_j = c (alpha / N^c) Y / K_j``): own-quantity elasticity of the inverse demand
  ``-(1 - alpha / N^c)``, so the markup over marginal cost ``phi q`` is ``1 / (1 - (1 - alpha / N^c) / M)``.
* **Joint profit** (all firms of all goods act as one): markup ``1 / alpha``. Goods are complements (Cobb-Douglas),
  so with ``N^c > 1`` goods of one firm each the Nash markup ``N^c / alpha`` is *above* the joint one.

* **Against rule households** (``households = "rule"``: every household spends the competitive steady-state share
  ``s_j = c delta alpha / N^c`` of its output on each good, whatever the price), Walrasian clearing of spending
  orders: a good's revenue is its spending ``X_j = N^h s_j Y``, shared by capacity, and a firm's capacity only
  matters through the capital it leaves the households and so the output they spend from tomorrow. Open-loop
  steady state of the ``M`` firms of a good (each takes the others' paths as given): ``phi q = p (M - 1) / M +
  c s_j dY/dK_j / M``, a markup ``M / (M - 1 + s_j)`` (``1 / s_j`` for one firm, ~5.0 at the default calibration
  against the static monopoly's 3.3); joint profit: ``1 / (c delta alpha)`` whatever ``M``.

At a markup ``mu`` on marginal cost, ``K = K_comp mu^(-1 / (2 - alpha))`` (for both households' behaviours).
Tests check each against a brute-force numerical search (one-period deviations through the engine's Walrasian
market, best-response iteration and direct maximisation of profit on numerically solved demand).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from abm_markets.engine.investment_groups import steady_state_spending_share
from abm_markets.errors import ConfigError

__all__ = [
    "MarketBenchmarks",
    "buyer_price_factor",
    "capital_at_markup",
    "firm_markups",
    "market_benchmarks",
    "profit_gain",
]


def _c(cfg: Any) -> float:
    return cfg.beta / (1.0 - cfg.beta * (1.0 - cfg.delta))


def _check(cfg: Any) -> None:
    if getattr(cfg, "formulation", "market") != "market":
        raise ConfigError(
            f"market benchmarks need formulation = 'market' (got {cfg.formulation!r}); "
            "the planner formulation has no market"
        )


def buyer_price_factor(cfg: Any, market: str | None = None) -> float:
    """``p / (marginal cost of a unit to one household)`` at a symmetric steady state: ``1 - 1 / (2 N^h)`` under
    Walrasian clearing of spending orders, and in bilateral trade with one seller per good at marginal-cost
    pricing (``bargaining_power = 1``), where every buyer meets the good's one seller whatever the network and pays
    the same price ``sqrt(phi X)``; NaN where no buyer-side benchmark is derived here (posted prices, bilateral
    trade with several sellers per good or other bargaining power)."""
    market = market or cfg.market
    one_seller = market == "bilateral" and cfg.firms_per_good == 1 and getattr(cfg, "bargaining_power", 1.0) == 1.0
    if market == "walrasian" or one_seller:
        return 1.0 - 1.0 / (2.0 * cfg.n_households)
    return float("nan")


def capital_at_markup(cfg: Any, markup: float, buyer_factor: float = 1.0) -> float:
    """Steady-state capital per household and good when firms price at ``markup`` times marginal cost and each
    household's marginal cost of a unit is ``p / buyer_factor``:
    ``K^(2 - alpha) = buyer_factor c alpha M / (markup N^c N^h phi delta)``."""
    _check(cfg)
    num = buyer_factor * _c(cfg) * cfg.alpha * cfg.firms_per_good
    den = markup * cfg.n_capital_goods * cfg.n_households * cfg.phi * cfg.delta
    return float((num / den) ** (1.0 / (2.0 - cfg.alpha)))


def firm_markups(cfg: Any, households: str = "learning", market: str | None = None) -> tuple[float, float]:
    """``(markup_nash, markup_joint)`` of the capital-good firms at the steady state.

    ``households = "learning"``: the static benchmarks (households at their steady-state demand, any mechanism).
    ``households = "rule"``: the dynamic steady states against households who spend a fixed share of output,
    derived for Walrasian clearing of spending orders (NaN for posted prices and bilateral trade).
    """
    _check(cfg)
    a, nc, m = cfg.alpha, cfg.n_capital_goods, cfg.firms_per_good
    if households == "learning":
        return 1.0 / (1.0 - (1.0 - a / nc) / m), 1.0 / a
    if households != "rule":
        raise ConfigError(f"households = {households!r}; expected 'learning' or 'rule'")
    if (market or cfg.market) != "walrasian":
        return float("nan"), float("nan")
    s_total = steady_state_spending_share(cfg)  # what the rule households spend on capital goods: c delta alpha
    return m / (m - 1.0 + s_total / nc), 1.0 / s_total


@dataclasses.dataclass(frozen=True)
class MarketBenchmarks:
    """Per household and good ``capital_*``; per good ``price_*``; per firm and period ``quantity_*`` and
    ``profit_*``; ``markup_*`` = price / marginal cost."""

    capital_competitive: float
    price_competitive: float
    capital_strategic: float
    price_strategic: float
    markup_nash: float
    markup_joint: float
    capital_nash: float
    capital_joint: float
    price_nash: float
    price_joint: float
    quantity_competitive: float
    quantity_nash: float
    quantity_joint: float
    profit_competitive: float
    profit_nash: float
    profit_joint: float

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def market_benchmarks(cfg: Any, market: str | None = None, households: str = "learning") -> MarketBenchmarks:
    """The steady-state benchmarks of the market formulation for ``cfg`` (an ``InvestmentConfig``); with
    ``households = "rule"`` the firms' benchmarks are those against rule households (:func:`firm_markups`) and
    there is no buyer-side benchmark (``capital_strategic`` NaN)."""
    _check(cfg)
    m, nh = cfg.firms_per_good, cfg.n_households

    def at(markup: float, factor: float = 1.0) -> tuple[float, float, float, float]:
        k = capital_at_markup(cfg, markup, factor)
        q = nh * cfg.delta * k / m
        p = markup * cfg.phi * q
        return k, p, q, p * q - 0.5 * cfg.phi * q * q

    mu_nash, mu_joint = firm_markups(cfg, households, market)
    k_c, p_c, q_c, pi_c = at(1.0)
    factor = buyer_price_factor(cfg, market) if households == "learning" else float("nan")
    k_s, p_s = (at(1.0, factor)[:2]) if math.isfinite(factor) else (float("nan"), float("nan"))
    k_n, p_n, q_n, pi_n = at(mu_nash)
    k_j, p_j, q_j, pi_j = at(mu_joint)
    return MarketBenchmarks(
        capital_competitive=k_c,
        price_competitive=p_c,
        capital_strategic=k_s,
        price_strategic=p_s,
        markup_nash=mu_nash,
        markup_joint=mu_joint,
        capital_nash=k_n,
        capital_joint=k_j,
        price_nash=p_n,
        price_joint=p_j,
        quantity_competitive=q_c,
        quantity_nash=q_n,
        quantity_joint=q_j,
        profit_competitive=pi_c,
        profit_nash=pi_n,
        profit_joint=pi_j,
    )


def profit_gain(profit: float, nash: float, joint: float) -> float:
    """Calvano et al.'s ``Delta = (pi - pi_nash) / (pi_joint - pi_nash)``; NaN where the two benchmarks coincide
    (one firm of one good: the Nash and joint markups are both ``1 / alpha``)."""
    if not math.isfinite(joint - nash) or abs(joint - nash) <= 1e-12 * max(abs(joint), 1.0):
        return float("nan")
    return (profit - nash) / (joint - nash)
