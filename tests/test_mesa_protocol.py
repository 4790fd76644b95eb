"""The Mesa model of any protocol economy (:class:`abm_markets.mesa_model.EconomyModel`) and its SolaraViz page.

* the logit duopoly with constant rules, and with rules reading their observations, follows the engine driven
  directly with the same seed exactly;
* on the investment economy (Walrasian market, planner: the activation order does not matter) it gives the
  values of ``InvestmentModel(mode="engine")``;
* a toy economy with a non-agent group, per-good and per-agent logged variables checks the generic parts:
  batched sources, attributes, reporters, errors;
* the page builds and renders for a duopoly model.
"""

from __future__ import annotations

import dataclasses
import types
import warnings

import gymnasium
import numpy as np
import pytest
import torch

from abm_markets.agents import CompetitiveSupply, ConstantAction, FixedShare, SteadyStateShare
from abm_markets.engine import InvestmentConfig, make_economy
from abm_markets.engine.pricing import LogitDuopolyConfig
from abm_markets.engine.protocol import BatchedEconomy, Block, DecisionGroup, LoggedVariable, parse_information
from abm_markets.errors import ConfigError, UserError
from abm_markets.mesa_model import EconomyAgent, EconomyModel
from abm_markets.model import InvestmentModel

T = 25


# ------------------------------------------------------------------------------------------- duopoly
def _duopoly(**kw):
    return make_economy("LogitDuopoly-v1", LogitDuopolyConfig(**kw))


def _engine_duopoly(eco, seed: int, policy, periods: int = T):
    """The engine driven directly: ``policy(obs [2, D]) -> actions [2]``."""
    g = torch.Generator().manual_seed(seed)
    state = eco.initial_state(1, g)
    prices, profits = [], []
    for _ in range(periods):
        acts = torch.as_tensor(policy(eco.observe(state, "firms")[0].double().numpy())).unsqueeze(0)
        state, out = eco.step(state, {"firms": acts}, g)
        prices.append(out.prices[0].tolist())
        profits.append(out.profits[0].tolist())
    return np.asarray(prices), np.asarray(profits), state


def _model_path(model: EconomyModel, periods: int = T):
    prices, profits = [], []
    for _ in range(periods):
        model.step()
        firms = model.agents_of("firms")
        prices.append([f.price for f in firms])
        profits.append([f.profit for f in firms])
    return np.asarray(prices), np.asarray(profits)


def test_duopoly_constant_rules_reproduce_the_engine_exactly():
    eco = _duopoly()
    model = EconomyModel(eco, {"firms": [ConstantAction(3), ConstantAction(11)]}, seed=7)
    prices, profits = _model_path(model)
    ref_p, ref_pi, ref_state = _engine_duopoly(eco, 7, lambda obs: np.array([3, 11]))
    np.testing.assert_array_equal(prices, ref_p)
    np.testing.assert_array_equal(profits, ref_pi)
    for name in ("prices", "noise", "t"):
        assert torch.equal(getattr(model.state, name), getattr(ref_state, name))
    assert model.actions["firms"].dtype == torch.long and tuple(model.actions["firms"].shape) == (1, 2)
    assert [a.action.tolist() for a in model.agents_of("firms")] == [3, 11]
    assert [a.name for a in model.agents_of("firms")] == ["firm_0", "firm_1"]
    np.testing.assert_array_equal([a.reward for a in model.agents_of("firms")], ref_pi[-1])


def test_constant_action_rule_on_numpy_and_torch_batches():
    idx, price = ConstantAction(4), ConstantAction([1.5, 2.0])
    assert idx.act(np.zeros(3)).tolist() == 4 and idx.act(np.zeros((5, 3))).shape == (5,)
    t = idx.act(torch.zeros(2, 3))
    assert t.dtype == torch.long and t.tolist() == [4, 4]
    assert price.act(torch.zeros(2, 3, dtype=torch.float32)).dtype == torch.float32
    assert price.act(np.zeros((2, 3))).shape == (2, 2)
    with pytest.raises(ConfigError):
        ConstantAction("high")


class MatchRival:
    """Grid index closest to the rival's last (observed) price: reads the observation."""

    def __init__(self, grid: np.ndarray) -> None:
        self.grid = grid

    def act(self, obs):
        return np.array([int(np.argmin(np.abs(self.grid - obs[1])))])


@pytest.mark.parametrize("observation", ["full", "noisy"])
def test_duopoly_rules_reading_observations_follow_the_engine(observation):
    eco = _duopoly(observation=observation, noise_sd=0.2)
    rule = MatchRival(eco.grid.numpy())
    model = EconomyModel(eco, {"firms": rule}, seed=3)
    prices, profits = _model_path(model)
    ref_p, ref_pi, _ = _engine_duopoly(eco, 3, lambda obs: np.array([rule.act(o)[0] for o in obs]))
    np.testing.assert_array_equal(prices, ref_p)
    np.testing.assert_array_equal(profits, ref_pi)
    np.testing.assert_array_equal(model.agents_of("firms")[0].observation, model.observations["firms"][0])


def test_duopoly_continuous_prices_from_a_batched_source():
    eco = _duopoly(action="continuous")
    fixed = torch.tensor([[1.6, 1.8]], dtype=torch.float64)
    a = EconomyModel(eco, {"firms": lambda state: fixed}, seed=1)
    b = EconomyModel(eco, {"firms": [ConstantAction(1.6), ConstantAction(1.8)]}, seed=1)
    pa, pia = _model_path(a, 5)
    pb, pib = _model_path(b, 5)
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_array_equal(pia, pib)
    np.testing.assert_array_equal(pa, np.tile([1.6, 1.8], (5, 1)))
    assert [f.action.tolist() for f in a.agents_of("firms")] == [1.6, 1.8]  # batched actions reach the agents


# ---------------------------------------------------------------------------------------- investment
INVESTMENT_CASES = {
    "walrasian-J2": ("InvestmentMarket-v1", {"market": "walrasian", "n_capital_goods": 2}),
    "walrasian-deciding-M2": ("InvestmentMarket-v1", {"market": "walrasian", "firms": "decision", "firms_per_good": 2}),
    "planner": ("InvestmentPlanner-v1", {"n_capital_goods": 2}),
}


@pytest.mark.parametrize("case", list(INVESTMENT_CASES))
def test_investment_economy_matches_investment_model(case):
    env_id, kw = INVESTMENT_CASES[case]
    formulation = "planner" if "Planner" in env_id else "market"
    cfg = InvestmentConfig(
        n_households=4, formulation=formulation, k_init_spread=0.4, agg_tfp_values=(0.95, 1.05), **kw
    )
    sources = {"households": SteadyStateShare(cfg)}
    if cfg.firms == "decision" and formulation == "market":
        sources["firms"] = CompetitiveSupply(cfg)
    generic = EconomyModel(make_economy(env_id, cfg), sources, seed=9)
    reference = InvestmentModel(cfg, seed=9, mode="engine")
    assert isinstance(reference, EconomyModel)
    for _ in range(T):
        generic.step()
        reference.step()
    mv = generic.datacollector.get_model_vars_dataframe()
    ref = reference.datacollector.get_model_vars_dataframe()
    j = cfg.n_capital_goods
    # generic "capital" is the mean over households of capital summed over goods; the model's is per good too
    np.testing.assert_allclose(mv["capital"] / j, ref["capital"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(mv["consumption"], ref["consumption"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(mv["welfare"], ref["welfare"], rtol=1e-12, atol=0)
    np.testing.assert_allclose(mv["price"], ref["price"], rtol=1e-12, atol=0)
    households = generic.agents_of("households")
    np.testing.assert_allclose(
        [h.capital for h in households], [h.total_capital for h in reference.households], rtol=1e-12
    )
    np.testing.assert_allclose([h.reward for h in households], [h.reward for h in reference.households], rtol=1e-12)
    assert np.ptp(mv["capital"]) > 0  # shocks moved the economy


def test_investment_datacollector_has_the_declared_variables():
    cfg = InvestmentConfig(n_households=3, n_capital_goods=2, formulation="market", market="walrasian")
    eco = make_economy("InvestmentMarket-v1", cfg)
    model = EconomyModel(eco, {"households": FixedShare(0.1, 2)}, seed=0)
    for _ in range(4):
        model.step()
    declared = [v.name for v in eco.spec.logged]
    mv = model.datacollector.get_model_vars_dataframe()
    assert list(mv.columns) == declared and len(mv) == 4
    av = model.datacollector.get_agent_vars_dataframe()
    per_agent = [v.name for v in eco.spec.logged if v.over == "households"]
    assert list(av.columns) == ["group", *per_agent, "reward"]
    last = av.xs(4, level="Step")
    assert len(last) == 3 and set(last["group"]) == {"households"}
    # model reporters: economy-level values, means of per-agent and per-good variables
    assert mv["consumption"].iloc[-1] == pytest.approx(last["consumption"].mean(), rel=1e-12)
    assert mv["welfare"].iloc[-1] == pytest.approx(np.log(last["consumption"]).sum(), rel=1e-12)
    assert mv["price"].iloc[-1] == pytest.approx(model.logged_values["price"].mean(), rel=1e-12)
    assert model.logged_values["price"].shape == (2,)


def test_activation_order_is_random_from_the_model_seed():
    cfg = InvestmentConfig(n_households=6, formulation="market", market="walrasian")

    def orders(seed):
        model = EconomyModel(make_economy("InvestmentMarket-v1", cfg), {"households": FixedShare(0.1)}, seed=seed)
        out = []
        for _ in range(5):
            model.step()
            assert sorted(a.index for a in model.activation_order) == list(range(6))
            out.append(tuple(a.index for a in model.activation_order))
        return out

    assert orders(1) == orders(1)
    assert orders(1) != orders(2)
    assert len(set(orders(1))) > 1


def test_step_actions_override_the_sources():
    eco = _duopoly()
    model = EconomyModel(eco, {"firms": ConstantAction(0)}, seed=2)
    model.step({"firms": [4, 9]})
    assert model.actions["firms"].tolist() == [[4, 9]]
    assert [f.action.tolist() for f in model.agents_of("firms")] == [4, 9]
    np.testing.assert_array_equal([f.price for f in model.agents_of("firms")], eco.grid[[4, 9]].numpy())
    model.step()
    assert model.actions["firms"].tolist() == [[0, 0]]
    with pytest.raises(UserError, match="expected"):
        model.step({"firms": [1, 2, 3]})
    with pytest.raises(UserError, match="action indices"):
        model.step({"firms": [1.5, 2.0]})


# ------------------------------------------------------------------------------------ a toy economy
@dataclasses.dataclass(frozen=True)
class ToyState:
    wealth: torch.Tensor  # [B, 3]
    t: torch.Tensor  # [B]


class ToyEconomy(BatchedEconomy):
    """Three traders (Box(2) actions) and a tax authority (a non-agent group choosing a tax index)."""

    def __init__(self) -> None:
        self.device, self.dtype = torch.device("cpu"), torch.float64
        traders = DecisionGroup(
            "traders",
            3,
            "traders",
            (Block("own_wealth", 1), Block("mean_wealth", 1)),
            ("own_wealth", "mean_wealth"),
            gymnasium.spaces.Box(0.0, 1.0, (2,), np.float32),
            2,
        )
        tax = DecisionGroup(
            "tax", 1, "tax", (Block("mean_wealth", 1),), ("mean_wealth",), gymnasium.spaces.Discrete(3), 1, agent=False
        )
        self.groups = (traders, tax)
        self.information = parse_information((), self.groups)
        self.default_group = "traders"
        self.spec = types.SimpleNamespace(
            id="Toy-v0",
            logged=(
                LoggedVariable("wealth", "traders", "wealth after the period"),
                LoggedVariable("index", "traders", "a variable named like an agent attribute"),
                LoggedVariable("volume", "good", "traded volume of each of two goods"),
                LoggedVariable("tax_rate", "economy", "tax rate"),
            ),
        )

    def initial_state(self, batch_size, generator=None):
        w = 1.0 + torch.rand((batch_size, 3), generator=generator, dtype=self.dtype)
        return ToyState(w, torch.zeros(batch_size, dtype=torch.long))

    def step(self, state, actions, generator=None):
        a = actions["traders"]  # [B, 3, 2]
        rate = 0.1 * actions["tax"][:, 0].to(self.dtype)  # [B]
        eps = 0.01 * torch.randn(state.wealth.shape, generator=generator, dtype=self.dtype)
        gain = a.sum(-1) * (1.0 - rate.unsqueeze(-1)) + eps
        nxt = ToyState(state.wealth + gain, state.t + 1)
        return nxt, {"gain": gain, "volume": a.sum(1), "rate": rate}

    def observation_block(self, state, group, block):
        w = state.wealth
        n = 3 if group == "traders" else 1
        if block == "own_wealth":
            return w.unsqueeze(-1)
        return w.mean(-1, keepdim=True).unsqueeze(-1).expand(w.shape[0], n, 1)

    def rewards(self, outcome):
        return {"traders": outcome["gain"], "tax": outcome["rate"].unsqueeze(-1)}

    def logged(self, state, outcome):
        return {
            "wealth": state.wealth,
            "index": -state.wealth,
            "volume": outcome["volume"],
            "tax_rate": outcome["rate"],
        }


class WealthShare:
    """A rule reading its observation: ``(0.1 own wealth, 0.05 mean wealth)``."""

    def act(self, obs):
        return np.array([0.1 * obs[0], 0.05 * obs[1]])


def test_generic_model_on_a_toy_economy():
    eco = ToyEconomy()
    rate_index = torch.tensor([[2]])
    model = EconomyModel(eco, {"traders": WealthShare(), "tax": lambda state: rate_index}, seed=4)
    assert [a.name for a in model.agents] == ["traders_0", "traders_1", "traders_2"]  # no agent for the tax group
    g = torch.Generator().manual_seed(4)
    state = eco.initial_state(1, g)
    for _ in range(6):
        obs = eco.observe(state, "traders")[0].numpy()
        acts = torch.as_tensor(np.stack([WealthShare().act(o) for o in obs])).unsqueeze(0)
        state, out = eco.step(state, {"traders": acts, "tax": rate_index}, g)
        model.step()
        np.testing.assert_array_equal([a.wealth for a in model.agents_of("traders")], state.wealth[0].numpy())
        np.testing.assert_array_equal([a.reward for a in model.agents_of("traders")], out["gain"][0].numpy())
    agent = model.agents_of("traders")[1]
    assert isinstance(agent, EconomyAgent)
    assert agent.index == 1 and agent.logged["index"] == -agent.wealth  # the logged "index" shadows nothing
    assert agent.action.shape == (2,)
    mv = model.datacollector.get_model_vars_dataframe()
    assert list(mv.columns) == ["wealth", "index", "volume", "tax_rate"]
    assert mv["tax_rate"].iloc[-1] == pytest.approx(0.2)
    assert mv["volume"].iloc[-1] == pytest.approx(float(out["volume"].mean()))
    av = model.datacollector.get_agent_vars_dataframe()
    assert list(av.columns) == ["group", "wealth", "index", "reward"]
    assert av.xs(6, level="Step")["index"].tolist() == [-w for w in state.wealth[0].tolist()]


def test_source_errors_are_one_line_config_errors():
    eco = ToyEconomy()
    good = {"traders": WealthShare(), "tax": lambda s: torch.tensor([[0]])}
    with pytest.raises(ConfigError, match="no source for action key 'tax'") as e:
        EconomyModel(eco, {"traders": WealthShare()})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="'taxes'"):
        EconomyModel(eco, {**good, "taxes": WealthShare()})
    with pytest.raises(ConfigError, match="no agent group"):
        EconomyModel(eco, {**good, "tax": ConstantAction(1)})
    with pytest.raises(ConfigError, match="expected one for all or 3"):
        EconomyModel(eco, {**good, "traders": [WealthShare(), WealthShare()]})
    with pytest.raises(ConfigError, match="sources\\['traders'\\] is a int"):
        EconomyModel(eco, {**good, "traders": 3})
    with pytest.raises(ConfigError, match="seed"):
        EconomyModel(eco, good, seed="abc")
    with pytest.raises(ConfigError, match="mapping"):
        EconomyModel(eco, WealthShare())
    assert EconomyModel(eco, good, seed="5").seed == 5  # SolaraViz text inputs give strings
    bad_rule = EconomyModel(eco, {**good, "traders": ConstantAction([0.1, 0.2, 0.3])})
    with pytest.raises(UserError, match="traders_"):
        bad_rule.step()
    bad_batched = EconomyModel(eco, {**good, "tax": lambda s: torch.tensor([[0, 1]])})
    with pytest.raises(UserError, match="batched source of 'tax'"):
        bad_batched.step()


# -------------------------------------------------------------------------------------------- page
@pytest.fixture(scope="module")
def viz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import abm_markets.viz as module
    return module


def test_page_builds_and_renders_for_a_duopoly_model(viz):
    import reacton
    import solara

    model = EconomyModel(_duopoly(), {"firms": [ConstantAction(2), ConstantAction(12)]}, seed=0)
    page = viz.make_page(model)
    assert isinstance(page, reacton.core.Element)
    for _ in range(3):
        model.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box, rc = solara.render(viz.make_page(model), handle_error=False)
    rc.close()
    assert box is not None
    fig = viz.economy_bars_figure(model)
    (ax,) = fig.axes
    np.testing.assert_array_equal([p.get_height() for p in ax.patches], [f.price for f in model.agents_of("firms")])
    fig = viz.economy_bars_figure(model, {"firms": "reward"})
    np.testing.assert_array_equal([p.get_height() for p in fig.axes[0].patches], [f.reward for f in model.agents])
    assert len(viz.economy_components(model)) == 3  # profit_gain, mean price, bars
    with pytest.raises(ConfigError, match="per-agent variable"):
        viz.make_page(model, bars={"firms": "wealth"})
    with pytest.raises(ConfigError, match="agent group"):
        viz.economy_bars_figure(model, {"households": "capital"})


def test_page_parameters_rebuild_the_same_model(viz):
    """SolaraViz's reset calls ``type(model)(**params)``: the rebuilt model follows the same path."""
    model = EconomyModel(_duopoly(observation="noisy"), {"firms": ConstantAction(5)}, seed=6)
    params = viz.economy_model_params(model)
    values = {k: (v["value"] if isinstance(v, dict) and "type" in v else v) for k, v in params.items()}
    values["seed"] = str(values["seed"])
    rebuilt = type(model)(**values)
    for m in (model, rebuilt):
        for _ in range(4):
            m.step()
    assert torch.equal(model.state.noise, rebuilt.state.noise)
    # the investment page keeps its sliders; a plain InvestmentModel is rebuilt from its own arguments
    assert viz.make_page(viz.InvestmentVizModel(n_households=3)) is not None
    plain = InvestmentModel(InvestmentConfig(n_households=2), seed=3)
    p = viz._investment_params(plain)
    again = InvestmentModel(**{k: (v["value"] if isinstance(v, dict) and "type" in v else v) for k, v in p.items()})
    plain.step()
    again.step()
    assert [h.consumption for h in plain.households] == [h.consumption for h in again.households]
    with pytest.raises(UserError, match="expected an EconomyModel"):
        viz.make_page(object())
