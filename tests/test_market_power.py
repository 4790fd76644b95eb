"""The market formulation's reference answers against brute-force numerical searches that do not use their formulas.

* competitive and buyer-side steady states: the households' steady-state Euler equation with the price and the
  household's own price impact measured through the engine's Walrasian market (bisection on spending, finite
  differences), the marginal product by autograd of the engine's production function, and a root search in K;
* the buyer-side Nash steady state again by value-function iteration of one household against the others'
  spending, iterated to the fixed point where its long-run capital equals theirs;
* the firms' Nash equilibrium by best-response iteration and the joint-profit optimum by direct maximisation,
  both on the households' steady-state demand solved numerically.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _market_vfi import clear, euler_gap, household_vfi, symmetric_spending
from scipy import optimize

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment_groups import steady_state_capital
from abm_markets.engine.technology import output
from abm_markets.errors import ConfigError
from abm_markets.solvers.market_power import (
    buyer_deviation_gains,
    buyer_nash_set,
    capacity_buyer_factor,
    market_benchmarks,
    posted_buyer_factors,
    profit_gain,
    strategic_buyer_benchmarks,
)

T = torch.float64


def _market_cfg(**kw: object) -> InvestmentConfig:
    return InvestmentConfig(formulation="market", **kw)


def _mpk(cfg: InvestmentConfig, k: float) -> float:
    """dY / dK_j at K_ij = k for all goods, by autograd of the engine's production function."""
    cap = torch.full((1, 1, cfg.n_capital_goods), k, dtype=T, requires_grad=True)
    (g,) = torch.autograd.grad(output(cap, torch.ones(1, 1, dtype=T), cfg.alpha).sum(), cap)
    return float(g[0, 0, 0])


def _euler_gap(cfg: InvestmentConfig, k: float, own_impact: bool) -> float:
    return euler_gap(cfg, k, own_impact, _mpk(cfg, k))


def _root(f, lo: float, hi: float) -> float:
    return optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-10)


@pytest.mark.parametrize(
    ("h", "j", "m", "market"),
    [
        (1, 1, 1, "walrasian"),
        (5, 1, 2, "walrasian"),
        (3, 2, 1, "walrasian"),
        (10, 10, 5, "walrasian"),
        (4, 1, 1, "bilateral"),
    ],
)
def test_competitive_and_buyer_side_steady_states_against_the_market_euler_search(
    h: int, j: int, m: int, market: str
) -> None:
    """(Bilateral trade with one seller per good, on a sparse random network: every buyer meets the one seller.)"""
    cfg = _market_cfg(
        n_households=h, n_capital_goods=j, firms_per_good=m, market=market, network="random", network_p=0.3
    )
    bm = market_benchmarks(cfg)
    k_ss = steady_state_capital(cfg)
    k_comp = _root(lambda k: _euler_gap(cfg, k, False), 0.2 * k_ss, 3 * k_ss)
    k_strat = _root(lambda k: _euler_gap(cfg, k, True), 0.2 * k_ss, 3 * k_ss)
    assert bm.capital_competitive == pytest.approx(k_comp, rel=1e-7)
    assert bm.capital_competitive == pytest.approx(k_ss, rel=1e-12)  # the engine's declared steady state
    assert bm.capital_strategic == pytest.approx(k_strat, rel=1e-5)
    assert bm.capital_strategic < bm.capital_competitive
    _, p = clear(cfg, torch.full((h,), symmetric_spending(cfg, k_comp), dtype=T))
    assert bm.price_competitive == pytest.approx(float(p), rel=1e-7)


def _best_response_capital(cfg: InvestmentConfig, k_others: float, grid: np.ndarray) -> float:
    """Long-run capital of one household that knows its price impact, the others each spending what buys
    delta * k_others at the symmetric state (value-function iteration on ``grid``)."""
    x_other = symmetric_spending(cfg, k_others) if cfg.n_households > 1 else 0.0
    _, pol = household_vfi(cfg, x_other, grid)
    fixed = np.nonzero(pol == np.arange(grid.size))[0]
    assert fixed.size >= 1
    return float(grid[fixed].mean())


@pytest.mark.parametrize("h", [2, 5])
def test_buyer_side_nash_is_the_fixed_point_of_one_households_best_response(h: int) -> None:
    """Value-function iteration of one household against the others (who stay at the symmetric state k):
    at the benchmark, its own long-run capital is k (to the grid's spacing); at the competitive state it is not."""
    cfg = _market_cfg(n_households=h)
    bm = market_benchmarks(cfg)
    k_c = bm.capital_competitive
    grid = np.linspace(0.75 * k_c, 1.05 * k_c, 241)
    step = grid[1] - grid[0]
    k = k_c
    for _ in range(12):  # damped fixed-point iteration on the others' capital
        k_new = _best_response_capital(cfg, k, grid)
        if abs(k_new - k) <= step:
            break
        k = 0.5 * (k + k_new)
    assert k == pytest.approx(bm.capital_strategic, abs=2 * step)
    assert abs(bm.capital_strategic - k_c) > 10 * step  # the two benchmarks are told apart on this grid
    assert _best_response_capital(cfg, k_c, grid) < k_c - 5 * step


def _demand_prices(cfg: InvestmentConfig, q_goods: np.ndarray) -> np.ndarray:
    """Steady-state inverse demand of price-taking households: ``p_j = beta dY/dK_j / (1 - beta (1 - delta))`` at
    ``K_j = Q_j / (N^h delta)``, the marginal product by autograd of the engine's production function."""
    k = torch.as_tensor(q_goods / (cfg.n_households * cfg.delta), dtype=T).reshape(1, 1, -1).requires_grad_(True)
    (g,) = torch.autograd.grad(output(k, torch.ones(1, 1, dtype=T), cfg.alpha).sum(), k)
    return cfg.beta * g.reshape(-1).numpy() / (1.0 - cfg.beta * (1.0 - cfg.delta))


def _profits(cfg: InvestmentConfig, q: np.ndarray) -> np.ndarray:
    """Profit per period of each firm ``[N^c, M]`` at quantities ``q [N^c, M]``."""
    p = _demand_prices(cfg, q.sum(1))
    return p[:, None] * q - 0.5 * cfg.phi * q * q


@pytest.mark.parametrize(("h", "j", "m"), [(1, 1, 2), (4, 2, 1), (2, 2, 2), (3, 1, 5)])
def test_firm_nash_and_joint_benchmarks_against_best_responses_and_direct_maximisation(h: int, j: int, m: int) -> None:
    cfg = _market_cfg(n_households=h, n_capital_goods=j, firms_per_good=m)
    bm = market_benchmarks(cfg)
    q = np.full((j, m), bm.quantity_competitive) * np.linspace(0.6, 1.4, j * m).reshape(j, m)  # asymmetric start
    for _ in range(400):
        prev = q.copy()
        for g in range(j):
            for f in range(m):

                def neg(x: float, g: int = g, f: int = f) -> float:
                    qq = q.copy()
                    qq[g, f] = x
                    return -float(_profits(cfg, qq)[g, f])

                q[g, f] = optimize.minimize_scalar(
                    neg, bounds=(1e-9, 5 * bm.quantity_competitive), method="bounded", options={"xatol": 1e-13}
                ).x
        if np.max(np.abs(q - prev)) < 1e-11:
            break
    price = _demand_prices(cfg, q.sum(1))
    markup = price[:, None] / (cfg.phi * q)
    np.testing.assert_allclose(markup, bm.markup_nash, rtol=1e-5)
    np.testing.assert_allclose(_profits(cfg, q), bm.profit_nash, rtol=1e-5)

    def neg_joint(x: np.ndarray) -> float:
        return -float(_profits(cfg, np.exp(x).reshape(j, m)).sum())

    x0 = np.log(np.full(j * m, bm.quantity_competitive) * np.linspace(0.5, 1.5, j * m))
    res = optimize.minimize(
        neg_joint,
        x0,
        method="Nelder-Mead" if j * m <= 2 else "BFGS",
        options={"xatol": 1e-12, "fatol": 1e-15} if j * m <= 2 else {"gtol": 1e-12},
    )
    qj = np.exp(res.x).reshape(j, m)
    pj = _demand_prices(cfg, qj.sum(1))
    np.testing.assert_allclose(pj[:, None] / (cfg.phi * qj), bm.markup_joint, rtol=1e-4)
    assert -res.fun == pytest.approx(j * m * bm.profit_joint, rel=1e-8)
    assert bm.profit_joint * j * m >= bm.profit_nash * j * m - 1e-12  # joint maximum is at least Nash total
    if j * m > 1 or m > 1:
        assert math.isfinite(profit_gain(bm.profit_nash, bm.profit_nash, bm.profit_joint))


def test_profit_gain_and_bad_input() -> None:
    cfg = _market_cfg(n_households=1)
    bm = market_benchmarks(cfg)
    assert bm.markup_nash == pytest.approx(bm.markup_joint)  # one firm of one good: Nash is the monopoly
    assert math.isnan(profit_gain(bm.profit_competitive, bm.profit_nash, bm.profit_joint))
    assert profit_gain(2.0, 1.0, 3.0) == pytest.approx(0.5)
    assert profit_gain(1.0, 1.0, 3.0) == 0.0
    with pytest.raises(ConfigError, match="formulation = 'market'"):
        market_benchmarks(InvestmentConfig())
    assert math.isnan(market_benchmarks(_market_cfg(market="posted")).capital_strategic)  # an interval: buyer_nash_set
    assert math.isnan(market_benchmarks(_market_cfg(market="bilateral", firms_per_good=2)).capital_strategic)
    assert math.isnan(market_benchmarks(_market_cfg(market="bilateral", bargaining_power=0.5)).capital_strategic)


def test_buyer_side_benchmark_approaches_the_competitive_one_as_households_grow() -> None:
    ratios = [
        market_benchmarks(_market_cfg(n_households=h)).capital_strategic
        / market_benchmarks(_market_cfg(n_households=h)).capital_competitive
        for h in (1, 5, 100, 1000)
    ]
    assert ratios == sorted(ratios)
    assert ratios[0] < 0.7 and 1 - ratios[-1] < 3e-4


def _rule_economy(h: int, j: int, m: int):
    from abm_markets.engine.investment import InvestmentEconomy

    cfg = _market_cfg(
        n_households=h, n_capital_goods=j, firms_per_good=m, firms="decision", tfp_values=(1.0,), agg_tfp_values=(1.0,)
    )
    return cfg, InvestmentEconomy(cfg)


def _two_period_profits(eco, k: float, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``pi_t + beta pi_(t+1)`` of every firm ``[B, J, M]`` and the period-t price ``[B, J]`` when the rule
    households (the competitive steady-state spending share) start at capital ``k`` and the firms offer capacities
    ``q [B, 2, J, M]`` in periods t and t+1, through the engine's step and Walrasian market."""
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.sources import steady_state_share_source

    b = q.shape[0]
    path = ev.make_eval_path(eco, b, 2, torch.Generator().manual_seed(0), k0=k)
    rule = steady_state_share_source(eco)
    state, total, price = path.state0, torch.zeros(q.shape[0], *q.shape[2:], dtype=T), None
    for t in range(2):
        cap = q[:, t].reshape(b, -1)
        firms = torch.stack([torch.ones_like(cap), cap], -1)
        state, out = eco.step(state, {"households": rule(state), "firms": firms}, noise=path.noise[t])
        total = total + eco.cfg.beta**t * out.reward_firms
        price = out.price if price is None else price
    return total, price


def _deviation_gain(eco, k: float, who: str) -> float:
    """d(pi_t + beta pi_(t+1)) / de at the steady state with capital k, when firm (0, 0) (``who = "one"``) or every
    firm (``"all"``, total profit) sells e more in period t and (1 - delta) e less in t+1, which leaves the capital
    from t+2 on unchanged (central differences)."""
    cfg = eco.cfg
    j, m = eco.n_goods, eco.n_firms
    q0 = cfg.n_households * cfg.delta * k / m
    e = 1e-5 * q0
    q = torch.full((2, 2, j, m), q0, dtype=T)
    mask = torch.zeros(j, m, dtype=T)
    if who == "one":
        mask[0, 0] = 1.0
    else:
        mask[:] = 1.0
    for i, sign in enumerate((1.0, -1.0)):
        q[i, 0] += sign * e * mask
        q[i, 1] -= sign * (1.0 - cfg.delta) * e * mask
    prof, _ = _two_period_profits(eco, k, q)
    val = prof[:, 0, 0] if who == "one" else prof.sum((1, 2))
    return float(val[0] - val[1]) / (2 * e)


@pytest.mark.parametrize(("h", "j", "m"), [(2, 1, 1), (3, 1, 2), (2, 2, 1), (4, 1, 5)])
def test_firm_benchmarks_against_rule_households_by_one_period_deviations_through_the_engine(
    h: int, j: int, m: int
) -> None:
    """Against households who spend a fixed share of output, the firms' steady states (open-loop Nash: one firm
    deviates; joint: all do) are where a one-period deviation that restores tomorrow's capital gains nothing;
    the root in K is found through the engine's market and its rule households, and the markup read off the
    engine's price."""
    cfg, eco = _rule_economy(h, j, m)
    bm = market_benchmarks(cfg, households="rule")
    k_ss = steady_state_capital(cfg)
    for who, k_bm, mu_bm in (("one", bm.capital_nash, bm.markup_nash), ("all", bm.capital_joint, bm.markup_joint)):
        k = _root(lambda x, who=who: _deviation_gain(eco, x, who), 0.02 * k_ss, 2.0 * k_ss)
        q = cfg.n_households * cfg.delta * k / m
        _, price = _two_period_profits(eco, k, torch.full((1, 2, j, m), q, dtype=T))
        assert k == pytest.approx(k_bm, rel=1e-5)
        assert float(price[0, 0]) / (cfg.phi * q) == pytest.approx(mu_bm, rel=1e-5)
    assert bm.markup_nash > 1.0 and math.isnan(bm.capital_strategic)
    if j * m == 1:
        assert bm.markup_nash == pytest.approx(bm.markup_joint)
        assert bm.markup_nash > market_benchmarks(cfg).markup_nash  # above the static monopoly's 1 / alpha
    assert math.isnan(market_benchmarks(_market_cfg(market="posted"), households="rule").markup_nash)


# ----------------------------------------------------------------------------------------------------------------
# buyer-side Nash sets by one-period and persistent spending deviations through the engine's market


FAST = {"points": 6, "passes": 4, "horizon": 600}  # coarser search than the defaults: ends to ~1e-6


def _ratio(cfg: InvestmentConfig, k: float) -> float:
    return k / market_benchmarks(cfg).capital_competitive


def _derived(cfg: InvestmentConfig, deviation: str, rationing: bool = True) -> tuple[float, float]:
    return tuple(  # type: ignore[return-value]
        f ** (1.0 / (2.0 - cfg.alpha)) if f > 0 else math.nan for f in posted_buyer_factors(cfg, deviation, rationing)
    )


@pytest.mark.parametrize(("h", "j", "m"), [(5, 1, 1), (3, 2, 2)])
def test_deviation_search_under_walrasian_clearing_reproduces_the_derived_buyer_side_nash(
    h: int, j: int, m: int
) -> None:
    """The engine-based deviation machinery against the closed form: under Walrasian clearing the household's
    problem is smooth, so the set where neither +e nor -e pays shrinks to the buyer-side Nash steady state
    (width O(e)), and the competitive steady state is outside it (there, spending less pays)."""
    cfg = _market_cfg(n_households=h, n_capital_goods=j, firms_per_good=m)
    bm = market_benchmarks(cfg)
    lo, hi = buyer_nash_set(cfg, "one-period", bracket=(0.8, 1.05), **FAST)
    assert lo <= hi
    assert 0.5 * (lo + hi) == pytest.approx(bm.capital_strategic, rel=1e-6)
    assert hi - lo < 1e-5 * bm.capital_strategic
    up, down = buyer_deviation_gains(cfg, [bm.capital_competitive] * 2, [1.0, -1.0])
    assert down > 0 > up


@pytest.mark.parametrize(
    ("h", "j", "m", "deviation"),
    [
        (1, 1, 1, "persistent"),
        (1, 1, 1, "one-period"),
        (2, 1, 1, "one-period"),
        (5, 1, 2, "persistent"),
        (3, 2, 1, "one-period"),
    ],
)
def test_posted_buyer_nash_set_through_the_engine_against_its_derivation(
    h: int, j: int, m: int, deviation: str
) -> None:
    """Posted prices with the rule firms: the ends of the set found through the engine's posted market (exact
    expectation over the arrival order) agree with the first-order derivation of ``posted_buyer_factors``; one
    household has no lower end under one-period deviations (its extra order is always rationed)."""
    cfg = _market_cfg(n_households=h, n_capital_goods=j, firms_per_good=m, market="posted")
    lo, hi = buyer_nash_set(cfg, deviation, **FAST)
    d_lo, d_hi = _derived(cfg, deviation)
    if math.isnan(d_lo):
        assert math.isnan(lo)
    else:
        assert _ratio(cfg, lo) == pytest.approx(d_lo, rel=1e-5)
    assert _ratio(cfg, hi) == pytest.approx(d_hi, rel=1e-5)


def test_posted_rationing_widens_the_set_around_the_next_period_price_heuristic() -> None:
    """Switching household 0's rationing off (it always arrives first) leaves only the next-period price effect:
    the set shrinks to the heuristic ``p / (1 - beta / (2 N^h)) = c MPK``. With rationing the one-period set
    is wide and holds it inside, the persistent set (immune to every deviation path) has it as its upper end,
    and the competitive steady state and the Walrasian buyer-side one lie outside both."""
    cfg = _market_cfg(n_households=5, market="posted")
    heuristic = _derived(cfg, "persistent", rationing=False)[0]
    assert heuristic == pytest.approx((1 - cfg.beta / 10) ** (1 / 1.7))
    lo, hi = (_ratio(cfg, k) for k in buyer_nash_set(cfg, "one-period", arrival="first", bracket=(0.85, 1.05), **FAST))
    assert lo == pytest.approx(heuristic, rel=1e-5) and hi == pytest.approx(heuristic, rel=1e-5)
    one_lo, one_hi = (_ratio(cfg, k) for k in buyer_nash_set(cfg, "one-period", bracket=(0.85, 1.05), **FAST))
    per_lo, per_hi = (_ratio(cfg, k) for k in buyer_nash_set(cfg, "persistent", bracket=(0.85, 1.05), **FAST))
    assert one_lo < heuristic - 0.01 and one_hi > heuristic + 0.005
    assert one_lo < per_lo < per_hi < one_hi
    assert per_hi == pytest.approx(heuristic, rel=1e-5) and per_hi - per_lo > 1e-4
    walrasian = _ratio(cfg, market_benchmarks(_market_cfg(n_households=5)).capital_strategic)
    assert not per_lo <= walrasian <= per_hi and not one_lo <= 1.0 <= one_hi


@pytest.mark.parametrize("h", [1, 2, 5])
def test_competitive_steady_state_is_outside_the_posted_buyer_nash_set(h: int) -> None:
    """At the competitive steady state spending e less for good pays a household under posted prices
    (and, for two or more, spending e less for one period too): the set excludes it."""
    cfg = _market_cfg(n_households=h, market="posted")
    k_c = market_benchmarks(cfg).capital_competitive
    persistent_down, one_down = buyer_deviation_gains(cfg, [k_c, k_c], -1.0, persistent=[True, False])
    assert persistent_down > 0
    assert one_down > 0 or h == 1


def test_random_arrival_orders_with_common_random_numbers_agree_with_the_exact_expectation() -> None:
    """Averaging over random arrival orders (common random numbers across the runs with and without the
    deviation) agrees with the exact expectation over household 0 arriving first or last, within the sampling
    error of the share of orders in which it is last; and the same seed gives the same numbers."""
    cfg = _market_cfg(n_households=3, market="posted")
    k = 0.95 * market_benchmarks(cfg).capital_competitive
    kw = {"horizon": 300}
    draws = 600
    exact = buyer_deviation_gains(cfg, [k, k], [1.0, -1.0], **kw)
    first = buyer_deviation_gains(cfg, [k, k], [1.0, -1.0], arrival="first", **kw)
    mc = buyer_deviation_gains(cfg, [k, k], [1.0, -1.0], arrival=draws, seed=3, **kw)
    h = cfg.n_households
    last = h * (exact - (1 - 1 / h) * first)  # the gain when household 0 arrives last
    se = np.abs(last - first) * math.sqrt((1 / h) * (1 - 1 / h) / draws)
    assert np.all(np.abs(mc - exact) < 4 * se)
    assert np.all(np.abs(last - first) > 0.05)  # rationing matters at this K
    np.testing.assert_array_equal(mc, buyer_deviation_gains(cfg, [k, k], [1.0, -1.0], arrival=draws, seed=3, **kw))


def test_buyer_deviation_bad_input() -> None:
    cfg = _market_cfg(n_households=2, market="posted")
    with pytest.raises(ConfigError, match="deviation"):
        buyer_nash_set(cfg, "two-period")
    with pytest.raises(ConfigError, match="arrival"):
        buyer_deviation_gains(cfg, [1.0], 1.0, arrival="last")
    with pytest.raises(ConfigError, match="firms = 'competitive'"):
        buyer_deviation_gains(_market_cfg(n_households=2, market="posted", firms="decision"), [1.0], 1.0)


def _units_at_fixed_capacity(cfg: InvestmentConfig, spending: torch.Tensor, capacity: float) -> torch.Tensor:
    """Units each household gets ``[..., H]`` through the engine's Walrasian market when the good's one firm has
    committed ``capacity`` (the learning firm's action) and households spend ``spending [..., H]``."""
    from abm_markets.markets.base import MarketNoise, Offers, Orders
    from abm_markets.markets.walrasian import WalrasianMarket

    b = spending.reshape(-1, spending.shape[-1], 1)
    orders = Orders(budget=b, quantity=torch.full_like(b, math.inf))
    cap = torch.full((b.shape[0], 1, 1), capacity, dtype=T)
    offers = Offers(phi=cfg.phi, price=torch.ones_like(cap), capacity=cap, n_sellers=1)
    u = torch.zeros(b.shape[0], b.shape[1], dtype=T)
    trade = WalrasianMarket().clear(orders, offers, MarketNoise(u, u[..., None]))
    return trade.bought[..., 0].reshape(spending.shape)


@pytest.mark.parametrize("h", [1, 2, 5, 10])
def test_fixed_capacity_buyer_factor_through_the_engine(h: int) -> None:
    """With the firm's capacity committed, one household's marginal cost of a unit (central differences of its
    spending through the engine's market) is ``p / (1 - 1 / N^h)``: infinite for a lone buyer (its spending moves
    no unit), twice the price impact of the competitive-supply case otherwise."""
    cfg = _market_cfg(n_households=h)
    x, cap = 0.3, 0.05
    e = 1e-6 * x
    dev = torch.full((3, h), x, dtype=T)
    dev[1, 0] += e
    dev[2, 0] -= e
    units = _units_at_fixed_capacity(cfg, dev, cap)
    price = h * x / float(units[0].sum())
    d_units = float(units[1, 0] - units[2, 0]) / (2 * e)
    measured = price * d_units  # p / marginal cost
    assert measured == pytest.approx(capacity_buyer_factor(cfg), abs=1e-7)
    assert math.isnan(capacity_buyer_factor(cfg, "posted"))


def _profits_scaled(cfg: InvestmentConfig, q: np.ndarray, factor: float) -> np.ndarray:
    p = factor * _demand_prices(cfg, q.sum(1))
    return p[:, None] * q - 0.5 * cfg.phi * q * q


@pytest.mark.parametrize(("h", "j", "m"), [(2, 2, 1), (5, 1, 2), (4, 2, 1)])
def test_firms_against_strategic_buyers_by_best_responses(h: int, j: int, m: int) -> None:
    """Firms best-respond in quantities to the strategic households' demand (the price-taking demand scaled by the
    factor measured through the engine above): the benchmarks' markups, capital and profits come out, and they
    differ from the price-taking ones."""
    cfg = _market_cfg(n_households=h, n_capital_goods=j, firms_per_good=m)
    x, e = 0.3, 0.3e-6
    dev = torch.full((2, h), x, dtype=T)
    dev[0, 0] += e
    dev[1, 0] -= e
    units = _units_at_fixed_capacity(cfg, dev, 0.05)
    factor = (h * x / 0.05) * float(units[0, 0] - units[1, 0]) / (2 * e)
    sb, bm = strategic_buyer_benchmarks(cfg), market_benchmarks(cfg)
    q = np.full((j, m), bm.quantity_competitive) * np.linspace(0.6, 1.4, j * m).reshape(j, m)
    for _ in range(400):
        prev = q.copy()
        for g in range(j):
            for f in range(m):

                def neg(v: float, g: int = g, f: int = f) -> float:
                    qq = q.copy()
                    qq[g, f] = v
                    return -float(_profits_scaled(cfg, qq, factor)[g, f])

                q[g, f] = optimize.minimize_scalar(
                    neg, bounds=(1e-9, 5 * bm.quantity_competitive), method="bounded", options={"xatol": 1e-13}
                ).x
        if np.max(np.abs(q - prev)) < 1e-11:
            break
    price = factor * _demand_prices(cfg, q.sum(1))
    np.testing.assert_allclose(price[:, None] / (cfg.phi * q), sb.markup_nash, rtol=1e-5)
    np.testing.assert_allclose(q.sum(1) / (h * cfg.delta), sb.capital_nash, rtol=1e-5)
    np.testing.assert_allclose(_profits_scaled(cfg, q, factor), sb.profit_nash, rtol=1e-5)
    assert sb.capital_nash < 0.97 * bm.capital_nash  # told apart from the price-taking benchmark
    res = optimize.minimize(
        lambda v: -float(_profits_scaled(cfg, np.exp(v).reshape(j, m), factor).sum()),
        np.log(np.full(j * m, bm.quantity_competitive) * np.linspace(0.5, 1.5, j * m)),
        method="Nelder-Mead" if j * m <= 2 else "BFGS",
        options={"xatol": 1e-12, "fatol": 1e-15} if j * m <= 2 else {"gtol": 1e-12},
    )
    assert -res.fun == pytest.approx(j * m * sb.profit_joint, rel=1e-7)


def test_no_trade_with_one_strategic_buyer() -> None:
    sb = strategic_buyer_benchmarks(_market_cfg(n_households=1))
    assert sb.buyer_factor == 0.0 and sb.capital_nash == 0.0 and sb.profit_joint == 0.0
