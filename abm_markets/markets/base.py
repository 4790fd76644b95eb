"""The market protocol shared by every mechanism.

A market takes the orders of one period and returns prices and allocations.
Shapes: ``B`` economies, ``H`` buyers, ``J`` goods, ``M`` sellers per good.

Buyers submit, per good, a *spending cap* ``b_ij`` (units of the final good they
are willing to pay) and a *quantity cap* ``q_ij`` (``inf`` for pure spending
orders). Their demand at unit price ``p`` is ``d_ij(p) = min(q_ij, b_ij / p)``,
so nobody ever pays more than ``b_ij``.

Sellers are either *competitive* (marginal-cost supply ``Q = p / phi`` from the
cost ``phi/2 Q^2``) or *deciding*: they post a price and a capacity (the
quantity they produce this period).

Randomness (buyer arrival order, matches) enters as explicit uniform draws in
:class:`MarketNoise`, so a batch of economies gives the same result as each
economy alone given the same draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import torch
from torch import Tensor

PRICE_FLOOR = 1e-12
"""Price reported when nothing trades (prices stay finite and positive)."""


class Orders(NamedTuple):
    """Buyers' orders: spending caps and quantity caps, each ``[B, H, J]``, nonnegative."""

    budget: Tensor
    quantity: Tensor


class Offers(NamedTuple):
    """Sellers' side, ``[B, J, M]``.

    Attributes:
        phi: Cost parameter (cost ``phi/2 Q^2`` per seller).
        price: Posted prices (deciding sellers) or None (competitive).
        capacity: Capacities (deciding sellers) or None (competitive).
        n_sellers: ``M``, sellers per good (needed when price/capacity are None).
    """

    phi: float
    price: Tensor | None = None
    capacity: Tensor | None = None
    n_sellers: int = 1

    @property
    def competitive(self) -> bool:
        return self.capacity is None


class MarketNoise(NamedTuple):
    """Uniform(0, 1) draws consumed by random mechanisms.

    Attributes:
        arrival: ``[B, H]``: buyers arrive in ascending order of these draws (posted price).
        match: ``[B, H, J]``: picks a neighbouring seller of each good (bilateral).
    """

    arrival: Tensor
    match: Tensor


class Trade(NamedTuple):
    """Outcome of one period of trade.

    Attributes:
        price: Transaction price per seller ``[B, J, M]`` (posted or clearing price).
        bought: Units bought by each buyer ``[B, H, J]``.
        paid: Amount paid by each buyer ``[B, H, J]`` (``<= budget``).
        sold: Units sold by each seller ``[B, J, M]``.
        produced: Units produced by each seller ``[B, J, M]`` (``>= sold``; posted sellers produce capacity).
    """

    price: Tensor
    bought: Tensor
    paid: Tensor
    sold: Tensor
    produced: Tensor

    @property
    def unsold(self) -> Tensor:
        return self.produced - self.sold

    def revenue(self) -> Tensor:
        """Seller revenue ``[B, J, M]``."""
        return self.price * self.sold

    def profit(self, phi: float) -> Tensor:
        """Seller profit ``p Q_sold - phi/2 Q_produced^2`` ``[B, J, M]``."""
        return self.revenue() - 0.5 * phi * self.produced.square()

    def good_price(self) -> Tensor:
        """Average transaction price per good ``[B, J]`` (mean posted price where nothing sold)."""
        sold = self.sold.sum(-1)
        rev = self.revenue().sum(-1)
        return torch.where(sold > 0, rev / sold.clamp_min(1e-300), self.price.mean(-1))


class Market(Protocol):
    """A market mechanism."""

    name: str

    def clear(self, orders: Orders, offers: Offers, noise: MarketNoise) -> Trade:
        """Clear one period of trade for a batch of economies."""
        ...


def demand(orders: Orders, price: Tensor) -> Tensor:
    """``d_ij(p) = min(q_ij, b_ij / p)`` with ``price`` broadcastable to ``[B, H, J]``."""
    return torch.minimum(orders.quantity, orders.budget / price)


def bisect_decreasing(f, lo: Tensor, hi: Tensor, iters: int = 100) -> Tensor:
    """Root of a decreasing function ``f`` on ``[lo, hi]`` elementwise (bisection in log space when ``lo > 0``).

    ``f(lo) >= 0 >= f(hi)`` is assumed; returns the midpoint of the final bracket.
    """
    lo, hi = lo.clone(), hi.clone()
    for _ in range(iters):
        mid = torch.sqrt(lo * hi)
        pos = f(mid) > 0
        lo = torch.where(pos, mid, lo)
        hi = torch.where(pos, hi, mid)
    return torch.sqrt(lo * hi)


@dataclass(frozen=True)
class Network:
    """Who can trade with whom: ``access[h, j, m]`` is True if buyer h may buy good j from seller m.

    Built from a networkx bipartite graph with buyer nodes ``("h", i)`` and seller
    nodes ``("f", j, m)``; see :func:`abm_markets.markets.bilateral.make_network`.
    """

    access: Tensor  # [H, J, M] bool

    @staticmethod
    def complete(h: int, j: int, m: int, device: torch.device | str = "cpu") -> Network:
        return Network(torch.ones((h, j, m), dtype=torch.bool, device=device))
