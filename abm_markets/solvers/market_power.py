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
* **Buyer-side Nash set under posted prices** (rule firms post ``p_(t+1) = sqrt(phi X_t / M)``; an order above
  the posted capacity is rationed if its buyer arrives last): the household's marginal cost is kinked, and the
  symmetric steady states where neither ``+e`` nor ``-e`` pays form an interval, derived in
  :func:`posted_buyer_factors` and computed through the engine's posted market by :func:`buyer_nash_set`
  (one-period or persistent deviations of household 0, :func:`buyer_deviation_gains`).
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

* **Against strategic buyers** (learning households who take their own price impact into account, Walrasian
  clearing, firms setting quantities): a household's marginal cost of a unit is ``p / (1 - 1 / N^h)``, so the
  inverse demand is scaled by ``1 - 1 / N^h``: the markups are unchanged and ``K`` falls by ``(1 - 1 /
  N^h)^(1 / (2 - alpha))``; with one household no steady state with trade exists
  (:func:`strategic_buyer_benchmarks`).

At a markup ``mu`` on marginal cost, ``K = K_comp mu^(-1 / (2 - alpha))`` (for both households' behaviours).
Tests check each against a brute-force numerical search (one-period deviations through the engine's Walrasian
market, best-response iteration and direct maximisation of profit on numerically solved demand).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import torch

from abm_markets.engine.investment_groups import steady_state_spending_share
from abm_markets.errors import ConfigError

__all__ = [
    "MarketBenchmarks",
    "buyer_deviation_gains",
    "buyer_nash_set",
    "buyer_price_factor",
    "capacity_buyer_factor",
    "capital_at_markup",
    "firm_markups",
    "market_benchmarks",
    "posted_buyer_factors",
    "profit_gain",
    "strategic_buyer_benchmarks",
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


def capacity_buyer_factor(cfg: Any, market: str | None = None) -> float:
    """``p / (marginal cost of a unit to one household)`` when each good's quantity is fixed within the period, as
    when learning firms set capacity: under Walrasian clearing of spending orders a household gets ``I_i = x_i Q /
    X`` units, so ``dI_i / dx_i = (1 - x_i / X) / p`` and the factor is ``1 - 1 / N^h`` at a symmetric state (twice
    the impact of the competitive-supply case, where supply rises with spending). One household alone gets the
    whole quantity whatever it spends: the factor is 0 and no steady state with trade exists. NaN for posted
    prices and bilateral trade, where the firm names the price and a household's order moves it only through the
    firm's policy."""
    if (market or cfg.market) != "walrasian":
        return float("nan")
    return 1.0 - 1.0 / cfg.n_households


@dataclasses.dataclass(frozen=True)
class StrategicBuyerBenchmarks:
    """Firms' benchmarks against households who take their own price impact into account (Walrasian clearing,
    firms setting quantities): the households' inverse demand is ``buyer_factor`` times the price-taking one, which
    leaves its elasticity and so the Nash and joint markups unchanged and lowers capital by
    ``buyer_factor^(1 / (2 - alpha))``. Per household and good ``capital_*``, per good ``price_*``, per firm and
    period ``profit_*``."""

    buyer_factor: float
    markup_nash: float
    markup_joint: float
    capital_nash: float
    capital_joint: float
    price_nash: float
    price_joint: float
    profit_nash: float
    profit_joint: float

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def strategic_buyer_benchmarks(cfg: Any, market: str | None = None) -> StrategicBuyerBenchmarks:
    """The static Nash among firms (quantities) and the joint-profit maximum when the buyers are strategic
    households (:func:`capacity_buyer_factor`); all NaN where that factor is not derived, capital and profits 0
    at ``N^h = 1`` (no trade)."""
    _check(cfg)
    factor = capacity_buyer_factor(cfg, market)
    mu_nash, mu_joint = firm_markups(cfg, "learning", market)
    out: dict[str, float] = {"buyer_factor": factor, "markup_nash": mu_nash, "markup_joint": mu_joint}
    for name, mu in (("nash", mu_nash), ("joint", mu_joint)):
        if math.isfinite(factor):
            k = capital_at_markup(cfg, mu, factor)
            q = cfg.n_households * cfg.delta * k / cfg.firms_per_good
            p = mu * cfg.phi * q
            out |= {f"capital_{name}": k, f"price_{name}": p, f"profit_{name}": p * q - 0.5 * cfg.phi * q * q}
        else:
            out |= {f"capital_{name}": float("nan"), f"price_{name}": float("nan"), f"profit_{name}": float("nan")}
    return StrategicBuyerBenchmarks(**out)


def profit_gain(profit: float, nash: float, joint: float) -> float:
    """Calvano et al.'s ``Delta = (pi - pi_nash) / (pi_joint - pi_nash)``; NaN where the two benchmarks coincide
    (one firm of one good: the Nash and joint markups are both ``1 / alpha``)."""
    if not math.isfinite(joint - nash) or abs(joint - nash) <= 1e-12 * max(abs(joint), 1.0):
        return float("nan")
    return (profit - nash) / (joint - nash)


DEVIATIONS = ("one-period", "persistent")


def posted_buyer_factors(cfg: Any, deviation: str = "persistent", rationing: bool = True) -> tuple[float, float]:
    """Derived bounds ``(f_low, f_high)`` of ``p / (marginal cost of a unit to one household)`` on the buyer-side
    Nash set under posted prices with the rule firms (first order in the deviation, open loop: the others'
    spending amounts given); ``K = K_competitive f^(1 / (2 - alpha))``, so ``f_low`` gives the low end in K.

    With ``N = N^h``, a household's extra spending ``e`` in period t buys ``e / p`` more units unless it arrives
    last (probability ``1 / N``), when the posted capacity has run out and it keeps ``e`` as consumption; either
    way it raises tomorrow's posted price by ``p e / (2 X)`` (X = the good's spending), which costs it
    ``e / (2 N p)`` units of tomorrow's steady-state spending. Spending ``e`` less today lowers tomorrow's
    price and capacity, so tomorrow a buyer is short of ``e / p`` units: the household itself with probability
    ``1 / N``. With ``a = lambda / p - u'`` (lambda = ``c u' MPK``, the value of a unit of capital) and
    ``b = beta lambda / p``, a deviation path ``d_s`` gains ``sum_s beta^s [(a - b / (2N)) d_s - (a / N)
    max(d_s - d_(s-1), 0)]``. Hence:

    * ``deviation = "one-period"`` (``+e`` or ``-e`` in one period, then back): ``1 - beta / (2 (N - 1)) <= f <=
      1 - beta / (2 (N + beta))`` (no lower bound, ``f_low = -inf``, for one household: it always arrives last);
    * ``deviation = "persistent"`` (``+e`` or ``-e`` from one period on, for good): ``1 - beta / (2 (N - 1 +
      beta)) <= f <= 1 - beta / (2 N)``; every other path gains less than one of these two, so this is the set
      immune to all deviations;
    * ``rationing = False`` (the household is served first): the next-period price effect alone,
      ``f = 1 - beta / (2 N)`` at both ends.
    """
    if deviation not in DEVIATIONS:
        raise ConfigError(f"deviation = {deviation!r}; expected one of {DEVIATIONS}")
    n, b = float(cfg.n_households), cfg.beta
    if not rationing:
        f = 1.0 - b / (2.0 * n)
        return f, f
    if deviation == "one-period":
        low = 1.0 - b / (2.0 * (n - 1.0)) if n > 1 else -math.inf
        return low, 1.0 - b / (2.0 * (n + b))
    return 1.0 - b / (2.0 * (n - 1.0 + b)), 1.0 - b / (2.0 * n)


def _deviation_economy(cfg: Any) -> Any:
    from abm_markets.engine.investment import InvestmentEconomy

    _check(cfg)
    if cfg.firms != "competitive":
        raise ConfigError(f"buyer-side deviations need firms = 'competitive' (the rule firms); got {cfg.firms!r}")
    if cfg.externality_high != 1.0:
        raise ConfigError(f"buyer-side deviations need externality_high = 1; got {cfg.externality_high}")
    det = dataclasses.replace(cfg, tfp_values=(1.0,), agg_tfp_values=(1.0,), k_init=None, k_init_spread=0.0)
    return InvestmentEconomy(det)


def buyer_deviation_gains(
    cfg: Any,
    capital: Any,
    sign: Any,
    *,
    persistent: Any = False,
    arrival: str | int = "strata",
    rel_step: float = 1e-5,
    horizon: int = 800,
    seed: int = 0,
) -> np.ndarray:
    """Household 0's discounted utility gain from a spending deviation, through the engine's market and rule firms.

    Every economy starts at the symmetric steady state ``K`` (all households and goods, ``Z = 1``, the rule firms'
    demand signal at its steady state) and every household spends, on every good and in every period, the amount
    ``x = phi N^h (delta K)^2 / M`` that keeps ``K`` constant (``p = sqrt(phi N^h x / M)`` in the Walrasian and
    the posted market). Household 0 spends ``x + sign e`` on good 0 (``e = rel_step x``) in period 0 only
    (``persistent = False``) or in every period (``persistent = True``); the others keep spending ``x`` (open
    loop). The engine's :meth:`~abm_markets.engine.investment.InvestmentEconomy.step` runs ``horizon`` periods
    (households' actions are the spending shares ``x / Y_i``), and the gain is
    ``sum_t beta^t (u_0,t(deviation) - u_0,t(steady state)) / (e u'(C))``, in units of steady-state consumption
    per unit of the deviation: ``> 0`` means the deviation pays (to first order in ``e``).

    Rationing depends on the arrival order (posted prices). ``arrival = "strata"``: the exact expectation over it,
    household 0 arriving first (weight ``(N^h - 1) / N^h``) or last (weight ``1 / N^h``): with the others'
    spending fixed only whether it is the last buyer matters to it. ``"first"``: household 0 always arrives first,
    which switches its rationing off. An integer ``n``: ``n`` random arrival orders per period (seeded by
    ``seed``), shared by the deviation and the steady-state runs (common random numbers), averaged.

    Args:
        cfg: An ``InvestmentConfig`` of the market formulation with competitive (rule) firms; its TFP is set to 1.
        capital: Steady-state capital levels ``[P]``.
        sign: ``+1`` or ``-1`` per entry ``[P]`` (broadcast).
        persistent: Hold the deviation for the whole horizon, per entry ``[P]`` (broadcast).
        arrival: ``"strata"``, ``"first"`` or a number of random arrival orders.
        rel_step: ``e / x``.
        horizon: Periods simulated (``(beta (1 - delta))^horizon`` and ``beta^horizon`` should be negligible).
        seed: Seed of the random arrival orders.

    Returns:
        Gains ``[P]``.
    """
    from abm_markets.engine.investment import InvestmentState
    from abm_markets.engine.preferences import crra_marginal
    from abm_markets.engine.technology import output

    eco = _deviation_economy(cfg)
    c = eco.cfg
    k, sg, per = np.broadcast_arrays(np.asarray(capital, float), np.asarray(sign, float), np.asarray(persistent))
    k, sg, per = k.ravel(), sg.ravel(), per.ravel().astype(bool)
    h, j, m = eco.n_households, eco.n_goods, eco.n_firms
    if arrival == "strata":
        s_n, weights = 2, torch.tensor([(h - 1) / h, 1.0 / h], dtype=torch.float64)
    elif arrival == "first":
        s_n, weights = 1, torch.ones(1, dtype=torch.float64)
    elif isinstance(arrival, int) and arrival > 0:
        s_n, weights = arrival, torch.full((arrival,), 1.0 / arrival, dtype=torch.float64)
    else:
        raise ConfigError(f"arrival = {arrival!r}; expected 'strata', 'first' or a positive number of draws")
    p_n = k.size
    bsz = p_n * s_n * 2  # [P, S, (steady state, deviation)]
    kw = {"dtype": torch.float64}
    kt = torch.as_tensor(k, **kw)
    x = c.phi * h * (c.delta * kt) ** 2 / m  # [P]
    price = torch.sqrt(c.phi * h * x / m)
    rep = (1, s_n, 2)

    def per_economy(v: torch.Tensor) -> torch.Tensor:
        return v.reshape(-1, 1, 1).repeat(*rep).reshape(bsz)

    k_b, x_b, p_b = per_economy(kt), per_economy(x), per_economy(price)
    dev = torch.zeros(p_n, s_n, 2, **kw)
    dev[..., 1] = torch.as_tensor(sg * rel_step, **kw).reshape(-1, 1) * x.reshape(-1, 1)
    dev = dev.reshape(bsz)
    held = per_economy(torch.as_tensor(per))
    state = InvestmentState(
        capital=k_b.reshape(-1, 1, 1).expand(bsz, h, j).clone(),
        z_idx=torch.zeros(bsz, h, dtype=torch.long),
        agg_idx=torch.zeros(bsz, dtype=torch.long),
        t=torch.zeros(bsz, dtype=torch.long),
        last_spending=(h * x_b / m).reshape(-1, 1, 1).expand(bsz, j, m).clone(),
        last_price=p_b.reshape(-1, 1).expand(bsz, j).clone(),
    )
    rank = torch.linspace(0.0, 1.0, h, **kw).expand(bsz, h).clone()  # the others' order (irrelevant to household 0)
    if arrival == "strata":
        rank[:, 0] = torch.tensor([-1.0, 2.0], **kw).reshape(1, 2, 1).expand(p_n, 2, 2).reshape(bsz)
    elif arrival == "first":
        rank[:, 0] = -1.0
    gen = torch.Generator().manual_seed(seed)
    noise = torch.full((bsz, eco.draw_noise(1, gen).shape[1]), 0.5, **kw)
    ones = torch.ones(bsz, h, **kw)
    total = torch.zeros(bsz, **kw)
    marginal = None
    for t in range(horizon):
        spend = x_b.reshape(-1, 1, 1).expand(bsz, h, j).clone()
        spend[:, 0, 0] += dev * (held | (t == 0)).to(spend.dtype)
        y = output(state.capital, ones, c.alpha)
        if isinstance(arrival, int):
            rank = torch.rand(s_n, h, generator=gen, **kw).reshape(1, s_n, 1, h).expand(p_n, s_n, 2, h).reshape(bsz, h)
        state, out = eco.step(state, {"households": spend / y.unsqueeze(-1)}, noise=noise, arrival=rank)
        if marginal is None:
            marginal = crra_marginal(y[:, 0] - j * x_b, c.crra)
        total = total + c.beta**t * out.utility[:, 0]
    gain = (total.reshape(p_n, s_n, 2).diff(dim=-1)[..., 0] * weights).sum(-1)
    scale = (rel_step * x * marginal.reshape(p_n, s_n, 2)[:, 0, 0]).abs()
    return (gain / scale).numpy()


def buyer_nash_set(
    cfg: Any,
    deviation: str = "persistent",
    *,
    arrival: str | int = "strata",
    bracket: tuple[float, float] = (0.3, 1.2),
    points: int = 10,
    passes: int = 5,
    rel_step: float = 1e-5,
    horizon: int = 800,
) -> tuple[float, float]:
    """The buyer-side Nash set ``[K_low, K_high]`` (capital per household and good) of symmetric steady states at
    which neither ``+e`` nor ``-e`` pays, found through the engine's market (:func:`buyer_deviation_gains`).

    Method: the gain of ``+e`` falls with ``K`` and is zero at ``K_low``; the gain of ``-e`` rises with ``K`` and
    is zero at ``K_high``; the set is where both are ``<= 0``. Both roots are bracketed on
    ``bracket * K_competitive`` and searched together: each pass evaluates ``points`` interior points of each
    bracket (one batch of economies through the engine) and keeps the subinterval where the gain changes sign;
    after ``passes`` passes the root is interpolated linearly. A gain of one sign on the whole bracket gives NaN
    for that end (``K_low`` of one household under posted prices with one-period deviations: its extra order is
    always rationed, so ``+e`` never pays). At a smooth optimum (Walrasian clearing) the two ends coincide up to
    ``O(e)``. ``deviation = "one-period" | "persistent"`` (see :func:`posted_buyer_factors`): under posted prices
    the one-period set is the wider one; the persistent set is the set immune to every deviation path.

    Returns:
        ``(K_low, K_high)``.
    """
    if deviation not in DEVIATIONS:
        raise ConfigError(f"deviation = {deviation!r}; expected one of {DEVIATIONS}")
    k_c = capital_at_markup(cfg, 1.0)
    signs = np.array([1.0, -1.0])
    lo = np.full(2, bracket[0] * k_c)
    hi = np.full(2, bracket[1] * k_c)
    root = np.full(2, math.nan)
    kw = {"persistent": deviation == "persistent", "arrival": arrival, "rel_step": rel_step, "horizon": horizon}
    for _ in range(passes):
        grid = np.linspace(lo, hi, points + 2, axis=1)  # [2, G]
        g = buyer_deviation_gains(cfg, grid.ravel(), np.repeat(signs, points + 2), **kw).reshape(2, -1)
        for i in range(2):
            change = np.nonzero(np.sign(g[i, :-1]) != np.sign(g[i, 1:]))[0]
            if change.size == 0:
                root[i] = math.nan
                continue
            a = change[0]
            lo[i], hi[i] = grid[i, a], grid[i, a + 1]
            root[i] = lo[i] - g[i, a] * (hi[i] - lo[i]) / (g[i, a + 1] - g[i, a])
    return float(root[0]), float(root[1])
