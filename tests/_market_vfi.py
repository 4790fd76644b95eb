"""Brute-force references for the market formulation's tests: the engine's Walrasian market for one good, and the
value-function iteration of one household (log utility, Z = 1) that knows its own price impact while the others
spend fixed amounts."""

from __future__ import annotations

import math

import numpy as np
import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.markets.base import MarketNoise, Offers, Orders
from abm_markets.markets.walrasian import WalrasianMarket

T = torch.float64


def clear(cfg: InvestmentConfig, spending: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Units bought ``[..., H]`` and price ``[...]`` of one good under the engine's market of ``cfg`` (Walrasian, or
    bilateral on the config's network) with competitive sellers, households spending ``spending [..., H]``."""
    b = spending.reshape(-1, spending.shape[-1], 1)
    orders = Orders(budget=b, quantity=torch.full_like(b, math.inf))
    u = torch.full((b.shape[0], b.shape[1]), 0.5, dtype=T)
    market = WalrasianMarket()
    if cfg.market == "bilateral":
        from abm_markets.markets.bilateral import BilateralMarket, make_network, network_from_graph

        h, m = cfg.n_households, cfg.firms_per_good
        g = make_network(cfg.network, h, 1, m, p=cfg.network_p, rng=np.random.default_rng(cfg.network_seed))
        market = BilateralMarket(network_from_graph(g, h, 1, m), cfg.bargaining_power)
    trade = market.clear(orders, Offers(phi=cfg.phi, n_sellers=cfg.firms_per_good), MarketNoise(u, u[..., None]))
    return trade.bought[..., 0].reshape(spending.shape), trade.good_price()[..., 0].reshape(spending.shape[:-1])


def symmetric_spending(cfg: InvestmentConfig, k: float) -> float:
    """Spending per household at which each of N^h identical households buys delta K (bisection through the market)."""
    h = cfg.n_households
    lo, hi = 1e-12, 1e3
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        bought, _ = clear(cfg, torch.full((h,), mid, dtype=T))
        lo, hi = (mid, hi) if float(bought[0]) < cfg.delta * k else (lo, mid)
    return math.sqrt(lo * hi)


def euler_gap(cfg: InvestmentConfig, k: float, own_impact: bool, mpk: float) -> float:
    """``beta (MPK + (1 - delta) P) / P - 1`` at the symmetric state K (marginal product ``mpk``), with P the cost
    of one more unit to one household: the market price (price taker) or ``1 / (dI_i / dx_i)`` measured through the
    market (central differences of one household's spending)."""
    x = symmetric_spending(cfg, k)
    h = cfg.n_households
    _, price = clear(cfg, torch.full((h,), x, dtype=T))
    cost = float(price)
    if own_impact:
        e = 1e-6 * x
        dev = torch.full((2, h), x, dtype=T)
        dev[0, 0] += e
        dev[1, 0] -= e
        bought, _ = clear(cfg, dev)
        cost = 2 * e / float(bought[0, 0] - bought[1, 0])
    return cfg.beta * (mpk + (1.0 - cfg.delta) * cost) / cost - 1.0


def household_vfi(cfg: InvestmentConfig, x_other: float, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value ``V [n]`` and policy (grid index of K') of household 0 on ``grid`` (one good, log utility, Z = 1)
    when every other household spends ``x_other`` each period; the spending that buys each (K, K') move is found
    by bisection through the engine's market, so the household's own price impact is the market's."""
    h, d = cfg.n_households, cfg.delta
    need = np.maximum(grid[None, :] - (1 - d) * grid[:, None], 0.0)  # units to buy for K -> K'
    lo, hi = np.full(need.shape, 1e-12), np.full(need.shape, 1e3)
    for _ in range(80):
        mid = np.sqrt(lo * hi)
        sp = torch.full((*need.shape, h), x_other, dtype=T)
        sp[..., 0] = torch.as_tensor(mid)
        bought, _ = clear(cfg, sp)
        low = bought[..., 0].numpy() < need
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    spend = np.where(need > 0, np.sqrt(lo * hi), 0.0)
    c = grid[:, None] ** cfg.alpha - spend
    util = np.where(c > 0, np.log(np.maximum(c, 1e-300)), -1e10)
    return value_iteration(util, cfg.beta, 5000)


def value_iteration(payoff: np.ndarray, beta: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """``V`` and the policy (index of the next grid point) of ``V(k) = max_k' payoff[k, k'] + beta V(k')``,
    iterated to 1e-12 or ``max_iter`` times."""
    v = np.zeros(payoff.shape[0])
    for _ in range(max_iter):
        v_new = (payoff + beta * v[None, :]).max(1)
        if np.max(np.abs(v_new - v)) < 1e-12:
            v = v_new
            break
        v = v_new
    return v, (payoff + beta * v[None, :]).argmax(1)


def firm_vfi(cfg: InvestmentConfig, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Value ``V [n]`` (discounted profit) and policy (grid index of K') of the one capital-good firm (one good,
    ``Z = 1``) against rule households who spend the engine's competitive steady-state share of their output:
    revenue at capital K and sales Q comes from the engine's Walrasian market with the firm's capacity ``Q``,
    cost ``phi / 2 Q^2``, and the households' capital moves to ``K' = (1 - delta) K + Q / N^h``."""
    from abm_markets.engine.investment_groups import steady_state_spending_share
    from abm_markets.markets.base import MarketNoise, Offers, Orders

    h, d = cfg.n_households, cfg.delta
    q = np.maximum(h * (grid[None, :] - (1 - d) * grid[:, None]), 0.0)  # sales for K -> K'
    budget = steady_state_spending_share(cfg) * grid**cfg.alpha  # each household's spending at K
    b = torch.as_tensor(np.broadcast_to(budget[:, None], q.shape).reshape(-1, 1, 1), dtype=T).repeat(1, h, 1)
    orders = Orders(budget=b, quantity=torch.full_like(b, math.inf))
    cap = torch.as_tensor(q.reshape(-1, 1, 1), dtype=T)
    offers = Offers(phi=cfg.phi, price=torch.ones_like(cap), capacity=cap, n_sellers=1)
    u = torch.zeros(b.shape[0], h, dtype=T)
    trade = WalrasianMarket().clear(orders, offers, MarketNoise(u, u[..., None]))
    profit = (trade.revenue() - 0.5 * cfg.phi * trade.produced**2).reshape(q.shape).numpy()
    return value_iteration(np.where(q > 0, profit, -1e10), cfg.beta, 20000)
