"""The economy constructor: economies declared from named blocks, checked by name, run through the protocol.

Known answers: the declared Brock-Mirman economy (``scenarios/brock-mirman.toml``) under the closed-form rule
``s = alpha beta`` follows ``K' = alpha beta Z K^alpha`` to the last bit, and that rule is the optimum by an
outside check (value-function iteration on a grid in NumPy, which shares no code with the engine) and by
simulation (it beats other constant savings rates, the start ``s = 0.6`` included, under common shocks). Two
methods that must agree: a batch of economies equals each economy alone; a competitive Walrasian market block
conserves goods and clears at marginal cost. Every rejected declaration gives a one-line ``ConfigError``.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

from abm_markets.engine import make_economy
from abm_markets.engine.blocks import BLOCK_LIBRARY, block, expression, use
from abm_markets.engine.constructor import (
    Action,
    DeclaredEconomy,
    EconomyDeclaration,
    Good,
    Group,
    Shock,
    StateVariable,
    build_economy,
    declaration_from_toml,
    load_declaration,
)
from abm_markets.engine.protocol import index_state, state_fields
from abm_markets.errors import ConfigError

SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "brock-mirman.toml"
ALPHA, BETA = 0.36, 0.96


def bm_table() -> dict:
    """The ``[economy]`` table of the Brock-Mirman scenario (a fresh copy to mutate)."""
    return copy.deepcopy(tomllib.loads(SCENARIO.read_text())["economy"])


@pytest.fixture(scope="module")
def bm() -> DeclaredEconomy:
    return build_economy(load_declaration(SCENARIO))


def run_constant_rate(eco: DeclaredEconomy, s: float | None, batch: int, periods: int, seed: int):
    """Simulate ``periods`` periods at savings rate ``s`` (None: the declared reference policy); returns the list
    of (state, next state, outcome)."""
    gen = torch.Generator().manual_seed(seed)
    state = eco.initial_state(batch, gen)
    path = []
    for _ in range(periods):
        if s is None:
            actions = eco.reference_decide()(state)
        else:
            actions = {"households": torch.full((batch, 1), s, dtype=torch.float64)}
        nxt, out = eco.step(state, actions, gen)
        path.append((state, nxt, out))
        state = nxt
    return path


# --------------------------------------------------------------------------------------- Brock-Mirman
def test_scenario_file_declares_brock_mirman(bm: DeclaredEconomy) -> None:
    data = tomllib.loads(SCENARIO.read_text())
    assert data["seed"] == 0 and data["settings"]["groups"] == ["households"] and data["settings"]["gamma"] == BETA
    assert bm.env_id == "BrockMirman-v1" and bm.parameters == {"alpha": ALPHA, "beta": BETA}
    assert bm.equations() == [
        "technology: Y = Z K^alpha",
        "budget: C = (1 - s) Y, X = s Y",
        "capital: K_next = (1 - delta) K + X",
        "utility: u = log(C)",
    ]
    g = bm.group("households")
    assert (g.count, g.raw_dim, g.observes, g.reward) == (1, 1, ("K", "Z"), "u")
    assert bm.obs_dim("households") == 2 and bm.observation_space("households").shape == (2,)
    assert isinstance(make_economy("BrockMirman-v1", None), DeclaredEconomy)


def test_closed_form_rule_follows_the_law_of_motion_exactly(bm: DeclaredEconomy) -> None:
    """Under ``s = alpha beta`` (the declared reference policy): ``K' = alpha beta Z K^alpha``,
    ``C = (1 - alpha beta) Y``, ``u = log C``."""
    ab = ALPHA * BETA
    path = run_constant_rate(bm, None, batch=64, periods=60, seed=3)
    assert torch.equal(path[0][2]["s"], torch.full((64, 1), ab, dtype=torch.float64))
    for state, nxt, out in path:
        z = bm.chains["Z"].values[state.Z_idx].unsqueeze(-1)  # [B, 1]
        k = state.K  # [B, 1]
        assert torch.equal(nxt.K, ab * (z * k**ALPHA))
        assert torch.equal(out["Y"], z * k**ALPHA)
        torch.testing.assert_close(out["C"], (1.0 - ab) * out["Y"], rtol=1e-15, atol=0.0)
        assert torch.equal(bm.rewards(out)["households"], torch.log(out["C"]))
    # capital settles between the deterministic steady states of the two TFP levels
    k_lo, k_hi = ((ab * 0.9) ** (1 / (1 - ALPHA)), (ab * 1.1) ** (1 / (1 - ALPHA)))
    last = path[-1][1].K
    assert bool(((last > 0.95 * k_lo) & (last < 1.05 * k_hi)).all())
    # every shock state is visited and the chain keeps its persistence
    z_idx = torch.stack([s.Z_idx for s, _, _ in path])
    stay = (z_idx[1:] == z_idx[:-1]).double().mean().item()
    assert abs(stay - 0.9) < 0.02


def test_python_declaration_equals_the_toml_file(bm: DeclaredEconomy) -> None:
    """The Python declaration of docs/constructor.md runs the same economy as scenarios/brock-mirman.toml."""

    @block(outputs=("Y",))
    def technology(K, Z, alpha):
        """Y = Z K^alpha"""
        return Z * K**alpha

    decl = EconomyDeclaration(
        id="BrockMirmanPython-v1",
        parameters={"alpha": 0.36, "beta": 0.96},
        groups=(
            Group(
                name="households",
                actions=(Action(name="s", low=0.0, high=1.0, start=0.6),),
                observes=("K", "Z"),
                reward="u",
            ),
        ),
        shocks=(Shock(name="Z", values=(0.9, 1.1), persistence=0.9),),
        states=(StateVariable(name="K", over="households", init=(0.1, 0.3), next="K_next"),),
        blocks=(
            expression("utility", u="log(C)"),  # any order: the constructor sorts blocks by name
            technology,
            use("spend_share", name="budget"),
            use("accumulate", name="capital", params={"delta": 1.0}),
        ),
        reference={"s": "alpha * beta"},
    )
    py = build_economy(decl)
    assert [b.name for b in py.plan.order] == ["technology", "budget", "utility", "capital"]
    for s in (0.3, 0.6):
        a = run_constant_rate(py, s, batch=8, periods=30, seed=4)
        b = run_constant_rate(bm, s, batch=8, periods=30, seed=4)
        for (_, _, out_a), (_, _, out_b) in zip(a, b, strict=True):
            assert out_a.keys() == out_b.keys()
            assert all(torch.equal(out_a[k], out_b[k]) for k in out_a)


def test_closed_form_is_the_optimum_by_value_function_iteration() -> None:
    """VFI on a capital grid (NumPy, nothing shared with the engine): the optimal savings rate is alpha beta."""
    z = np.array([0.9, 1.1])
    p = np.array([[0.9, 0.1], [0.1, 0.9]])
    k = np.linspace(0.04, 0.5, 601)
    y = z[:, None] * k[None, :] ** ALPHA  # [Z, K]
    c = y[:, :, None] - k[None, None, :]  # [Z, K, K']
    u = np.where(c > 0, np.log(np.maximum(c, 1e-300)), -np.inf)
    v = np.zeros((2, k.size))
    for _ in range(3000):
        q = u + BETA * (p @ v)[:, None, :]
        v_new = q.max(-1)
        if np.abs(v_new - v).max() < 1e-9:
            break
        v = v_new
    policy = k[q.argmax(-1)]  # [Z, K]
    s = policy / y
    ergodic = (k > 0.12) & (k < 0.26)
    err = np.abs(s[:, ergodic] - ALPHA * BETA)
    assert err.max() < 2e-3, err.max()  # one grid step of K' is about 2e-3 of output
    assert abs(s[:, ergodic].mean() - ALPHA * BETA) < 2e-4


def test_closed_form_beats_other_constant_rates_in_simulation(bm: DeclaredEconomy) -> None:
    """Discounted utility under common shocks: alpha beta beats 0.25, 0.32, 0.37, 0.45 and the start 0.6."""

    def value(s: float) -> float:
        path = run_constant_rate(bm, s, batch=128, periods=250, seed=11)
        return sum(BETA**t * out["u"].mean().item() for t, (_, _, out) in enumerate(path))

    rates = [0.25, 0.32, ALPHA * BETA, 0.37, 0.45, 0.6]
    values = [value(s) for s in rates]
    assert int(np.argmax(values)) == 2, dict(zip(rates, values, strict=True))


def test_decode_plays_start_at_zero(bm: DeclaredEconomy) -> None:
    s0 = bm.initial_state(3, torch.Generator().manual_seed(0))
    raw = torch.zeros(3, 1, 1)
    torch.testing.assert_close(bm.decode("households", raw, s0), torch.full((3, 1), 0.6, dtype=torch.float64))
    torch.testing.assert_close(bm.decode("households", raw, s0, center="none"), torch.full((3, 1), 0.5).double())
    shifted = bm.decode("households", raw, s0, shift=math.log(ALPHA * BETA / (1 - ALPHA * BETA)) - math.log(1.5))
    torch.testing.assert_close(shifted, torch.full((3, 1), ALPHA * BETA, dtype=torch.float64))


def test_decode_half_bounded_and_several_actions() -> None:
    decl = EconomyDeclaration(
        id="DecodeTest-v1",
        groups=(
            Group(
                name="agents",
                count=2,
                actions=(
                    Action(name="a", low=0.0, high=2.0, start=0.5),
                    Action(name="b", low=1.0, start=3.0),
                    Action(name="c", high=0.0, start=-4.0),
                    Action(name="d", start=7.0),
                ),
                reward="r",
            ),
        ),
        states=(StateVariable(name="x", next="x_next", init=1.0),),
        blocks=expression("rules", r="a + b + c + d", x_next="x"),
    )
    eco = build_economy(decl)
    s = eco.initial_state(1)
    act = eco.decode("agents", torch.zeros(1, 2, 4), s)
    assert act.shape == (1, 2, 4)
    torch.testing.assert_close(act[0, 0], torch.tensor([0.5, 3.0, -4.0, 7.0], dtype=torch.float64))
    act = eco.decode("agents", torch.full((1, 2, 4), math.log(2.0)), s)
    torch.testing.assert_close(act[0, 1, 1:], torch.tensor([5.0, -8.0, 7.0 + math.log(2.0)], dtype=torch.float64))
    _, out = eco.step(s, {"agents": act}, torch.Generator().manual_seed(0))
    torch.testing.assert_close(eco.rewards(out)["agents"], act.sum(-1))
    assert eco.group("agents").action_space.shape == (4,)


# ------------------------------------------------------------------------------------------ rejections
def _add_block(t: dict, **blk) -> None:
    t["blocks"].append(blk)


def _firms(t: dict) -> None:
    t["groups"].append({"name": "firms", "count": 2, "reward": "q", "actions": {"q": {"low": 0.0, "high": 1.0}}})


def _set(path: tuple, value):
    def mutate(t: dict) -> None:
        x = t
        for key in path[:-1]:
            x = x[key]
        x[path[-1]] = value

    return mutate


def _good(**kw):
    def mutate(t: dict) -> None:
        t["goods"] = [{"name": "capital", "producer": "competitive", "buyer": "households", "market": "walrasian"} | kw]

    return mutate


REJECTED = {
    "input nothing supplies": (
        _set(("blocks", 0), {"name": "technology", "outputs": {"Y": "A * Z * K**alpha"}}),
        "block 'technology' needs 'A', which nothing supplies",
    ),
    "misspelt parameter": (
        _set(("parameters",), {"alhpa": 0.36, "beta": 0.96}),
        "needs 'alpha', which nothing supplies (not a state, shock, action, parameter or block output) "
        "(did you mean 'alhpa'?)",
    ),
    "two blocks produce one variable": (
        lambda t: _add_block(t, name="other", outputs={"C": "Y"}),
        "blocks 'budget' (spend_share) and 'other' both produce 'C'",
    ),
    "output shadows a state": (
        lambda t: _add_block(t, name="k", outputs={"K": "Y"}),
        "block 'k' produces 'K', which is already a state",
    ),
    "cycle": (
        lambda t: t["blocks"].extend(
            [{"name": "a", "outputs": {"P": "Q + 1"}}, {"name": "b", "outputs": {"Q": "2 * P"}}]
        ),
        "blocks form a cycle: 'a' needs 'Q' from 'b', 'b' needs 'P' from 'a'",
    ),
    "good without producer": (_good(producer=""), "good 'capital' has no producer"),
    "good from no group": (_good(producer="firmz"), "produced by 'firmz', which is neither a group nor 'competitive'"),
    "good without buyer": (_good(buyer=""), "good 'capital' has no buyer"),
    "good bought by no group": (_good(buyer="househlds"), "unknown buyer group 'househlds' (did you mean"),
    "good no market clears": (_good(), "good 'capital' is traded in no market block"),
    "observation is a block output": (
        _set(("groups", 0, "observes"), ["K", "Y"]),
        "observes 'Y', a block output, which is not computable from the state",
    ),
    "observation nothing provides": (
        _set(("groups", 0, "observes"), ["K", "Zeta"]),
        "observes 'Zeta', which nothing provides; expected a state or shock (K, Z)",
    ),
    "state next nothing produces": (
        _set(("states", 0, "next"), "K_nxt"),
        "state 'K' has next = 'K_nxt', which nothing produces (did you mean 'K_next'?)",
    ),
    "reward nothing produces": (
        _set(("groups", 0, "reward"), "utility"),
        "group 'households' has reward 'utility', which nothing produces",
    ),
    "two groups in one expression": (
        lambda t: (_firms(t), _add_block(t, name="mix", outputs={"M": "K + q"})),
        "block 'mix' ('K + q') combines 'K' (over households) with 'q' (over firms)",
    ),
    "two groups in a library block": (
        lambda t: (_firms(t), _add_block(t, name="mix", use="spend_share", rename={"s": "q", "C": "C2", "X": "X2"})),
        "block 'mix' (spend_share) combines 'Y' (over households) with 'q' (over firms)",
    ),
    "sum of an economy variable": (
        lambda t: _add_block(t, name="agg", outputs={"S": "sum(Z)"}),
        "takes sum(Z) of an economy-wide value",
    ),
    "unknown library block": (
        _set(("blocks", 0, "use"), "cobb_duglas"),
        "unknown library block 'cobb_duglas' (did you mean 'cobb_douglas'?)",
    ),
    "unknown block parameter": (
        _set(("blocks", 2, "params"), {"detla": 1.0}),
        "block 'capital': unknown parameter 'detla' (did you mean 'delta'?)",
    ),
    "unknown rename": (
        _set(("blocks", 0, "rename"), {"k": "K"}),
        "unknown name to rename 'k'",
    ),
    "bounds reversed": (
        _set(("groups", 0, "actions", "s"), {"low": 1.0, "high": 0.0, "start": 0.6}),
        "action 's': bounds [1.0, 0.0] are invalid; expected low < high",
    ),
    "start outside bounds": (
        _set(("groups", 0, "actions", "s", "start"), 1.0),
        "action 's': start = 1.0 is invalid; expected a value strictly inside (0.0, 1.0)",
    ),
    "unknown key": (_set(("groups", 0, "rewards"), "u"), "unknown key 'rewards' (did you mean 'reward'?)"),
    "unversioned id": (_set(("id",), "BrockMirman"), "economy id 'BrockMirman' is invalid; expected a versioned id"),
    "unknown index set": (
        _set(("states", 0, "over"), "household"),
        "unknown index set 'household' (did you mean 'households'?)",
    ),
    "variable declared twice": (
        _set(("parameters", "K"), 1.0),
        "'K' is declared twice (a parameter and a state)",
    ),
    "persistence above one": (_set(("shocks", 0, "persistence"), 1.5), "persistence = 1.5 is invalid"),
    "transition rows": (
        lambda t: (t["shocks"][0].pop("persistence"), t["shocks"][0].update(transition=[[0.9, 0.2], [0.1, 0.9]])),
        "transition row 0 sums to 1.1",
    ),
    "reducible chain": (_set(("shocks", 0, "persistence"), 1.0), "no unique stationary distribution"),
    "unknown logged variable": (_set(("log",), ["Kapital"]), "unknown variable to log 'Kapital'"),
    "information block": (
        _set(("information",), ["households=K+Y"]),
        "unknown observation block of group 'households' 'Y'",
    ),
    "reference for an unknown action": (
        _set(("reference",), {"s": "alpha * beta", "q": "0.5"}),
        "reference policy: unknown action 'q'",
    ),
    "reference not from the state": (
        _set(("reference",), {"s": "C / Y"}),
        "reference policy for 's' uses 'C', a block output, which is not computable from the state",
    ),
    "reference incomplete": (
        lambda t: _firms(t),
        "reference policy gives no rule for 'q'; expected every action",
    ),
    "use and outputs": (
        _set(("blocks", 3, "use"), "log_utility"),
        "block 'utility': expected exactly one of use",
    ),
}


@pytest.mark.parametrize("case", list(REJECTED), ids=list(REJECTED))
def test_rejected_declarations_are_one_line(case: str) -> None:
    mutate, message = REJECTED[case]
    table = bm_table()
    table["id"] = "Rejected-v1"
    mutate(table)
    with pytest.raises(ConfigError) as err:
        declaration_from_toml(table)
    text = str(err.value)
    assert "\n" not in text
    assert message in text, text


def test_market_block_checks_its_good() -> None:
    table = bm_table()
    table["id"] = "Rejected-v1"
    table["goods"] = [{"name": "capital", "producer": "competitive", "buyer": "households", "market": "posted"}]
    market = {"name": "mkt", "use": "walrasian_competitive", "rename": {"spending": "X"}, "good": "capital"}
    table["blocks"].append(market)
    table["parameters"]["phi"] = 0.5
    wrong_market = r"trades in market 'posted' but block 'mkt' \(walrasian_competitive\) is a walrasian market"
    with pytest.raises(ConfigError, match=wrong_market):
        declaration_from_toml(table)
    table["goods"][0]["market"] = "walrasian"
    table["blocks"][-1]["params"] = {"firms": 2.5}
    with pytest.raises(ConfigError, match=r"firms = 2.5 is invalid; expected a whole number >= 1"):
        declaration_from_toml(table)
    table["blocks"][-1]["params"] = {"firms": 2}
    declaration_from_toml(table)
    table["blocks"][-1]["good"] = ""
    with pytest.raises(ConfigError, match=r"market block 'mkt' \(walrasian_competitive\) clears no good"):
        declaration_from_toml(table)


DISALLOWED = {
    "__import__('os')": "the function '__import__'",
    "__import__('os').system('true')": "a call of something other than a named function",
    "K.real": "attribute access",
    "(lambda x: x)(K)": "a call of something other than a named function",
    "lambda: K": "a lambda",
    "K[0]": "indexing",
    "K if Z else Y": "a conditional expression",
    "K > 0": "a comparison",
    "K and Z": "a boolean operator",
    "'K'": "the constant 'K'",
    "open('x')": "the function 'open'",
    "log(K, 2)": "log with 2 arguments",
    "min(K)": "min with 1 arguments",
    "K // 2": "the operator FloorDiv",
    "~K": "the operator Invert",
    "[K for K in Z]": "a comprehension",
    "K +": "is not a valid expression",
    "log": "the function 'log' without calling it",
    "__builtins__": "the name '__builtins__'",
}


@pytest.mark.parametrize("text", list(DISALLOWED), ids=list(DISALLOWED))
def test_expression_constructs_outside_arithmetic_are_rejected(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        expression("bad", Y=text)
    assert "\n" not in str(err.value) and DISALLOWED[text] in str(err.value), str(err.value)
    assert "block 'bad' output 'Y'" in str(err.value)
    table = bm_table()
    table["blocks"].append({"name": "bad", "outputs": {"Y2": text}})
    with pytest.raises(ConfigError):
        declaration_from_toml(table)


def test_expression_functions_evaluate_like_torch() -> None:
    k = torch.tensor([[0.5, 2.0, 4.0]], dtype=torch.float64)
    z = torch.tensor([[1.5]], dtype=torch.float64)
    cases = {
        "-K + 2 * Z - K / Z": -k + 2 * z - k / z,
        "K**a * exp(Z) + sqrt(K)": k**0.3 * torch.exp(z) + torch.sqrt(k),
        "log(K) - min(K, Z, 3) + max(K, 1)": torch.log(k) - torch.clamp(k, max=1.5) + torch.clamp(k, min=1.0),
        "clip(K, 1, Z)": k.clamp(1.0, 1.5),
        "sum(K) + mean(K) * 0": k.sum(-1, keepdim=True),
        "mean(K**2)": (k**2).mean(-1, keepdim=True),
        "a * 2": torch.tensor(0.6, dtype=torch.float64),
    }
    for text, expected in cases.items():
        (b,) = expression("e", Y=text)
        got = b.evaluate({"K": k, "Z": z, "a": 0.3})["Y"]
        torch.testing.assert_close(got, expected, rtol=1e-15, atol=0.0, msg=text)


# --------------------------------------------------------------------------------------- market economy
@block(outputs=("X",))
def invest(Y, s):
    """X = s Y: spending on the capital good."""
    return s * Y


@block(outputs=("C",))
def consume(Y, paid):
    """C = Y - paid."""
    return Y - paid


def market_declaration(**changes) -> EconomyDeclaration:
    """Three households buy capital from two competitive firms (cost phi/2 Q^2) in a Walrasian market."""
    kw = {
        "id": "MarketGrowthTest-v1",
        "parameters": {"alpha": 0.3, "delta": 0.1, "phi": 0.5, "sigma": 2.0},
        "groups": (
            Group(
                name="households",
                count=3,
                actions=(Action(name="s", low=0.0, high=1.0, start=0.2),),
                observes=("K", "Z", "A"),
                reward="u",
            ),
        ),
        "shocks": (
            Shock(name="Z", values=(0.9, 1.0, 1.1), persistence=0.8, over="households"),
            Shock(name="A", values=(0.95, 1.05), transition=((0.7, 0.3), (0.4, 0.6))),
        ),
        "states": (StateVariable(name="K", over="households", init=(0.5, 2.0), next="K_next"),),
        # deliberately out of order: the constructor sorts blocks by the names they need and produce
        "blocks": (
            use("crra_utility"),
            consume,
            use("accumulate", rename={"X": "I"}),
            use(
                "walrasian_competitive",
                name="capital_market",
                rename={"spending": "X", "bought": "I"},
                params={"firms": 2},
                good="capital",
            ),
            invest,
            expression("production", TFP="A * Z", Y="TFP * K**alpha"),
            use("aggregate_sum", name="investment", rename={"x": "I", "total": "I_total"}),
        ),
        "goods": (Good(name="capital", producer="competitive", buyer="households", market="walrasian"),),
    }
    return EconomyDeclaration(**(kw | changes))


def test_market_economy_conserves_goods_and_clears_at_marginal_cost() -> None:
    eco = build_economy(market_declaration())
    assert [b.name for b in eco.plan.order][:3] == ["production[TFP]", "production[Y]", "invest"]
    assert [g.name for g in eco.spec.groups] == ["households", "competitive"]
    assert eco.spec.markets == ("walrasian",) and eco.spec.goods[0].producer == "competitive"
    gen = torch.Generator().manual_seed(5)
    state = eco.training_state(16, gen, spread=0.2)
    for _ in range(20):
        s = torch.rand((16, 3), generator=gen, dtype=torch.float64)
        nxt, out = eco.step(state, {"households": s}, gen)
        price = out["price"]  # [B] economy-wide
        assert out["paid"].shape == (16, 3) and price.shape == (16,)
        torch.testing.assert_close(out["paid"], price.unsqueeze(-1) * out["I"], rtol=1e-12, atol=0.0)
        torch.testing.assert_close(out["paid"], out["X"], rtol=1e-12, atol=0.0)  # spending orders are filled
        torch.testing.assert_close(out["I_total"], 2 * price / 0.5, rtol=1e-12, atol=0.0)  # supply p/phi per firm
        torch.testing.assert_close(out["C"] + out["paid"], out["Y"], rtol=1e-14, atol=0.0)
        torch.testing.assert_close(nxt.K, 0.9 * state.K + out["I"], rtol=1e-15, atol=0.0)
        torch.testing.assert_close(out["u"], (out["C"] ** -1.0 - 1.0) / -1.0, rtol=1e-14, atol=0.0)
        state = nxt
    obs = eco.observe(state)
    assert obs.shape == (16, 3, 3)
    torch.testing.assert_close(obs[..., 2], eco.value(state, "A").unsqueeze(-1).expand(16, 3))
    assert eco.global_state(state).shape == (16, 3 + 3 + 1)


def test_batch_equals_each_economy_alone() -> None:
    eco = build_economy(market_declaration())
    gen = torch.Generator().manual_seed(2)
    state = eco.initial_state(6, gen)
    for _ in range(3):
        s = torch.rand((6, 3), generator=gen, dtype=torch.float64)
        noise = eco.draw_noise(6, gen)
        nxt, out = eco.step(state, {"households": s}, noise=noise)
        for i in range(6):
            alone, out_i = eco.step(index_state(state, i), {"households": s[i : i + 1]}, noise=noise[i : i + 1])
            # shock indices and periods exactly; floats to the last bits (vectorised pow rounds differently)
            for name, x in state_fields(alone).items():
                torch.testing.assert_close(x, getattr(nxt, name)[i : i + 1], rtol=1e-14, atol=0.0, msg=name)
            for name, x in out_i.items():
                torch.testing.assert_close(x, out[name][i : i + 1], rtol=1e-14, atol=0.0, msg=name)
        state = nxt


def test_same_seed_same_path_and_one_draw_per_call() -> None:
    eco = build_economy(market_declaration())
    a = run_path(eco, seed=9)
    b = run_path(eco, seed=9)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[-1], run_path(eco, seed=10)[-1])
    # initial_state and step each draw their uniforms in one torch.rand call: [B, states + shocks], [B, shocks]
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    s = eco.initial_state(5, g1)
    torch.rand((5, 3 + 3 + 1), generator=g2, dtype=torch.float64)
    assert torch.equal(g1.get_state(), g2.get_state())
    eco.step(s, {"households": torch.full((5, 3), 0.2)}, g1)
    torch.rand((5, 3 + 1), generator=g2, dtype=torch.float64)
    assert torch.equal(g1.get_state(), g2.get_state())


def run_path(eco: DeclaredEconomy, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = eco.initial_state(4, gen)
    ks = [state.K]
    for _ in range(10):
        state, _ = eco.step(state, {"households": torch.full((4, 3), 0.25)}, gen)
        ks.append(state.K)
    return ks


def test_information_structure_and_logged_variables() -> None:
    eco = build_economy(
        market_declaration(information=("households[:1]=K+Z+A", "households[1:]=K"), log=("Y", "price", "I_total"))
    )
    state = eco.initial_state(2, torch.Generator().manual_seed(0))
    obs = eco.observe(state)
    assert obs.shape == (2, 3, 3 + 2)  # K, Z, A and a flag for Z and for A
    assert torch.equal(obs[:, 1:, 1:], torch.zeros(2, 2, 4, dtype=torch.float64))
    _, out = eco.step(state, {"households": torch.full((2, 3, 1), 0.3)}, torch.Generator().manual_seed(1))
    logged = eco.logged(state, out)
    assert list(logged) == ["Y", "price", "I_total"]
    assert [(v.name, v.over) for v in eco.spec.logged] == [
        ("Y", "households"),
        ("price", "economy"),
        ("I_total", "economy"),
    ]


def test_registry_finds_declared_economies_and_protects_hand_written_ids() -> None:
    decl = market_declaration(id="RegistryTest-v1")
    build_economy(decl)
    eco = make_economy("RegistryTest-v1", decl, dtype=torch.float32)
    assert isinstance(eco, DeclaredEconomy) and eco.dtype == torch.float32
    with pytest.raises(ConfigError, match="taken by a hand-written economy"):
        build_economy(market_declaration(id="InvestmentPlanner-v1"))
    with pytest.raises(ConfigError, match="cfg must be an EconomyDeclaration"):
        make_economy("RegistryTest-v1", market_declaration(id="Other-v1"))


def test_library_lists_the_documented_blocks() -> None:
    assert set(BLOCK_LIBRARY) == {
        "cobb_douglas",
        "log_utility",
        "crra_utility",
        "spend_share",
        "accumulate",
        "aggregate_sum",
        "aggregate_mean",
        "walrasian_competitive",
    }
    assert BLOCK_LIBRARY["cobb_douglas"].inputs == ("K", "Z", "alpha")
    assert use("accumulate", params={"delta": 1.0}).inputs == ("K", "X")
    with pytest.raises(ConfigError, match=r"unknown library block 'acumulate' \(did you mean 'accumulate'\?\)"):
        use("acumulate")


@pytest.mark.filterwarnings("ignore:.*Box observation space.*:UserWarning")
def test_declared_economies_pass_the_official_env_checkers(bm: DeclaredEconomy) -> None:
    """PettingZoo's parallel_api_test and Gymnasium's check_env on the front ends over declared economies."""
    from gymnasium.utils.env_checker import check_env
    from pettingzoo.test import parallel_api_test

    from abm_markets.envs import EconomyEnv, EconomyParallelEnv

    market = build_economy(market_declaration())
    for eco in (bm, market):
        parallel_api_test(EconomyParallelEnv(eco), num_cycles=30)
    check_env(EconomyEnv(bm), skip_render_check=True)
    others = {"households": lambda state: torch.full((1, 3), 0.3, dtype=torch.float64)}
    check_env(EconomyEnv(market, group="households_0", fixed=others), skip_render_check=True)
