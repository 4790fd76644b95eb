"""The capital-good firm of the investment economy as a Mesa agent.

A :class:`CapitalFirm` sells one capital good ``j`` (``M`` firms per good in the market
formulation; in the planner formulation the single "firm" of good ``j`` is the planner's
pool). Deciding firms choose ``(posted price, capacity)`` through their rule when the
Mesa model activates them.

In the model's ``agents`` mode the firms of each good clear their own good in plain
Python floats, an independent second implementation of :mod:`abm_markets.markets`:

* planner pool: ``R_j = sum_i x_ij``, ``I_j = sqrt(2 R_j / phi)``, ``I_ij = x_ij / R_j I_j``,
  shadow price ``phi I_j``;
* Walrasian, competitive: ``p_j`` solves ``sum_i min(q_ij, b_ij / p) = M p / phi``
  (``p = sqrt(phi sum_i b_ij / M)`` for spending orders); deciding: ``sum_i d_ij(p) = sum_m c_jm``;
* bilateral: each buyer meets one neighbouring firm of the good in the trading graph
  (the ``k``-th neighbour in firm order, ``k = floor(u n)``); a competitive firm charges its
  matched buyers ``p = kappa phi Q`` with ``Q = sum_i d_i(p)`` and ``kappa = (1 + theta)/2``
  (``sqrt(kappa phi sum_i b_i)`` for spending orders); deciding firms serve their matched
  buyers in arrival order up to capacity;
* posted price: buyers arrive in the activation order and buy ``min(q, b / p)`` from the
  cheapest firm with stock left, then the next; competitive firms post ``sqrt(phi S_{t-1})``
  with capacity ``p / phi``, where ``S_{t-1}`` is last period's demand signal: the spending
  buyers wanted to place at last period's price, ``sum_i min(b_ij, q_ij p_{t-1}) / M``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import mesa
import numpy as np
import torch
from torch import Tensor

from abm_markets.markets.base import PRICE_FLOOR

if TYPE_CHECKING:
    from abm_markets.agents.household import Household
    from abm_markets.agents.rules import DecisionRule
    from abm_markets.engine.investment import InvestmentEconomy, InvestmentState

FIRM_OBSERVATION = ("own_price", "own_demand", "good_capital", "agg_tfp")
"""What a firm observes: its good's last average price / ``p_ss``; the spending buyers wanted to
place with it last period (the engine's ``last_spending``: orders at last period's price,
rationed demand included, split evenly across the good's firms) / ``S_ss``; mean capital of
its good / ``K_ss``; mean TFP."""


def firm_observation(economy: InvestmentEconomy, state: InvestmentState) -> Tensor:
    """Firms' observations ``[B, J, M, 4]`` (see :data:`FIRM_OBSERVATION`)."""
    from abm_markets.agents.rules import firm_observation_scales

    p_ss, s_ss = firm_observation_scales(economy.cfg)
    bsz, j, m = state.batch_size, economy.n_goods, economy.n_firms
    price = (state.last_price / p_ss).unsqueeze(-1).expand(bsz, j, m)
    demand = state.last_spending / s_ss
    capital = (state.capital / economy.k_ss).mean(1).unsqueeze(-1).expand(bsz, j, m)
    tfp = economy.tfp(state).mean(1).reshape(bsz, 1, 1).expand(bsz, j, m)
    return torch.stack([price, demand, capital, tfp], dim=-1)


def _bisect_decreasing(f: Callable[[float], float], lo: float, hi: float, iters: int = 200) -> float:
    """Root of a decreasing ``f`` on ``[lo, hi]`` by bisection in log space."""
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        if f(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi <= lo * (1.0 + 1e-16):
            break
    return math.sqrt(lo * hi)


def _demand(b: float, q: float, p: float) -> float:
    return min(q, b / p)


class CapitalFirm(mesa.Agent):
    """One capital-good firm (or the planner's pool for a good).

    Attributes (refreshed every period):
        good, index: Good ``j`` and position ``m`` among its sellers.
        rule: Decision rule (deciding firms) or None.
        action: Last ``(price, capacity)`` of a deciding firm.
        price: Transaction price of the period.
        capacity: Output offered (posted price / deciding firms).
        sold, produced, revenue, profit: Flows of the period (``profit = p sold - phi/2 produced^2``).
        last_demand: Demand signal ``S`` of the last period: spending buyers wanted to place with the
            firm at the previous price, split evenly across the good's firms (drives the posted-price
            rule); the pooled resources for the planner.
    """

    def __init__(self, model: mesa.Model, good: int, index: int, rule: DecisionRule | None, last_demand: float) -> None:
        super().__init__(model)
        self.good = good
        self.index = index
        self.rule = rule
        self.action = np.zeros(2)
        self.price = math.nan
        self.capacity = math.nan
        self.sold = 0.0
        self.produced = 0.0
        self.revenue = 0.0
        self.profit = 0.0
        self.last_demand = last_demand

    def decide(self) -> None:
        """Deciding firms choose ``(price, capacity)`` from their rule or the model's override."""
        model = self.model
        override = model.firm_override
        if override is not None:
            self.action = np.asarray(override[self.good][self.index], dtype=np.float64)
        elif self.rule is not None:
            self.action = np.asarray(self.rule.act(model.firm_observation(self)), dtype=np.float64)

    def _book(self, price: float, sold: float, produced: float) -> None:
        phi = self.model.cfg.phi
        self.price = price
        self.sold = sold
        self.produced = produced
        self.capacity = produced
        self.revenue = price * sold
        self.profit = self.revenue - 0.5 * phi * produced * produced

    # -------------------------------------------------------------- planner
    def clear_pool(self, buyers: Sequence[Household]) -> float:
        """The planner's pool of good ``j``: returns the shadow price ``max(phi I_j, floor)``.

        Buyers' ``spending[j]`` holds the resources ``x_ij`` they commit.
        """
        j, phi = self.good, self.model.cfg.phi
        pooled = sum(h.spending[j] for h in buyers)
        total = math.sqrt(2.0 * pooled / phi)
        for h in buyers:
            h.investment[j] = h.spending[j] / pooled * total if pooled > 0 else 0.0
        invest = sum(h.investment[j] for h in buyers)
        price = max(phi * invest, PRICE_FLOOR)
        self._book(price, invest, invest)
        self.profit = 0.0
        self.revenue = pooled
        return price

    # ------------------------------------------------------------ Walrasian
    @staticmethod
    def clear_walrasian(firms: Sequence[CapitalFirm], buyers: Sequence[Household]) -> float:
        """Clear good ``j`` at one price; returns the price. Sets buyers' ``investment``/``spending``."""
        j = firms[0].good
        cfg = firms[0].model.cfg
        phi, m = cfg.phi, len(firms)
        budgets = [h.budget[j] for h in buyers]
        quants = [h.quantity[j] for h in buyers]
        total_budget = sum(budgets)
        spend_only = all(math.isinf(q) for h in buyers for q in h.quantity)
        deciding = cfg.firms == "decision"

        def demand_at(p: float) -> float:
            return sum(_demand(b, q, p) for b, q in zip(budgets, quants, strict=True))

        if not deciding:
            if spend_only:
                price = math.sqrt(phi * total_budget / m)
            else:
                hi = max(math.sqrt(phi * total_budget / m), 2 * PRICE_FLOOR)
                price = _bisect_decreasing(lambda p: demand_at(p) - m * p / phi, PRICE_FLOOR, hi)
            price = max(price, PRICE_FLOOR)
            bought = [_demand(b, q, price) if total_budget > 0 else 0.0 for b, q in zip(budgets, quants, strict=True)]
            per_firm = sum(bought) / m
            for f in firms:
                f._book(price, per_firm, per_firm)
        else:
            caps = [max(float(f.action[1]), 0.0) for f in firms]
            total_cap = sum(caps)
            if spend_only:
                price = total_budget / max(total_cap, 1e-300)
            else:
                hi = max(total_budget / max(total_cap, 1e-300), 2 * PRICE_FLOOR)
                price = _bisect_decreasing(lambda p: demand_at(p) - total_cap, PRICE_FLOOR, hi)
                # excess capacity at any price: highest price that still serves every quantity cap
                sum_q = sum(q for b, q in zip(budgets, quants, strict=True) if b > 0)
                served = [b / q for b, q in zip(budgets, quants, strict=True) if b > 0 and q > 0]
                if served and sum_q <= total_cap:
                    price = min(served)
            ok = total_cap > 0 and total_budget > 0
            price = max(price if ok else PRICE_FLOOR, PRICE_FLOOR)
            bought = [_demand(b, q, price) if ok else 0.0 for b, q in zip(budgets, quants, strict=True)]
            sold_total = sum(bought)
            if sold_total > total_cap:
                bought = [x * (total_cap / sold_total) for x in bought]
                sold_total = sum(bought)
            for f, c in zip(firms, caps, strict=True):
                f._book(price, c * (sold_total / max(total_cap, 1e-300)), c)
        for h, x, b in zip(buyers, bought, budgets, strict=True):
            h.investment[j] = x
            h.spending[j] = min(x * price, b)
        return price

    # --------------------------------------------------------- posted price
    @staticmethod
    def clear_posted(firms: Sequence[CapitalFirm], arrivals: Sequence[Household]) -> float:
        """Sequential purchases of good ``j`` in arrival order; returns the average transaction price."""
        j = firms[0].good
        cfg = firms[0].model.cfg
        phi = cfg.phi
        if cfg.firms == "decision":
            prices = [max(float(f.action[0]), PRICE_FLOOR) for f in firms]
            caps = [max(float(f.action[1]), 0.0) for f in firms]
        else:
            prices = [max(math.sqrt(phi * f.last_demand), PRICE_FLOOR) for f in firms]
            caps = [p / phi for p in prices]
        rank = sorted(range(len(firms)), key=lambda m: prices[m])  # stable: ties by index
        left = list(caps)
        for h in arrivals:
            b_rem, q_rem = h.budget[j], h.quantity[j]
            got = spent = 0.0
            for m in rank:
                p = prices[m]
                x = max(min(min(q_rem, b_rem / p), left[m]), 0.0)
                cost = min(x * p, b_rem)
                got, spent = got + x, spent + cost
                b_rem, q_rem = max(b_rem - cost, 0.0), q_rem - x
                left[m] = left[m] - x
            h.investment[j] = got
            h.spending[j] = spent
        sold_total = rev_total = 0.0
        for f, p, c, rem in zip(firms, prices, caps, left, strict=True):
            sold = max(c - rem, 0.0)
            f._book(p, sold, c)
            sold_total += sold
            rev_total += f.revenue
        return rev_total / sold_total if sold_total > 0 else sum(prices) / len(prices)

    # ------------------------------------------------------------ bilateral
    @staticmethod
    def clear_bilateral(
        firms: Sequence[CapitalFirm],
        arrivals: Sequence[Household],
        partners: dict[int, list[int]],
        u_match: list[float],
    ) -> float:
        """Bilateral trade of good ``j`` on the network; returns the average transaction price.

        Args:
            firms: The good's firms.
            arrivals: Households in arrival order (deciding firms serve them in this order).
            partners: ``partners[i]`` = indices ``m`` of the good's firms household ``i`` can reach, ascending.
            u_match: One uniform per household (by index) picking its partner.
        """
        j = firms[0].good
        cfg = firms[0].model.cfg
        phi = cfg.phi
        matched: dict[int, int] = {}
        for h in arrivals:
            nb = partners[h.index]
            if nb:
                matched[h.index] = nb[min(math.floor(u_match[h.index] * len(nb)), len(nb) - 1)]
        buyers = {m: [h for h in arrivals if matched.get(h.index) == m] for m in range(len(firms))}
        if cfg.firms == "decision":
            for m, f in enumerate(firms):
                p = max(float(f.action[0]), PRICE_FLOOR)
                cap = max(float(f.action[1]), 0.0)
                left = cap
                for h in buyers[m]:
                    x = max(min(min(h.quantity[j], h.budget[j] / p), left), 0.0)
                    h.investment[j] = x
                    h.spending[j] = min(x * p, h.budget[j])
                    left = left - x
                f._book(p, max(cap - left, 0.0), cap)
        else:
            kappa = 0.5 * (1.0 + cfg.bargaining_power)
            spend_only = all(math.isinf(q) for h in arrivals for q in h.quantity)
            for m, f in enumerate(firms):
                bs = [h.budget[j] for h in buyers[m]]
                qs = [h.quantity[j] for h in buyers[m]]
                b_f = sum(bs)
                if spend_only:
                    p = math.sqrt(kappa * phi * b_f)
                else:
                    hi = max(math.sqrt(kappa * phi * b_f), 2 * PRICE_FLOOR)

                    def excess(price: float, bs: list[float] = bs, qs: list[float] = qs) -> float:
                        return sum(_demand(b, q, price) for b, q in zip(bs, qs, strict=True)) - price / (kappa * phi)

                    p = _bisect_decreasing(excess, PRICE_FLOOR, hi)
                p = max(p, PRICE_FLOOR)
                sold = 0.0
                for h in buyers[m]:
                    x = min(h.quantity[j], h.budget[j] / p) if h.budget[j] > 0 else 0.0
                    h.investment[j] = x
                    h.spending[j] = min(x * p, h.budget[j])
                    sold += x
                f._book(p, sold, sold)
        sold_total = sum(f.sold for f in firms)
        rev_total = sum(f.revenue for f in firms)
        return rev_total / sold_total if sold_total > 0 else sum(f.price for f in firms) / len(firms)
