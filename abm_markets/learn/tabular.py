"""Tabular Q-learning for repeated pricing games, vectorised over many independent sessions.

Each *session* is one run of ``n`` independent Q-learners repeatedly playing a
stage game with ``m`` actions each. The state is the last ``k`` action profiles
(memory ``k``), so there are ``S = (m**n)**k`` states (Calvano et al. 2020: ``n =
2, m = 15, k = 1``, ``S = 225``). Per period ``t = 0, 1, ...``:

1. each agent ``i`` explores with probability ``eps_t = exp(-beta t)`` (a uniform
   random action), otherwise plays its greedy action ``argmax_a Q_i(s, a)``;
2. the profile ``a`` gives rewards ``pi_i(a)`` and the next state ``s'`` (the
   memory shifts by one profile);
3. each agent updates the visited cell
   ``Q_i(s, a_i) <- (1 - alpha) Q_i(s, a_i) + alpha (pi_i(a) + delta max_a' Q_i(s', a'))``.

A session has *converged* when no agent's greedy strategy (its argmax in every
state) has changed for ``conv_window`` consecutive periods; it stops then, or at
``max_periods``.

Implementation: the per-session loop is sequential by nature, so it is a numba
kernel compiled once and run over sessions in parallel (``prange``). The greedy
action of every state is cached and updated incrementally, so a period costs
O(n) except when the greedy cell's value falls (O(m) then). Each session owns a
splitmix64 random stream seeded from the run seed and its index
(:func:`session_seeds`), so results do not depend on the thread count, the
number of sessions or chunking. :func:`run_session_reference` is the same
algorithm written as a plain one-session Python loop; it must give identical
numbers (tested) and is the baseline of ``benchmarks/calvano_baseline.py``.
:func:`abm_markets.learn.tabular_torch.run_q_learning_torch` is a third, batched
torch version for CUDA devices, also bit-identical on CPU (tested).

Shapes: ``B`` sessions, ``n`` agents, ``S`` states, ``m`` actions, ``P = m**n``
action profiles. Profit tables are ``(n, P)`` with profile index
``sum_j a_j m**(n-1-j)`` (agent 0 most significant, as
:func:`abm_markets.solvers.pricing.profit_table`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numba
import numpy as np

__all__ = [
    "QLearningState",
    "calvano_q0",
    "greedy_cycle",
    "impulse_response",
    "init_state",
    "run_q_learning",
    "run_session_reference",
    "session_seeds",
    "static_best_response",
    "step_sessions",
]

_U53 = 1.0 / 9007199254740992.0  # 2**-53
_MASK = (1 << 64) - 1


# ----------------------------------------------------------------- randomness
def session_seeds(seed: int, n_sessions: int, offset: int = 0) -> np.ndarray:
    """Independent 64-bit seeds, one per session: ``SeedSequence(seed, spawn_key=(offset + b,))``.

    Session ``b``'s seed does not depend on ``n_sessions``, so the first sessions of a
    large run equal a small run with the same seed.
    """
    out = np.empty(n_sessions, dtype=np.uint64)
    for b in range(n_sessions):
        ss = np.random.SeedSequence(entropy=seed, spawn_key=(offset + b,))
        out[b] = ss.generate_state(1, dtype=np.uint64)[0]
    return out


@numba.njit(inline="always")
def _splitmix(x: np.uint64) -> tuple[np.uint64, np.uint64]:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x, z ^ (z >> np.uint64(31))


def _splitmix_py(x: int) -> tuple[int, int]:
    """Pure-Python splitmix64 (bit-identical to the kernel's)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return x, z ^ (z >> 31)


# ---------------------------------------------------------------------- state
@dataclasses.dataclass
class QLearningState:
    """Mutable state of ``B`` sessions (numpy arrays, updated in place by :func:`step_sessions`).

    Attributes:
        q: Q-tables, ``(B, n, S, m)`` float64.
        greedy: ``argmax_a q`` (first maximiser), ``(B, n, S)`` int64.
        s: Current state, ``(B,)`` int64.
        t: Periods played, ``(B,)`` int64.
        eps: Current exploration probability ``exp(-beta t)``, ``(B,)`` float64.
        stable: Consecutive periods without a change of any greedy strategy, ``(B,)`` int64.
        done: Converged (``stable >= conv_window``), ``(B,)`` bool.
        rng: splitmix64 state per session, ``(B,)`` uint64.
        alpha: Learning rate per session, ``(B,)`` float64.
        decay: ``exp(-beta)`` per session, ``(B,)`` float64.
    """

    q: np.ndarray
    greedy: np.ndarray
    s: np.ndarray
    t: np.ndarray
    eps: np.ndarray
    stable: np.ndarray
    done: np.ndarray
    rng: np.ndarray
    alpha: np.ndarray
    decay: np.ndarray

    @property
    def n_sessions(self) -> int:
        return int(self.q.shape[0])

    def take(self, idx: np.ndarray | slice) -> QLearningState:
        """A copy of the sessions ``idx``."""
        return QLearningState(**{f.name: getattr(self, f.name)[idx].copy() for f in dataclasses.fields(self)})


def calvano_q0(profit: np.ndarray, m: int, n_states: int, delta: float) -> np.ndarray:
    """Calvano et al.'s initial Q: the discounted payoff of each action against uniform rivals.

    ``Q_0(s, a_i) = sum_{a_-i} pi_i(a_i, a_-i) / ((1 - delta) m**(n-1))`` for every state.

    Args:
        profit: ``(n, m**n)`` profit table.
        m: Actions per agent.
        n_states: Number of states ``S``.
        delta: Discount factor.

    Returns:
        ``(n, S, m)`` float64.
    """
    n = profit.shape[0]
    tab = profit.reshape((n,) + (m,) * n)
    q = np.empty((n, m))
    for i in range(n):
        other = tuple(j for j in range(n) if j != i)
        q[i] = tab[i].mean(axis=other) / (1.0 - delta) if other else tab[i] / (1.0 - delta)
    return np.ascontiguousarray(np.broadcast_to(q[:, None, :], (n, n_states, m)))


def init_state(
    q0: np.ndarray,
    *,
    seeds: np.ndarray,
    alpha: np.ndarray | float,
    beta: np.ndarray | float,
) -> QLearningState:
    """Fresh sessions: Q = ``q0`` (``(n, S, m)`` or ``(B, n, S, m)``), initial state drawn uniformly.

    The first draw of each session's stream picks the initial state ``s_0``.
    """
    b = len(seeds)
    q = np.array(np.broadcast_to(q0, (b, *q0.shape[-3:])), dtype=np.float64, order="C")
    n_states = q.shape[2]
    rng = np.asarray(seeds, dtype=np.uint64).copy()
    s = np.empty(b, dtype=np.int64)
    for k in range(b):
        x, z = _splitmix_py(int(rng[k]))
        rng[k] = x
        s[k] = int((z >> 11) * _U53 * n_states)
    beta_arr = np.broadcast_to(np.asarray(beta, dtype=np.float64), (b,))
    return QLearningState(
        q=q,
        greedy=np.argmax(q, axis=-1).astype(np.int64),
        s=s,
        t=np.zeros(b, dtype=np.int64),
        eps=np.ones(b),
        stable=np.zeros(b, dtype=np.int64),
        done=np.zeros(b, dtype=bool),
        rng=rng,
        alpha=np.broadcast_to(np.asarray(alpha, dtype=np.float64), (b,)).copy(),
        decay=np.exp(-beta_arr),
    )


# --------------------------------------------------------------------- kernel
@numba.njit(cache=True, boundscheck=False)
def _run_one(
    profit: np.ndarray,
    q: np.ndarray,
    greedy: np.ndarray,
    s: int,
    t: int,
    eps: float,
    stable: int,
    rng: np.uint64,
    alpha: float,
    decay: float,
    delta: float,
    m: int,
    n_profiles: int,
    n_states: int,
    conv_window: int,
    t_end: int,
) -> tuple[int, int, float, int, np.uint64]:
    """Advance one session until convergence or ``t == t_end``; ``q``, ``greedy`` updated in place."""
    n = q.shape[0]
    acts = np.empty(n, dtype=np.int64)
    one_minus_alpha = 1.0 - alpha
    while t < t_end and stable < conv_window:
        profile = 0
        for i in range(n):
            rng, z = _splitmix(rng)
            if (z >> np.uint64(11)) * _U53 < eps:
                rng, z = _splitmix(rng)
                a = int((z >> np.uint64(11)) * _U53 * m)
            else:
                a = greedy[i, s]
            acts[i] = a
            profile = profile * m + a
        # memory 1 (the common case): the state is the profile; avoid the integer division
        s_next = profile if n_states == n_profiles else (s * n_profiles + profile) % n_states
        changed = False
        for i in range(n):
            a = acts[i]
            target = profit[i, profile] + delta * q[i, s_next, greedy[i, s_next]]
            old = q[i, s, a]
            new = one_minus_alpha * old + alpha * target
            q[i, s, a] = new
            g = greedy[i, s]
            if a == g:
                if new < old:  # the greedy cell fell: recompute the first maximiser
                    best = 0
                    vbest = q[i, s, 0]
                    for j in range(1, m):
                        if q[i, s, j] > vbest:
                            vbest = q[i, s, j]
                            best = j
                    if best != g:
                        greedy[i, s] = best
                        changed = True
            else:
                vg = q[i, s, g]
                if new > vg or (new == vg and a < g):
                    greedy[i, s] = a
                    changed = True
        s = s_next
        t += 1
        eps *= decay
        stable = 0 if changed else stable + 1
    return s, t, eps, stable, rng


@numba.njit(cache=True, parallel=True, boundscheck=False)
def _run_many(
    profit: np.ndarray,
    q: np.ndarray,
    greedy: np.ndarray,
    s: np.ndarray,
    t: np.ndarray,
    eps: np.ndarray,
    stable: np.ndarray,
    done: np.ndarray,
    rng: np.ndarray,
    alpha: np.ndarray,
    decay: np.ndarray,
    delta: float,
    m: int,
    n_profiles: int,
    n_states: int,
    conv_window: int,
    t_end: int,
) -> None:
    for b in numba.prange(q.shape[0]):
        if done[b] or t[b] >= t_end:
            continue
        sb, tb, eb, stb, rb = _run_one(
            profit, q[b], greedy[b], s[b], t[b], eps[b], stable[b], rng[b], alpha[b], decay[b],
            delta, m, n_profiles, n_states, conv_window, t_end,
        )  # fmt: skip
        s[b] = sb
        t[b] = tb
        eps[b] = eb
        stable[b] = stb
        rng[b] = rb
        done[b] = stb >= conv_window


def step_sessions(
    state: QLearningState,
    profit: np.ndarray,
    *,
    delta: float,
    conv_window: int,
    t_end: int,
) -> None:
    """Advance all unfinished sessions to period ``t_end`` (or convergence), in place, in parallel.

    Args:
        state: Sessions to advance (see :class:`QLearningState`).
        profit: ``(n, m**n)`` stage-game rewards.
        delta: Discount factor.
        conv_window: Periods of unchanged greedy strategies that count as convergence.
        t_end: Stop every session at this period (the cap, or a chunk boundary).
    """
    n, n_states, m = state.q.shape[1:]
    n_profiles = m**n
    _run_many(
        np.ascontiguousarray(profit, dtype=np.float64), state.q, state.greedy, state.s, state.t, state.eps,
        state.stable, state.done, state.rng, state.alpha, state.decay,
        float(delta), int(m), int(n_profiles), int(n_states), int(conv_window), int(t_end),
    )  # fmt: skip


def run_q_learning(
    profit: np.ndarray,
    *,
    m: int,
    memory: int = 1,
    n_sessions: int,
    alpha: np.ndarray | float,
    beta: np.ndarray | float,
    delta: float,
    conv_window: int,
    max_periods: int,
    seed: int,
    seed_offset: int = 0,
    q0: np.ndarray | None = None,
    chunk: int = 250_000,
    on_chunk: Callable[[QLearningState], None] | None = None,
) -> QLearningState:
    """Run ``n_sessions`` Q-learning sessions to convergence or ``max_periods``.

    Args:
        profit: ``(n, m**n)`` stage-game rewards.
        m: Actions per agent.
        memory: Number of past action profiles in the state (``k``).
        n_sessions: ``B``.
        alpha: Learning rate (scalar or ``(B,)``).
        beta: Exploration decay, ``eps_t = exp(-beta t)`` (scalar or ``(B,)``).
        delta: Discount factor.
        conv_window: Periods of unchanged greedy strategies that count as convergence.
        max_periods: Cap on periods per session.
        seed: Run seed; session ``b`` uses :func:`session_seeds` ``(seed, ., seed_offset)[b]``.
        seed_offset: Shift of session indices in the seed derivation.
        q0: Initial Q, ``(n, S, m)`` or ``(B, n, S, m)``; default :func:`calvano_q0`.
        chunk: Periods per parallel call (progress/checkpoint granularity; results do not depend on it).
        on_chunk: Called with the state after every chunk (progress bars, logging).

    Returns:
        The final :class:`QLearningState`.
    """
    n = profit.shape[0]
    n_states = (m**n) ** memory
    if q0 is None:
        q0 = calvano_q0(profit, m, n_states, delta)
    state = init_state(q0, seeds=session_seeds(seed, n_sessions, seed_offset), alpha=alpha, beta=beta)
    t_end = 0
    while t_end < max_periods and not state.done.all():
        t_end = min(t_end + chunk, max_periods)
        step_sessions(state, profit, delta=delta, conv_window=conv_window, t_end=t_end)
        if on_chunk is not None:
            on_chunk(state)
    return state


# ------------------------------------------------------------ reference loop
def run_session_reference(
    profit: np.ndarray,
    *,
    m: int,
    memory: int,
    alpha: float,
    beta: float,
    delta: float,
    conv_window: int,
    max_periods: int,
    seed: int,
    q0: np.ndarray | None = None,
) -> dict[str, np.ndarray | int | bool]:
    """One session as a plain Python loop: the textbook algorithm, argmax recomputed by numpy.

    ``seed`` is the session's 64-bit seed (an entry of :func:`session_seeds`). Same
    random stream and arithmetic as the kernel, so results are identical; this is the
    independent check of the kernel and the benchmark's one-session-at-a-time baseline.

    Returns:
        ``dict(q, greedy, s, t, converged)``.
    """
    n = profit.shape[0]
    n_profiles = m**n
    n_states = n_profiles**memory
    q = (calvano_q0(profit, m, n_states, delta) if q0 is None else np.array(q0, dtype=float)).copy()
    strategy = np.argmax(q, axis=-1)
    rng, z = _splitmix_py(int(seed))
    s = int((z >> 11) * _U53 * n_states)
    eps, decay = 1.0, float(np.exp(-np.float64(beta)))
    stable, t = 0, 0
    while t < max_periods and stable < conv_window:
        acts = []
        for i in range(n):
            rng, z = _splitmix_py(rng)
            if (z >> 11) * _U53 < eps:
                rng, z = _splitmix_py(rng)
                acts.append(int((z >> 11) * _U53 * m))
            else:
                acts.append(int(np.argmax(q[i, s])))
        profile = 0
        for a in acts:
            profile = profile * m + a
        s_next = (s * n_profiles + profile) % n_states
        changed = False
        for i in range(n):
            target = profit[i, profile] + delta * q[i, s_next].max()
            q[i, s, acts[i]] = (1.0 - alpha) * q[i, s, acts[i]] + alpha * target
            g = int(np.argmax(q[i, s]))
            if g != strategy[i, s]:
                strategy[i, s] = g
                changed = True
        s = s_next
        t += 1
        eps *= decay
        stable = 0 if changed else stable + 1
    return {"q": q, "greedy": strategy, "s": s, "t": t, "converged": stable >= conv_window}


# ------------------------------------------------------------- greedy play
def greedy_cycle(
    greedy: np.ndarray, s0: np.ndarray, profit: np.ndarray, m: int, memory: int = 1
) -> dict[str, np.ndarray]:
    """The limit cycle reached by greedy play from ``s0`` in every session, with its average payoffs.

    Deterministic play from any state enters a cycle within ``S`` periods; the cycle is
    found by playing ``S`` periods and then measuring the return time.

    Args:
        greedy: ``(B, n, S)`` greedy actions.
        s0: ``(B,)`` start states.
        profit: ``(n, m**n)`` rewards.
        m: Actions per agent.
        memory: ``k``.

    Returns:
        ``profit`` ``(B, n)`` mean reward over the cycle, ``length`` ``(B,)``, ``state`` ``(B,)``
        a state on the cycle, ``actions`` ``(B, n)`` mean action index over the cycle.
    """
    b, n, n_states = greedy.shape
    n_profiles = m**n
    rows = np.arange(b)

    def step(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        acts = greedy[rows[:, None], np.arange(n)[None, :], s[:, None]]  # (B, n)
        profile = np.zeros(b, dtype=np.int64)
        for i in range(n):
            profile = profile * m + acts[:, i]
        return (s * n_profiles + profile) % n_states, acts

    s = np.asarray(s0, dtype=np.int64).copy()
    for _ in range(n_states):
        s, _ = step(s)
    start = s.copy()
    length = np.zeros(b, dtype=np.int64)
    tot = np.zeros((b, n))
    act_tot = np.zeros((b, n))
    open_ = np.ones(b, dtype=bool)
    for k in range(1, n_states + 1):
        nxt, acts = step(s)
        profile = nxt % n_profiles
        tot[open_] += profit[:, profile].T[open_]
        act_tot[open_] += acts[open_]
        closing = open_ & (nxt == start)
        length[closing] = k
        open_ &= ~closing
        s = nxt
        if not open_.any():
            break
    return {"profit": tot / length[:, None], "length": length, "state": start, "actions": act_tot / length[:, None]}


def static_best_response(profit: np.ndarray, m: int, agent: int, acts: np.ndarray) -> np.ndarray:
    """Agent ``agent``'s one-shot best response to the others' actions in ``acts``.

    Args:
        profit: ``(n, m**n)`` rewards.
        m: Actions per agent.
        agent: Index of the responding agent.
        acts: ``(B, n)`` action profiles (the agent's own entry is ignored).

    Returns:
        ``(B,)`` maximising action indices (first maximiser).
    """
    n = profit.shape[0]
    b = acts.shape[0]
    weights = m ** np.arange(n - 1, -1, -1)
    base = (acts * weights).sum(axis=1) - acts[:, agent] * weights[agent]
    cand = base[:, None] + np.arange(m)[None, :] * weights[agent]  # (B, m) profiles
    return np.argmax(profit[agent][cand], axis=1).reshape(b)


def impulse_response(
    greedy: np.ndarray,
    s0: np.ndarray,
    profit: np.ndarray,
    m: int,
    *,
    deviator: int | None = 0,
    periods: int = 15,
    memory: int = 1,
) -> np.ndarray:
    """Action paths after a forced one-period deviation (Calvano et al. 2020, Section IV.B).

    Period 0 is greedy play from ``s0`` (the pre-shock profile); in period 1 agent
    ``deviator`` plays its static best response to the others' greedy actions of that
    period; from period 2 on everyone plays greedy again. With ``deviator = None``
    nobody deviates: the path is undisturbed greedy play from ``s0``.

    Args:
        greedy: ``(B, n, S)`` greedy actions.
        s0: ``(B,)`` start states (e.g. a state on the converged cycle).
        profit: ``(n, m**n)`` rewards.
        m: Actions per agent.
        deviator: The agent forced to deviate (None: no deviation).
        periods: Periods after the deviation to record.
        memory: ``k``.

    Returns:
        ``(B, periods + 2, n)`` action indices for periods ``0 .. periods + 1``.
    """
    b, n, n_states = greedy.shape
    n_profiles = m**n
    rows = np.arange(b)
    weights = m ** np.arange(n - 1, -1, -1)
    out = np.empty((b, periods + 2, n), dtype=np.int64)
    s = np.asarray(s0, dtype=np.int64).copy()
    for tau in range(periods + 2):
        acts = greedy[rows[:, None], np.arange(n)[None, :], s[:, None]]
        if tau == 1 and deviator is not None:
            acts[:, deviator] = static_best_response(profit, m, deviator, acts)
        out[:, tau] = acts
        s = (s * n_profiles + (acts * weights).sum(axis=1)) % n_states
    return out
