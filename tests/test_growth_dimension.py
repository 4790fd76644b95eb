"""Brock-Mirman with D capital goods (scenario growth-dimension, docs/growth.md).

Known answer: the closed form ``K_j' = alpha beta Y / D`` checked by NumPy value iteration at ``D = 2`` (shares
nothing with the engine), by the engine's law of motion, and by perturbations along simulated paths. Learning:
PPO and tabular Q from a wrong start (total saving 0.6, tilted across goods) reach stated policy errors at
``D = 1``. The scenario: the tabular table that does not fit is reported, not run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from abm_markets.engine.constructor import build_economy
from abm_markets.learn.tabular_grid import run_tabular_q
from abm_markets.scenarios.growth_dimension import (
    GrowthDimensionConfig,
    growth_declaration,
    growth_grid,
    policy_error,
    start_shares,
    steady_state_capital,
    tabular_cells,
)

ALPHA, BETA = 0.36, 0.96


def _vfi_two_goods(n: int = 21, span: float = 2.5) -> dict[str, np.ndarray]:
    """Value iteration for D = 2 on a log grid of n points per good around the steady state (NumPy only)."""
    k_ss = steady_state_capital(2, ALPHA, BETA)
    grid = k_ss * np.exp(np.linspace(-math.log(span), math.log(span), n))
    z = np.array([0.9, 1.1])
    p = np.array([[0.9, 0.1], [0.1, 0.9]])
    k1, k2 = np.meshgrid(grid, grid, indexing="ij")  # states [n, n]
    y = z[:, None, None] * (k1 * k2)[None] ** (ALPHA / 2)  # [2, n, n]
    spend = (k1 + k2).reshape(-1)  # choices (k1', k2') flattened [n^2]
    c = y.reshape(2, -1)[:, :, None] - spend[None, None, :]  # [2, n^2 states, n^2 choices]
    u = np.where(c > 0, np.log(np.maximum(c, 1e-300)), -np.inf)
    v = np.zeros((2, n * n))
    for _ in range(2000):
        ev = p @ v  # [2, n^2] expected value of each choice given today's z
        rhs = u + BETA * ev[:, None, :]
        v_new = rhs.max(-1)
        if np.abs(v_new - v).max() < 1e-10:
            break
        v = v_new
    choice = rhs.argmax(-1)
    return {"grid": grid, "y": y.reshape(2, -1), "k1n": k1.reshape(-1)[choice], "k2n": k2.reshape(-1)[choice],
            "v": v_new, "k1": k1.reshape(-1), "k2": k2.reshape(-1)}  # fmt: skip


def test_closed_form_against_value_iteration_two_goods() -> None:
    """VFI (NumPy, a 21 x 21 log grid per TFP state, choices on the grid) saves alpha beta / 2 of output in each
    good within one grid step (measured: at most 0.061 in log K', the step is 0.092), alpha beta in total on average
    (measured 0.34565), and its value is linear in log K_j with slope (alpha / 2) / (1 - alpha beta) = 0.2751
    (measured 0.2746, 0.2754 in the two TFP states)."""
    sol = _vfi_two_goods()
    grid = sol["grid"]
    step = math.log(grid[1] / grid[0])  # one grid step in log K'
    inner = (sol["k1"] > grid[3]) & (sol["k1"] < grid[-4]) & (sol["k2"] > grid[3]) & (sol["k2"] < grid[-4])
    for kn in (sol["k1n"], sol["k2n"]):
        log_gap = np.log(kn / (ALPHA * BETA / 2 * sol["y"]))[:, inner]
        assert np.abs(log_gap).max() <= step  # a grid point next to the closed form
        assert np.abs(log_gap).mean() < step / 3
    total = ((sol["k1n"] + sol["k2n"]) / sol["y"])[:, inner]
    assert total.mean() == pytest.approx(ALPHA * BETA, abs=1e-3)
    # value: V = a(z) + b (log K_1 + log K_2), b = (alpha / D) / (1 - alpha beta) = 0.2751
    b = (ALPHA / 2) / (1 - ALPHA * BETA)
    for zi in range(2):
        x = np.column_stack([np.ones(inner.sum()), np.log(sol["k1"][inner]), np.log(sol["k2"][inner])])
        coef = np.linalg.lstsq(x, sol["v"][zi, inner], rcond=None)[0]
        assert coef[1] == pytest.approx(b, rel=0.005) and coef[2] == pytest.approx(b, rel=0.005)


@pytest.mark.parametrize("d", [1, 2, 5, 10])
def test_engine_follows_the_closed_form_law_of_motion(d: int) -> None:
    """Under the declared reference policy, K_j' = alpha beta / D Z prod_i K_i^(alpha/D) exactly."""
    eco = build_economy(growth_declaration(d))
    gen = torch.Generator().manual_seed(3)
    state = eco.initial_state(32, gen)
    ref = eco.reference_decide()
    for _ in range(20):
        k = torch.stack([state.__getattribute__(f"K_{j}")[:, 0] for j in range(1, d + 1)], -1)
        z = eco.value(state, "Z")
        y = z * torch.prod(k ** (ALPHA / d), -1)
        state, out = eco.step(state, ref(state), gen)
        for j in range(1, d + 1):
            torch.testing.assert_close(getattr(state, f"K_{j}")[:, 0], ALPHA * BETA / d * y, rtol=1e-12, atol=0)
        torch.testing.assert_close(out["C"][:, 0], (1 - ALPHA * BETA) * y, rtol=1e-12, atol=0)


def test_no_perturbation_of_the_closed_form_improves_welfare() -> None:
    """D = 2, common shocks: scaling total saving by 0.9 or 1.1, or moving 10% of it from one good to the other,
    lowers mean discounted utility over 300 periods (the closed form is a maximum, not only a critical point)."""
    from abm_markets.learn.evaluate import evaluate_protocol

    eco = build_economy(growth_declaration(2))
    x = ALPHA * BETA / 2

    def const(x1: float, x2: float):
        return lambda s: {"households": torch.tensor([x1, x2], dtype=torch.float64).expand(s.t.shape[0], 1, 2)}

    def welfare(decide) -> float:
        res = evaluate_protocol(eco, decide, n_economies=64, periods=300, seed=7, gamma=BETA)
        return float(res["discounted_reward"]["households"].mean())

    best = welfare(eco.reference_decide())
    assert welfare(const(x, x)) == pytest.approx(best, abs=1e-12)
    for x1, x2 in ((0.9 * x, 0.9 * x), (1.1 * x, 1.1 * x), (1.1 * x, 0.9 * x), (0.9 * x, 1.1 * x)):
        assert welfare(const(x1, x2)) < best - 1e-3


def test_ppo_learns_the_closed_form_from_a_wrong_start_one_good() -> None:
    """PPO from saving 0.6 of output (policy error 0.74) to below 0.1 at D = 1 (small configuration; measured
    0.036, 40 iterations of 128 economies x 32 periods)."""
    from abm_markets.learn.train import TrainConfig, Trainer, train

    eco = build_economy(growth_declaration(1))
    tc = TrainConfig(groups=("households",), gamma=BETA, action_center="reference", episode_len=100,
                     n_economies=128, rollout_len=32, iterations=40, checkpoint_every=0)  # fmt: skip
    trainer = Trainer(eco, tc, seed=0)

    def err() -> float:
        return policy_error(eco, trainer.decide(), n_economies=64, periods=50, seed=1)

    before = err()
    train(trainer, None)
    after = err()
    assert before > 0.7 and after < 0.1, (before, after)


def test_tabular_q_learns_from_a_wrong_start_one_good() -> None:
    """Tabular Q (8 capital bins, 7 shares, 8,000 periods of 128 economies) from the grid point nearest 0.6
    (error 0.86) to below 0.25 at D = 1 (measured 0.212: most visited states at the share 0.357, some at 0.214);
    the grid's own floor is 0.033 (its nearest share to alpha beta is 0.357), reached by the scenario's default
    40,000 periods of 256 economies with 12 bins."""
    cfg = GrowthDimensionConfig(k_bins=8)
    eco = build_economy(growth_declaration(1))
    grid = growth_grid(cfg, 1)
    kw = {"n_economies": 128, "lr": 0.1, "lr_power": 0.6, "gamma": BETA, "eps_decay": 2000.0, "eps_end": 0.05,
          "episode_len": 100, "seed": 0}  # fmt: skip
    untrained = run_tabular_q(eco, grid, start=[0.6], periods=1, **kw).decide()
    trained = run_tabular_q(eco, grid, start=[0.6], periods=8000, **kw).decide()
    before = policy_error(eco, lambda s: untrained(s, economy=eco), n_economies=64, periods=50, seed=1)
    after = policy_error(eco, lambda s: trained(s, economy=eco), n_economies=64, periods=50, seed=1)
    assert before > 0.8 and after < 0.25, (before, after)


def test_tabular_q_is_a_function_of_its_seed() -> None:
    """Same seed, same table (bit for bit); another seed, another table."""
    eco = build_economy(growth_declaration(2))
    grid = growth_grid(GrowthDimensionConfig(k_bins=4, share_points=3), 2)
    kw = {"start": [0.15, 0.45], "n_economies": 16, "periods": 200, "lr": 0.1, "lr_power": 0.6, "gamma": BETA,
          "eps_decay": 100.0, "eps_end": 0.05, "episode_len": 50}  # fmt: skip
    a, b, c = (run_tabular_q(eco, grid, seed=s, **kw).q for s in (4, 4, 5))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_start_is_wrong_and_tables_that_do_not_fit_are_reported(tmp_path) -> None:
    """The start saves 0.6 in total, tilted; the tabular row at D = 5 is not run and names the memory it needs."""
    from abm_markets.runner import run_scenario

    assert sum(start_shares(5, 0.6, 0.5)) == pytest.approx(0.6)
    assert start_shares(2, 0.6, 0.5) == pytest.approx([0.15, 0.45])
    cfg = GrowthDimensionConfig()
    assert tabular_cells(cfg, 5) == 2 * 12**5 * 7**5
    over = {"dims": "1,5", "methods": "tabular-q,dqn", "seeds": "1", "tabular_periods": "50", "dqn_iterations": "1",
            "eval_economies": "8", "eval_periods": "10", "crra_case": "false"}  # fmt: skip
    out = run_scenario("growth-dimension", overrides=over, seed=0, out=tmp_path / "r", progress=False)
    import json

    rows = {(r["method"], r["D"]): r for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert rows[("tabular-q", 1)]["ran"] and not rows[("tabular-q", 5)]["ran"]
    assert rows[("tabular-q", 5)]["memory_mb"] == pytest.approx(2 * 12**5 * 7**5 * 8 / 2**20)
    assert "not run" in rows[("tabular-q", 5)]["note"] and "not run" in rows[("dqn", 5)]["note"]
    assert rows[("dqn", 1)]["ran"] and math.isfinite(rows[("dqn", 1)]["policy_error"])
