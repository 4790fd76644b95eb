"""Pluggable market mechanisms behind one protocol (:class:`~abm_markets.markets.base.Market`).

Switching mechanism is one line of config (``market = "walrasian" | "posted" | "bilateral"``).
"""

from abm_markets.markets.base import Market, MarketNoise, Network, Offers, Orders, Trade
from abm_markets.markets.bilateral import BilateralMarket, make_network, network_from_graph, random_match
from abm_markets.markets.posted import PostedPriceMarket
from abm_markets.markets.walrasian import WalrasianMarket

MECHANISMS = ("walrasian", "posted", "bilateral")

__all__ = [
    "MECHANISMS",
    "BilateralMarket",
    "Market",
    "MarketNoise",
    "Network",
    "Offers",
    "Orders",
    "PostedPriceMarket",
    "Trade",
    "WalrasianMarket",
    "make_network",
    "network_from_graph",
    "random_match",
]
