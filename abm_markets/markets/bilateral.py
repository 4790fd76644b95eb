"""Bilateral trade along the edges of a networkx graph."""

from __future__ import annotations

import networkx as nx
import numpy as np
import torch
from torch import Tensor

from abm_markets.errors import ConfigError
from abm_markets.markets.base import PRICE_FLOOR, MarketNoise, Network, Offers, Orders, Trade, bisect_decreasing
from abm_markets.markets.posted import sequential_purchase


def make_network(
    kind: str, n_buyers: int, n_goods: int, n_sellers: int, *, p: float, rng: np.random.Generator
) -> nx.Graph:
    """Bipartite trading network between buyers ``("h", i)`` and sellers ``("f", j, m)``.

    Args:
        kind: ``complete`` (every buyer reaches every seller), ``random`` (each
            buyer-seller edge present with probability ``p``), ``ring`` (buyer i
            reaches sellers ``i mod M`` and ``(i + 1) mod M`` of every good).
        p: Edge probability for ``random``.
        rng: Generator for ``random``.

    Every buyer is guaranteed at least one seller of every good (one is added at
    random where the draw left none), so no good is out of reach for ever.
    """
    g = nx.Graph()
    buyers = [("h", i) for i in range(n_buyers)]
    sellers = [("f", j, m) for j in range(n_goods) for m in range(n_sellers)]
    g.add_nodes_from(buyers, bipartite=0)
    g.add_nodes_from(sellers, bipartite=1)
    for i in range(n_buyers):
        for j in range(n_goods):
            if kind == "complete":
                ms = list(range(n_sellers))
            elif kind == "ring":
                ms = sorted({i % n_sellers, (i + 1) % n_sellers})
            elif kind == "random":
                ms = [m for m in range(n_sellers) if rng.random() < p]
                if not ms:
                    ms = [int(rng.integers(n_sellers))]
            else:
                raise ConfigError(f"network kind {kind!r} is invalid; expected complete, random or ring")
            g.add_edges_from((("h", i), ("f", j, m)) for m in ms)
    return g


def network_from_graph(g: nx.Graph, n_buyers: int, n_goods: int, n_sellers: int) -> Network:
    """Access mask ``[H, J, M]`` from a bipartite graph built by :func:`make_network`."""
    access = torch.zeros((n_buyers, n_goods, n_sellers), dtype=torch.bool)
    for u, v in g.edges():
        h, f = (u, v) if u[0] == "h" else (v, u)
        access[h[1], f[1], f[2]] = True
    return Network(access)


def random_match(access: Tensor, uniform: Tensor) -> Tensor:
    """Pick one reachable seller of each good for every buyer, uniformly among neighbours.

    Args:
        access: ``[H, J, M]`` bool.
        uniform: ``[B, H, J]`` Uniform(0, 1) draws.

    Returns:
        One-hot ``[B, H, J, M]`` bool (all False where a buyer has no neighbour of that good).
    """
    a = access.to(torch.int64)
    n = a.sum(-1)  # [H, J]
    cum = torch.cumsum(a, dim=-1)  # [H, J, M]
    target = torch.floor(uniform * n).to(torch.int64).clamp_max((n - 1).clamp_min(0)) + 1  # [B, H, J]
    chosen = (cum.unsqueeze(0) < target.unsqueeze(-1)).sum(-1)  # [B, H, J]
    onehot = torch.nn.functional.one_hot(chosen.clamp_max(access.shape[-1] - 1), access.shape[-1]).bool()
    return onehot & (n > 0).unsqueeze(0).unsqueeze(-1)


class BilateralMarket:
    """Bilateral trade on a network with random matching and a stated bargaining rule.

    Each period every buyer meets one seller of each good, drawn uniformly among
    its neighbours in the graph. Trade happens only inside matches.

    Bargaining rule (competitive sellers): seller f serves the buyers matched to it
    at one price that splits the per-unit surplus between its average cost and its
    marginal cost at the quantity it sells, by its bargaining power ``theta``:
    ``p_f = ((1 + theta) / 2) * phi * Q_f`` with ``Q_f = sum_{i in match(f)} d_i(p_f)``.
    ``theta = 1`` is marginal-cost pricing (a complete graph with one seller per good
    then reproduces the Walrasian outcome); ``theta = 0`` is average-cost pricing
    (zero profit: the buyers get the whole surplus). With pure spending orders
    ``p_f = sqrt(kappa * phi * sum_i b_i)``, ``kappa = (1 + theta) / 2``.

    Deciding sellers post price and capacity; their matched buyers arrive in random
    order as in the posted-price market.
    """

    name = "bilateral"

    def __init__(self, network: Network, bargaining_power: float = 1.0) -> None:
        self.network = network
        self.theta = bargaining_power

    def clear(self, orders: Orders, offers: Offers, noise: MarketNoise) -> Trade:
        access = self.network.access.to(orders.budget.device)
        match = random_match(access, noise.match)  # [B, H, J, M]
        if not offers.competitive:
            assert offers.price is not None and offers.capacity is not None
            price = offers.price.clamp_min(PRICE_FLOOR)
            bought, paid, sold = sequential_purchase(orders, price, offers.capacity, noise.arrival, access=match)
            return Trade(price=price, bought=bought, paid=paid, sold=sold, produced=offers.capacity)

        kappa = 0.5 * (1.0 + self.theta)
        mf = match.to(orders.budget.dtype)
        b_f = (orders.budget.unsqueeze(-1) * mf).sum(1)  # [B, J, M]
        if bool(torch.isinf(orders.quantity).all()):
            price = torch.sqrt(kappa * offers.phi * b_f)
        else:
            q_match = torch.where(match, orders.quantity.unsqueeze(-1), 0.0)
            b_match = orders.budget.unsqueeze(-1) * mf

            def excess(p: Tensor) -> Tensor:
                d = torch.minimum(q_match, b_match / p.unsqueeze(1))
                return d.sum(1) - p / (kappa * offers.phi)

            hi = torch.sqrt(kappa * offers.phi * b_f).clamp_min(2 * PRICE_FLOOR)
            price = bisect_decreasing(excess, torch.full_like(hi, PRICE_FLOOR), hi)
        price = price.clamp_min(PRICE_FLOOR)
        p_buyer = (price.unsqueeze(1) * mf).sum(-1)  # [B, H, J]; 0 where unmatched
        matched = match.any(-1)
        bought = torch.where(
            matched & (orders.budget > 0),
            torch.minimum(orders.quantity, orders.budget / p_buyer.clamp_min(PRICE_FLOOR)),
            0.0,
        )
        paid = torch.minimum(bought * p_buyer, orders.budget)
        sold = (bought.unsqueeze(-1) * mf).sum(1)
        return Trade(price=price, bought=bought, paid=paid, sold=sold, produced=sold)
