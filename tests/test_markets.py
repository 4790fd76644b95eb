"""Market mechanisms: invariants on random inputs (hypothesis) and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from abm_markets.markets import (
    BilateralMarket,
    MarketNoise,
    Network,
    Offers,
    Orders,
    PostedPriceMarket,
    WalrasianMarket,
    make_network,
    network_from_graph,
)

DT = torch.float64


@st.composite
def market_case(draw: st.DrawFn) -> dict:
    b = draw(st.integers(1, 4))
    h = draw(st.integers(1, 6))
    j = draw(st.integers(1, 3))
    m = draw(st.integers(1, 3))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    zero_frac = draw(st.sampled_from([0.0, 0.3]))
    budget = rng.uniform(0.0, 5.0, (b, h, j)) * (rng.random((b, h, j)) > zero_frac)
    kind = draw(st.sampled_from(["spend", "quantity"]))
    quantity = np.full((b, h, j), np.inf) if kind == "spend" else rng.uniform(0.0, 3.0, (b, h, j))
    phi = draw(st.floats(0.05, 5.0))
    price = rng.uniform(0.05, 4.0, (b, j, m))
    capacity = rng.uniform(0.0, 6.0, (b, j, m))
    net_kind = draw(st.sampled_from(["complete", "random", "ring"]))
    theta = draw(st.floats(0.0, 1.0))
    return {
        "orders": Orders(torch.tensor(budget, dtype=DT), torch.tensor(quantity, dtype=DT)),
        "phi": phi,
        "m": m,
        "price": torch.tensor(price, dtype=DT),
        "capacity": torch.tensor(capacity, dtype=DT),
        "noise": MarketNoise(torch.tensor(rng.random((b, h)), dtype=DT), torch.tensor(rng.random((b, h, j)), dtype=DT)),
        "network": network_from_graph(make_network(net_kind, h, j, m, p=0.5, rng=rng), h, j, m),
        "theta": theta,
    }


def _mechanisms(case: dict) -> list[tuple[str, object, Offers]]:
    comp = Offers(phi=case["phi"], n_sellers=case["m"])
    dec = Offers(phi=case["phi"], price=case["price"], capacity=case["capacity"], n_sellers=case["m"])
    bil = BilateralMarket(case["network"], case["theta"])
    return [
        ("walrasian-competitive", WalrasianMarket(), comp),
        ("walrasian-decision", WalrasianMarket(), dec),
        ("posted", PostedPriceMarket(), dec),
        ("bilateral-competitive", bil, comp),
        ("bilateral-decision", bil, dec),
    ]


def _slice_case(case: dict, i: int) -> tuple[Orders, MarketNoise, torch.Tensor, torch.Tensor]:
    o = Orders(case["orders"].budget[i : i + 1], case["orders"].quantity[i : i + 1])
    n = MarketNoise(case["noise"].arrival[i : i + 1], case["noise"].match[i : i + 1])
    return o, n, case["price"][i : i + 1], case["capacity"][i : i + 1]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market_case())
def test_market_invariants(case: dict) -> None:
    orders = case["orders"]
    for name, market, offers in _mechanisms(case):
        tr = market.clear(orders, offers, case["noise"])
        # goods are conserved: what buyers get is what sellers sold; nobody sells more than produced
        assert torch.allclose(tr.bought.sum(1), tr.sold.sum(-1), rtol=1e-9, atol=1e-9), name
        assert bool((tr.sold <= tr.produced * (1 + 1e-9) + 1e-12).all()), name
        # nobody pays more than their budget; payments are price times quantity
        assert bool((tr.paid <= orders.budget * (1 + 1e-12) + 1e-12).all()), name
        assert bool((tr.bought <= orders.quantity * (1 + 1e-9) + 1e-12).all()), name
        assert bool((tr.bought >= 0).all() and (tr.paid >= 0).all()), name
        # prices finite and positive
        assert bool(torch.isfinite(tr.price).all() and (tr.price > 0).all()), name
        assert bool(torch.isfinite(tr.good_price()).all() and (tr.good_price() > 0).all()), name
        # revenue equals payments received
        assert math.isclose(float(tr.paid.sum()), float(tr.revenue().sum()), rel_tol=1e-7, abs_tol=1e-9), name


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(market_case())
def test_batch_equals_each_alone(case: dict) -> None:
    for name, market, offers in _mechanisms(case):
        full = market.clear(case["orders"], offers, case["noise"])
        for i in range(case["orders"].budget.shape[0]):
            o, n, p, c = _slice_case(case, i)
            off = (
                offers
                if offers.competitive
                else Offers(phi=offers.phi, price=p, capacity=c, n_sellers=offers.n_sellers)
            )
            alone = market.clear(o, off, n)
            for field in ("price", "bought", "paid", "sold", "produced"):
                a, b = getattr(full, field)[i : i + 1], getattr(alone, field)
                assert torch.allclose(a, b, rtol=1e-9, atol=1e-12), (name, field)


def test_walrasian_closed_form_and_bisection_agree() -> None:
    """Spending orders have p = sqrt(phi * sum b / M); the bisection path must find the same price."""
    g = torch.Generator().manual_seed(3)
    b = torch.rand((5, 4, 2), generator=g, dtype=DT) * 3
    offers = Offers(phi=0.7, n_sellers=2)
    spend = WalrasianMarket().clear(Orders(b, torch.full_like(b, math.inf)), offers)
    expected = torch.sqrt(0.7 * b.sum(1) / 2)
    assert torch.allclose(spend.price[..., 0], expected, rtol=1e-12)
    # quantity caps that never bind: same allocation through the bisection branch
    loose = WalrasianMarket().clear(Orders(b, torch.full_like(b, 1e6)), offers)
    assert torch.allclose(loose.price, spend.price, rtol=1e-9)
    # supply equals demand at the clearing price
    assert torch.allclose(spend.sold.sum(-1), 2 * spend.price[..., 0] / 0.7, rtol=1e-12)


def test_walrasian_binding_quantity_caps_clear() -> None:
    """With binding quantity caps the price still equates demand and marginal-cost supply."""
    b = torch.tensor([[[4.0], [4.0]]], dtype=DT)
    q = torch.tensor([[[0.5], [10.0]]], dtype=DT)
    tr = WalrasianMarket().clear(Orders(b, q), Offers(phi=1.0))
    p = float(tr.price[0, 0, 0])
    demand = min(0.5, 4 / p) + min(10.0, 4 / p)
    assert math.isclose(demand, p / 1.0, rel_tol=1e-9)
    # analytic: buyer 1 capped at 0.5, buyer 2 spends 4: 0.5 + 4/p = p -> p = (0.5 + sqrt(0.25 + 16)) / 2
    assert math.isclose(p, (0.5 + math.sqrt(16.25)) / 2, rel_tol=1e-9)


def test_posted_price_rations_capacity_in_arrival_order() -> None:
    b = torch.tensor([[[3.0], [3.0], [3.0]]], dtype=DT)
    offers = Offers(phi=1.0, price=torch.tensor([[[1.0]]], dtype=DT), capacity=torch.tensor([[[5.0]]], dtype=DT))
    arrival = torch.tensor([[0.9, 0.1, 0.5]], dtype=DT)  # buyer 1, then 2, then 0
    tr = PostedPriceMarket().clear(
        Orders(b, torch.full_like(b, math.inf)), offers, MarketNoise(arrival, torch.zeros(1, 3, 1, dtype=DT))
    )
    assert tr.bought[0, :, 0].tolist() == [0.0, 3.0, 2.0]
    assert float(tr.unsold[0, 0, 0]) == 0.0
    # capacity left unsold when demand is short
    offers2 = Offers(phi=1.0, price=torch.tensor([[[2.0]]], dtype=DT), capacity=torch.tensor([[[5.0]]], dtype=DT))
    tr2 = PostedPriceMarket().clear(
        Orders(b, torch.full_like(b, math.inf)), offers2, MarketNoise(arrival, torch.zeros(1, 3, 1, dtype=DT))
    )
    assert torch.allclose(tr2.unsold, torch.tensor([[[0.5]]], dtype=DT))
    assert math.isclose(float(tr2.profit(1.0)), 2.0 * 4.5 - 0.5 * 25.0)


def test_posted_cheapest_seller_first() -> None:
    b = torch.tensor([[[6.0]]], dtype=DT)
    offers = Offers(
        phi=1.0,
        price=torch.tensor([[[2.0, 1.0]]], dtype=DT),
        capacity=torch.tensor([[[10.0, 2.0]]], dtype=DT),
        n_sellers=2,
    )
    tr = PostedPriceMarket().clear(
        Orders(b, torch.full_like(b, math.inf)),
        offers,
        MarketNoise(torch.zeros(1, 1, dtype=DT), torch.zeros(1, 1, 1, dtype=DT)),
    )
    # 2 units at price 1 from seller 1, then (6 - 2) / 2 = 2 units at price 2 from seller 0
    assert tr.sold[0, 0].tolist() == [2.0, 2.0]
    assert float(tr.bought.sum()) == 4.0


def test_bilateral_complete_marginal_cost_equals_walrasian() -> None:
    g = torch.Generator().manual_seed(0)
    b = torch.rand((3, 5, 2), generator=g, dtype=DT)
    orders = Orders(b, torch.full_like(b, math.inf))
    offers = Offers(phi=0.5)
    noise = MarketNoise(torch.rand((3, 5), generator=g, dtype=DT), torch.rand((3, 5, 2), generator=g, dtype=DT))
    w = WalrasianMarket().clear(orders, offers, noise)
    bil = BilateralMarket(Network.complete(5, 2, 1), bargaining_power=1.0).clear(orders, offers, noise)
    for f in ("price", "bought", "paid", "sold"):
        assert torch.allclose(getattr(w, f), getattr(bil, f), rtol=1e-12), f


@pytest.mark.parametrize("theta", [0.0, 0.5, 1.0])
def test_bilateral_bargaining_rule(theta: float) -> None:
    """p_f = ((1 + theta)/2) phi Q_f; theta = 0 is average-cost pricing with zero profit."""
    b = torch.tensor([[[2.0], [1.0]]], dtype=DT)
    orders = Orders(b, torch.full_like(b, math.inf))
    tr = BilateralMarket(Network.complete(2, 1, 1), theta).clear(
        orders, Offers(phi=0.8), MarketNoise(torch.zeros(1, 2, dtype=DT), torch.zeros(1, 2, 1, dtype=DT))
    )
    q = float(tr.sold.sum())
    p = float(tr.price[0, 0, 0])
    assert math.isclose(p, 0.5 * (1 + theta) * 0.8 * q, rel_tol=1e-12)
    if theta == 0.0:
        assert abs(float(tr.profit(0.8).sum())) < 1e-12


def test_bilateral_trades_only_along_edges() -> None:
    rng = np.random.default_rng(1)
    net = network_from_graph(make_network("random", 6, 1, 3, p=0.3, rng=rng), 6, 1, 3)
    g = torch.Generator().manual_seed(2)
    b = torch.rand((50, 6, 1), generator=g, dtype=DT) + 0.1
    noise = MarketNoise(torch.rand((50, 6), generator=g, dtype=DT), torch.rand((50, 6, 1), generator=g, dtype=DT))
    market = BilateralMarket(net, 1.0)
    from abm_markets.markets import random_match

    match = random_match(net.access, noise.match)
    assert bool((match.sum(-1) == 1).all())  # every buyer meets exactly one seller of each good
    assert bool((match <= net.access.unsqueeze(0)).all())  # and only neighbours
    tr = market.clear(Orders(b, torch.full_like(b, math.inf)), Offers(phi=1.0, n_sellers=3), noise)
    # a seller nobody can reach sells nothing
    reachable = net.access.any(0)  # [J, M]
    assert bool((tr.sold[:, ~reachable] == 0).all())
    # matching is uniform among neighbours: frequencies close to 1/degree
    many = random_match(net.access, torch.rand((20000, 6, 1), generator=g, dtype=DT)).double().mean(0)
    deg = net.access.sum(-1, keepdim=True).double()
    expected = net.access.double() / deg
    assert torch.allclose(many, expected, atol=0.02)


def test_walrasian_excess_capacity_prices_at_highest_served_price() -> None:
    """Deciding sellers with more capacity than buyers' quantity caps: price min_i b_i/q_i, excess unsold."""
    b = torch.tensor([[[4.0], [3.0]]], dtype=DT)
    q = torch.tensor([[[1.0], [2.0]]], dtype=DT)
    offers = Offers(phi=1.0, price=torch.tensor([[[1.0]]], dtype=DT), capacity=torch.tensor([[[10.0]]], dtype=DT))
    tr = WalrasianMarket().clear(Orders(b, q), offers)
    assert float(tr.price[0, 0, 0]) == 1.5  # min(4/1, 3/2)
    assert tr.bought[0, :, 0].tolist() == [1.0, 2.0]
    assert float(tr.unsold[0, 0, 0]) == 7.0
