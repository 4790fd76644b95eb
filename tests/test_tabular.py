"""Vectorised tabular Q-learning: kernel vs plain loop, determinism, convergence rule, monopolist."""

from __future__ import annotations

import numpy as np
import pytest

from abm_markets.learn.tabular import (
    calvano_q0,
    greedy_cycle,
    run_q_learning,
    run_session_reference,
    session_seeds,
)
from abm_markets.solvers.pricing import LogitMarket, bertrand_nash, joint_monopoly, price_grid, profit_table

BASE = LogitMarket()


@pytest.fixture(scope="module")
def calvano_table() -> np.ndarray:
    grid = price_grid(bertrand_nash(BASE)[0], joint_monopoly(BASE)[0])
    return profit_table(grid, BASE)


@pytest.mark.parametrize(("m", "memory", "periods"), [(15, 1, 20_000), (3, 2, 20_000)])
def test_kernel_equals_one_session_loop(m: int, memory: int, periods: int) -> None:
    grid = np.linspace(1.4, 2.0, m)
    tab = profit_table(grid, BASE)
    kw = dict(m=m, memory=memory, alpha=0.15, beta=2e-4, delta=0.95, conv_window=10**9, max_periods=periods)
    state = run_q_learning(tab, n_sessions=3, seed=11, chunk=7_001, **kw)  # odd chunk: results must not depend on it
    seeds = session_seeds(11, 3)
    for b in range(3):
        ref = run_session_reference(tab, seed=int(seeds[b]), **kw)
        np.testing.assert_array_equal(state.q[b], ref["q"])  # bit-identical
        np.testing.assert_array_equal(state.greedy[b], ref["greedy"])
        assert state.s[b] == ref["s"]
        assert state.t[b] == ref["t"] == periods
    np.testing.assert_array_equal(state.greedy, np.argmax(state.q, axis=-1))


def test_same_seed_same_result_and_sessions_independent_of_batch(calvano_table: np.ndarray) -> None:
    kw = dict(m=15, alpha=0.15, beta=1e-4, delta=0.95, conv_window=2_000, max_periods=60_000)
    a = run_q_learning(calvano_table, n_sessions=6, seed=5, **kw)
    b = run_q_learning(calvano_table, n_sessions=6, seed=5, chunk=9_999, **kw)
    c = run_q_learning(calvano_table, n_sessions=2, seed=5, **kw)
    d = run_q_learning(calvano_table, n_sessions=6, seed=6, **kw)
    np.testing.assert_array_equal(a.q, b.q)
    np.testing.assert_array_equal(a.t, b.t)
    np.testing.assert_array_equal(a.q[:2], c.q)
    assert not np.array_equal(a.q, d.q)


def test_convergence_detection_on_constructed_case() -> None:
    # One agent, one state (memory 0), two actions, rewards (1, 0), delta = 0, alpha = 1,
    # Q0 = (0, 0.5). Period 0 always explores (eps_0 = 1); whichever action is drawn, the
    # update makes action 0 greedy (Q = (1, .5) or (0, 0) with ties to the first index)
    # and it never changes again. With eps ~ 0 afterwards the session must stop at exactly
    # t = 1 + conv_window, with greedy action 0.
    tab = np.array([[1.0, 0.0]])
    q0 = np.array([[[0.0, 0.5]]])
    for seed in range(4):
        st = run_q_learning(
            tab, m=2, memory=0, n_sessions=5, alpha=1.0, beta=60.0, delta=0.0,
            conv_window=500, max_periods=10_000, seed=seed, q0=q0,
        )  # fmt: skip
        assert st.done.all()
        np.testing.assert_array_equal(st.t, 501)
        np.testing.assert_array_equal(st.greedy[:, 0, 0], 0)
    # A window longer than the cap never converges and stops at the cap.
    st = run_q_learning(
        tab, m=2, memory=0, n_sessions=2, alpha=1.0, beta=60.0, delta=0.0,
        conv_window=5_000, max_periods=1_000, seed=0, q0=q0,
    )  # fmt: skip
    assert not st.done.any()
    np.testing.assert_array_equal(st.t, 1_000)


def test_calvano_q0_is_discounted_payoff_against_uniform_rival(calvano_table: np.ndarray) -> None:
    q0 = calvano_q0(calvano_table, 15, 225, 0.95)
    tab = calvano_table.reshape(2, 15, 15)
    assert q0.shape == (2, 225, 15)
    np.testing.assert_allclose(q0[0, 17], tab[0].sum(axis=1) / (0.05 * 15))
    np.testing.assert_allclose(q0[1, 200], tab[1].sum(axis=0) / (0.05 * 15))


def test_greedy_cycle_of_constant_and_alternating_strategies(calvano_table: np.ndarray) -> None:
    greedy = np.zeros((2, 2, 225), dtype=np.int64)
    greedy[0, :, :] = 14  # both always at the top price
    # session 1: firm 0 alternates between prices 3 and 9 depending on its own last price, firm 1 always 5
    last0 = np.arange(225) // 15
    greedy[1, 0] = np.where(last0 == 3, 9, 3)
    greedy[1, 1] = 5
    cyc = greedy_cycle(greedy, np.array([0, 100]), calvano_table, 15)
    np.testing.assert_array_equal(cyc["length"], [1, 2])
    np.testing.assert_allclose(cyc["profit"][0], calvano_table[:, 14 * 15 + 14])
    expect = (calvano_table[:, 3 * 15 + 5] + calvano_table[:, 9 * 15 + 5]) / 2
    np.testing.assert_allclose(cyc["profit"][1], expect)
    np.testing.assert_allclose(cyc["actions"][1], [6.0, 5.0])


def test_q_learning_monopolist_learns_grid_optimum() -> None:
    mk = LogitMarket(n_firms=1)
    p_star = joint_monopoly(mk)[0]
    grid = np.linspace(1.5, 2.1, 13)
    tab = profit_table(grid, mk)
    st = run_q_learning(
        tab, m=13, memory=0, n_sessions=8, alpha=0.1, beta=1e-4, delta=0.9,
        conv_window=5_000, max_periods=400_000, seed=1, q0=np.zeros((1, 1, 13)),
    )  # fmt: skip
    assert st.done.all() and (st.t > 5_000).all()  # from Q = 0 the greedy price had to change
    best = int(np.argmax(tab[0]))
    np.testing.assert_array_equal(st.greedy[:, 0, 0], best)
    assert abs(grid[best] - p_star) <= (grid[1] - grid[0]) / 2
    # Q converges to the Bellman fixed point pi(a) + delta max pi / (1 - delta) on the greedy cell.
    np.testing.assert_allclose(st.q[:, 0, 0, best], tab[0, best] / 0.1, rtol=1e-3)


@pytest.mark.parametrize(("m", "memory"), [(15, 1), (3, 2)])
def test_torch_path_equals_numba_kernel(m: int, memory: int) -> None:
    from abm_markets.learn.tabular_torch import run_q_learning_torch

    tab = profit_table(np.linspace(1.4, 2.0, m), BASE)
    # fast decay and a short window: sessions converge at different periods, so freezing is exercised
    kw = dict(m=m, memory=memory, n_sessions=4, alpha=0.5, beta=5e-3, delta=0.5, conv_window=200, max_periods=3_000)
    a = run_q_learning(tab, seed=9, **kw)
    b = run_q_learning_torch(tab, seed=9, check_every=64, **kw)
    assert a.done.any() and len(set(a.t.tolist())) > 1  # sessions stop at different periods
    for name in ("q", "greedy", "s", "t", "eps", "stable", "done", "rng"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
