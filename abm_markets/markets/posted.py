"""Posted prices: sellers post price and capacity, buyers arrive one by one."""

from __future__ import annotations

import torch
from torch import Tensor

from abm_markets.markets.base import PRICE_FLOOR, MarketNoise, Offers, Orders, Trade


def sequential_purchase(
    orders: Orders, price: Tensor, capacity: Tensor, arrival: Tensor, access: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Buyers arrive in ``arrival`` order and buy from the cheapest reachable seller with stock left.

    Args:
        orders: Spending and quantity caps ``[B, H, J]``.
        price: Posted prices ``[B, J, M]`` (positive).
        capacity: Stock available ``[B, J, M]``.
        arrival: Uniform draws ``[B, H]``; lower arrives first.
        access: Optional ``[B, H, J, M]`` mask of sellers each buyer can reach.

    Returns:
        ``(bought [B, H, J], paid [B, H, J], sold [B, J, M])``.
    """
    bsz, h, _ = orders.budget.shape
    order = torch.argsort(arrival, dim=-1, stable=True)  # [B, H]
    seller_rank = torch.argsort(price, dim=-1, stable=True)  # cheapest first, [B, J, M]
    left = capacity.clone()
    bought = torch.zeros_like(orders.budget)
    paid = torch.zeros_like(orders.budget)
    batch = torch.arange(bsz, device=price.device)
    for k in range(h):
        who = order[:, k]  # [B]
        b_rem = orders.budget[batch, who]  # [B, J]
        q_rem = orders.quantity[batch, who]
        got = torch.zeros_like(b_rem)
        spent = torch.zeros_like(b_rem)
        for r in range(price.shape[-1]):
            m = seller_rank[..., r]  # [B, J]
            p = torch.gather(price, -1, m.unsqueeze(-1)).squeeze(-1)
            stock = torch.gather(left, -1, m.unsqueeze(-1)).squeeze(-1)
            if access is not None:
                ok = torch.gather(access[batch, who], -1, m.unsqueeze(-1)).squeeze(-1)
                stock = torch.where(ok, stock, 0.0)
            x = torch.minimum(torch.minimum(q_rem, b_rem / p), stock).clamp_min(0.0)
            cost = torch.minimum(x * p, b_rem)
            got, spent = got + x, spent + cost
            b_rem, q_rem = (b_rem - cost).clamp_min(0.0), q_rem - x
            left = left.scatter_add(-1, m.unsqueeze(-1), -x.unsqueeze(-1))
        bought[batch, who] = got
        paid[batch, who] = spent
    sold = (capacity - left).clamp_min(0.0)
    return bought, paid, sold


class PostedPriceMarket:
    """Posted-price market with capacity rationing.

    Each seller ``(j, m)`` posts a price ``P_jm`` and produces a capacity ``c_jm``
    before trade (so unsold output ``c_jm - sold_jm`` is recorded and wasted).
    Buyers arrive in a random order (the Mesa activation order when driven by the
    Mesa model); each buys ``min(q_ij, b_ij / P)`` from the cheapest seller of good j
    with stock left, then moves to the next cheapest with what remains.

    Competitive sellers follow the rule "post the price at which my marginal-cost
    supply would have met last period's demand": the caller passes ``price`` from
    ``sqrt(phi * S_{t-1})`` (``S`` = spending buyers wanted to place with the firm last
    period, rationed demand included) and capacity ``P / phi``.
    """

    name = "posted"

    def clear(self, orders: Orders, offers: Offers, noise: MarketNoise, access: Tensor | None = None) -> Trade:
        if offers.price is None or offers.capacity is None:
            raise ValueError("the posted-price market needs posted prices and capacities from every seller")
        price = offers.price.clamp_min(PRICE_FLOOR)
        bought, paid, sold = sequential_purchase(orders, price, offers.capacity, noise.arrival, access)
        return Trade(price=price, bought=bought, paid=paid, sold=sold, produced=offers.capacity)
