"""The batched investment engine: known answers, accounting identities, determinism."""

from __future__ import annotations

import math

import pytest
import torch

from abm_markets.agents.rules import steady_state_share
from abm_markets.engine import (
    InvestmentConfig,
    InvestmentEconomy,
    make_economy,
    shares_from_logits,
)
from abm_markets.engine.economy import AgentGroup, EconomySpec, Good
from abm_markets.engine.shocks import persistent_chain
from abm_markets.errors import ConfigError, UserError

DT = torch.float64


@pytest.mark.parametrize(
    "overrides",
    [
        {"formulation": "planner"},
        {"formulation": "planner", "n_households": 4, "n_capital_goods": 3},
        {"formulation": "market", "market": "walrasian", "n_households": 3, "n_capital_goods": 2},
        {"formulation": "market", "market": "walrasian", "firms_per_good": 3, "n_households": 2},
        {"formulation": "market", "market": "posted", "n_households": 5, "n_capital_goods": 2},
        {"formulation": "market", "market": "bilateral", "n_households": 4, "n_capital_goods": 2},
    ],
)
def test_steady_state_is_a_fixed_point(overrides: dict) -> None:
    """From the analytic steady state, steady-state shares keep capital and prices constant (Z = 1)."""
    cfg = InvestmentConfig(tfp_values=(1.0,), **overrides)
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(0)
    state = eco.initial_state(3, g)
    a = torch.full((3, cfg.n_households, cfg.n_capital_goods), steady_state_share(cfg), dtype=DT)
    for _ in range(30):
        state, out = eco.step(state, {"households": a}, g)
    assert torch.allclose(state.capital, torch.full_like(state.capital, eco.k_ss), rtol=1e-10)
    m = eco.n_firms
    p_ss = cfg.phi * cfg.n_households * cfg.delta * eco.k_ss / m
    assert torch.allclose(out.price, torch.full_like(out.price, p_ss), rtol=1e-10)


def test_planner_pooling_accounting() -> None:
    """Resources pooled per good equal phi/2 I_j^2; shares by contribution; C = Y - spending."""
    cfg = InvestmentConfig(n_households=5, n_capital_goods=3)
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(1)
    state = eco.initial_state(4, g)
    a = torch.rand((4, 5, 3), generator=g, dtype=DT) * 0.3
    _, out = eco.step(state, {"households": a}, g)
    pooled = out.spending.sum(1)
    total_i = out.investment.sum(1)
    assert torch.allclose(pooled, 0.5 * cfg.phi * total_i**2, rtol=1e-12)
    assert torch.allclose(out.investment / total_i.unsqueeze(1), out.spending / pooled.unsqueeze(1), rtol=1e-12)
    assert torch.allclose(out.consumption, out.output - out.spending.sum(-1), rtol=1e-12)
    assert torch.allclose(out.spending, a * out.output.unsqueeze(-1), rtol=1e-12)


def test_market_accounting_and_firm_profit() -> None:
    cfg = InvestmentConfig(formulation="market", n_households=4, n_capital_goods=2)
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(2)
    state = eco.initial_state(3, g)
    a = torch.rand((3, 4, 2), generator=g, dtype=DT) * 0.2
    _, out = eco.step(state, {"households": a}, g)
    # Walrasian competitive: p = sqrt(phi * R_j), I_ij = x_ij / p, firm supply p / phi
    r = out.spending.sum(1)
    assert torch.allclose(out.price, torch.sqrt(cfg.phi * r), rtol=1e-12)
    assert torch.allclose(out.investment, out.spending / out.price.unsqueeze(1), rtol=1e-12)
    assert torch.allclose(
        out.profit[..., 0], out.price**2 / cfg.phi - 0.5 * cfg.phi * (out.price / cfg.phi) ** 2, rtol=1e-12
    )


def test_shares_are_projected_onto_the_simplex() -> None:
    cfg = InvestmentConfig(n_households=2, n_capital_goods=3)
    eco = InvestmentEconomy(cfg)
    state = eco.initial_state(1, torch.Generator().manual_seed(0))
    a = torch.tensor([[[0.9, 0.9, 0.9], [-1.0, 2.0, 0.1]]], dtype=DT)
    _, out = eco.step(state, {"households": a}, torch.Generator().manual_seed(0))
    assert torch.allclose(out.spending.sum(-1), out.output)  # spends everything, no more
    assert bool((out.consumption >= 0).all())
    assert out.overshoot[0].tolist() == pytest.approx([1.7, 0.1])  # clipped to [0, 1] first


def test_quantity_actions_planner_and_penalty() -> None:
    cfg = InvestmentConfig(action="quantities", budget="penalty", budget_penalty=2.0, n_households=2)
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(0)
    state = eco.initial_state(1, g)
    feasible = torch.tensor([[[0.5], [1.5]]], dtype=DT)
    _, out = eco.step(state, {"households": feasible}, g)
    assert torch.allclose(out.investment, feasible, rtol=1e-12)  # feasible requests are delivered exactly
    assert float(out.overshoot.abs().max()) == 0.0
    huge = torch.tensor([[[50.0], [1.0]]], dtype=DT)
    _, out = eco.step(state, {"households": huge}, g)
    assert bool((out.consumption >= -1e-12).all())
    assert float(out.overshoot[0, 0]) > 0
    assert torch.allclose(out.reward_households, out.utility - 2.0 * out.overshoot)


def test_quantity_actions_market_respect_budget() -> None:
    cfg = InvestmentConfig(formulation="market", action="quantities", n_households=3, n_capital_goods=2)
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(4)
    state = eco.initial_state(2, g)
    a = torch.rand((2, 3, 2), generator=g, dtype=DT) * 3.0
    _, out = eco.step(state, {"households": a}, g)
    assert bool((out.spending.sum(-1) <= out.output * (1 + 1e-12)).all())
    assert bool((out.investment <= a * (1 + 1e-9)).all())


def test_tfp_chain_frequencies_match_transition() -> None:
    chain = persistent_chain((0.8, 1.0, 1.2), 0.7)
    g = torch.Generator().manual_seed(5)
    idx = torch.zeros(200_000, dtype=torch.long)
    counts = torch.zeros(3, 3)
    for _ in range(3):
        nxt = chain.step(idx, torch.rand(idx.shape, generator=g, dtype=DT))
        counts.index_put_((idx, nxt), torch.ones_like(idx, dtype=torch.float32), accumulate=True)
        idx = nxt
    freq = counts / counts.sum(1, keepdim=True)
    assert torch.allclose(freq.double(), chain.transition, atol=0.01)
    assert torch.allclose(chain.stationary(), torch.full((3,), 1 / 3, dtype=DT), atol=1e-12)


def test_determinism_and_seed_sensitivity() -> None:
    cfg = InvestmentConfig(n_households=3, formulation="market", market="posted", k_init_spread=0.2)

    def run(seed: int) -> torch.Tensor:
        eco = InvestmentEconomy(cfg)
        g = torch.Generator().manual_seed(seed)
        state = eco.initial_state(8, g)
        for _ in range(20):
            a = torch.rand((8, 3, 1), generator=g, dtype=DT) * 0.2
            state, _ = eco.step(state, {"households": a}, g)
        return state.capital

    assert torch.equal(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_float32_matches_float64() -> None:
    # float32 and float64 uniform draws differ, so shocks are switched off for this comparison
    cfg = InvestmentConfig(n_households=4, n_capital_goods=2, tfp_values=(1.0,), k_init=20.0)
    out = {}
    for dt in (torch.float32, torch.float64):
        eco = InvestmentEconomy(cfg, dtype=dt)
        g = torch.Generator().manual_seed(0)
        state = eco.initial_state(2, g)
        for _ in range(10):
            state, _ = eco.step(state, {"households": torch.full((2, 4, 2), 0.05, dtype=dt)}, g)
        out[dt] = state.capital.double()
    assert torch.allclose(out[torch.float32], out[torch.float64], rtol=1e-5)


def test_observations_and_spec() -> None:
    cfg = InvestmentConfig(
        n_households=3, n_capital_goods=2, household_obs=("own_capital", "all_tfp", "prices", "time")
    )
    eco = make_economy("InvestmentPlanner-v1", cfg)
    state = eco.initial_state(5, torch.Generator().manual_seed(0))
    obs = eco.observe(state)
    assert obs.shape == (5, 3, eco.observation_size())
    assert eco.observation_size() == 2 + 3 + 2 + 1
    assert torch.allclose(obs[..., :2], torch.ones(5, 3, 2, dtype=DT))  # capital at steady state, normalised
    assert eco.spec.group("households").count == 3
    with pytest.raises(UserError, match="did you mean"):
        make_economy("InvestmentPlaner-v1", cfg)


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="household_obs"):
        InvestmentConfig(household_obs=("own_capital", "neighbours_gossip"))
    with pytest.raises(ConfigError, match="firms = 'decision'"):
        InvestmentConfig(firms="decision")
    eco = InvestmentEconomy(InvestmentConfig(n_households=2))
    state = eco.initial_state(1)
    with pytest.raises(ValueError, match="expected"):
        eco.step(state, {"households": torch.zeros(1, 3, 1)})
    with pytest.raises(ConfigError, match="nothing produces"):
        EconomySpec(
            id="Bad-v1",
            groups=(AgentGroup("households", 1, "x", ("telepathy",), "u"),),
            goods=(Good("k", "pool", "households", "pool"),),
            markets=("pool",),
            shocks=(),
        )
    with pytest.raises(ConfigError, match="not a group"):
        EconomySpec(id="Bad-v1", groups=(), goods=(Good("k", "firms", "households", "m"),), markets=("m",), shocks=())


def test_deciding_firms_post_price_and_capacity() -> None:
    cfg = InvestmentConfig(formulation="market", market="posted", firms="decision", n_households=2)
    eco = InvestmentEconomy(cfg)
    g = torch.Generator().manual_seed(0)
    state = eco.initial_state(1, g)
    firms = torch.tensor([[[[1.0, 0.5]]]], dtype=DT)  # price 1, capacity 0.5
    _, out = eco.step(state, {"households": torch.full((1, 2, 1), 0.2, dtype=DT), "firms": firms}, g)
    assert math.isclose(float(out.sold.sum()), min(0.5, float(out.spending.sum())), rel_tol=1e-12)
    assert float(out.produced.sum()) == 0.5
    assert math.isclose(float(out.profit.sum()), float(out.sold.sum()) * 1.0 - 0.5 * cfg.phi * 0.25, rel_tol=1e-12)


def test_softmax_shares_in_simplex() -> None:
    s = shares_from_logits(torch.randn(10, 4, 3 + 1, generator=torch.Generator().manual_seed(0)))
    assert bool((s > 0).all()) and bool((s.sum(-1) < 1).all())


def test_tuple_settings_accept_toml_style_lists() -> None:
    cfg = InvestmentConfig.from_overrides({"tfp_values": "[0.8, 1.2]", "household_obs": '["own_capital", "prices"]'})
    assert cfg.tfp_values == (0.8, 1.2)
    assert cfg.household_obs == ("own_capital", "prices")
    plain = InvestmentConfig.from_overrides({"household_obs": "own_capital,own_tfp"})
    assert plain.household_obs == ("own_capital", "own_tfp")


def test_registered_economy_ids() -> None:
    from abm_markets.engine import economy_ids

    assert {"InvestmentPlanner-v1", "InvestmentMarket-v1", "LogitDuopoly-v1"} <= set(economy_ids())
