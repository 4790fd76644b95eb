"""Walrasian clearing: one price per good sets excess demand to zero."""

from __future__ import annotations

import torch
from torch import Tensor

from abm_markets.markets.base import PRICE_FLOOR, MarketNoise, Offers, Orders, Trade, bisect_decreasing, demand


class WalrasianMarket:
    """Walrasian auctioneer, vectorised over the batch.

    Competitive sellers supply ``Q_m = p / phi`` each, so with ``M`` sellers the
    clearing price solves ``sum_i d_ij(p) = M p / phi``. With pure spending orders
    (``q = inf``) it has the closed form ``p_j = sqrt(phi * sum_i b_ij / M)``.
    Deciding sellers offer fixed capacities ``c_jm``; the price solves
    ``sum_i d_ij(p) = sum_m c_jm`` (closed form ``sum_i b_ij / sum_m c_jm``) and
    sales are shared in proportion to capacity; if capacity exceeds all that buyers would
    take at any price, the price is the highest one at which every quantity cap is served,
    ``min_i b_ij / q_ij``, and the excess stays unsold. Otherwise the price is found by
    safeguarded bisection in log price (demand is decreasing in ``p``).
    """

    name = "walrasian"

    def clear(self, orders: Orders, offers: Offers, noise: MarketNoise | None = None) -> Trade:
        b, q = orders.budget, orders.quantity
        total_budget = b.sum(-2)  # [B, J]
        spend_only = bool(torch.isinf(q).all())
        if offers.competitive:
            m = offers.n_sellers
            if spend_only:
                price = torch.sqrt(offers.phi * total_budget / m)
            else:
                hi = torch.sqrt(offers.phi * total_budget / m).clamp_min(2 * PRICE_FLOOR)
                lo = torch.full_like(hi, PRICE_FLOOR)

                def excess(p: Tensor) -> Tensor:
                    return demand(orders, p.unsqueeze(-2)).sum(-2) - m * p / offers.phi

                price = bisect_decreasing(excess, lo, hi)
            price = price.clamp_min(PRICE_FLOOR)
            bought = torch.where(total_budget.unsqueeze(-2) > 0, demand(orders, price.unsqueeze(-2)), 0.0)
            sold_total = bought.sum(-2)  # [B, J]
            sold = (sold_total / m).unsqueeze(-1).expand(*sold_total.shape, m)
            price_m = price.unsqueeze(-1).expand_as(sold)
        else:
            cap = offers.capacity
            assert cap is not None
            total_cap = cap.sum(-1)  # [B, J]
            if spend_only:
                price = total_budget / total_cap.clamp_min(1e-300)
            else:
                # demand(p) falls from sum q (p -> 0) to 0; the clearing price where demand = capacity
                hi = (total_budget / total_cap.clamp_min(1e-300)).clamp_min(2 * PRICE_FLOOR)
                lo = torch.full_like(hi, PRICE_FLOOR)

                def excess(p: Tensor) -> Tensor:
                    return demand(orders, p.unsqueeze(-2)).sum(-2) - total_cap

                price = bisect_decreasing(excess, lo, hi)
                # capacity exceeds everything buyers would take even at a zero price: no price clears, and the
                # market settles at the highest price at which every buyer's quantity cap is still served,
                # min_i b_ij / q_ij (excess supply stays unsold)
                active = (b > 0) & (q > 0)
                sum_q = torch.where(b > 0, q, 0.0).sum(-2)
                served = torch.where(active, b / q.clamp_min(1e-300), torch.inf).amin(-2)
                price = torch.where((sum_q <= total_cap) & torch.isfinite(served), served, price)
            trade_ok = (total_cap > 0) & (total_budget > 0)
            price = torch.where(trade_ok, price, PRICE_FLOOR).clamp_min(PRICE_FLOOR)
            bought = torch.where(trade_ok.unsqueeze(-2), demand(orders, price.unsqueeze(-2)), 0.0)
            # never sell more than capacity (bisection tolerance): scale down proportionally
            sold_total = bought.sum(-2)
            scale = torch.where(sold_total > total_cap, total_cap / sold_total.clamp_min(1e-300), 1.0)
            bought = bought * scale.unsqueeze(-2)
            sold_total = bought.sum(-2)
            sold = cap * (sold_total / total_cap.clamp_min(1e-300)).unsqueeze(-1)
            price_m = price.unsqueeze(-1).expand_as(sold)
        paid = torch.minimum(bought * price.unsqueeze(-2), b)
        produced = sold if offers.competitive else offers.capacity
        return Trade(price=price_m.contiguous(), bought=bought, paid=paid, sold=sold.contiguous(), produced=produced)
