"""Stateless learners in a repeated symmetric two-player game, many sessions in parallel.

Used for equilibrium selection: which equilibrium of a stage game with several
Pareto-ranked equilibria do learners reach, from given initial beliefs and with
given learning parameters? Each session is two players of one *kind*:

* ``KIND_Q_EGREEDY`` (0): stateless Q-learning ``Q(a) <- Q(a) + alpha (r - Q(a))``;
  explores with probability ``eps_t = eps0 exp(-beta t)`` (uniform action), else greedy.
* ``KIND_Q_BOLTZMANN`` (1): the same update; actions drawn from
  ``softmax(Q / tau_t)`` with temperature ``tau_t = tau0 exp(-beta t)``.
* ``KIND_FICTITIOUS`` (2): fictitious play: a belief over the other's actions from
  counts (prior weight ``w0`` on the initial belief, +1 per observed action);
  plays the best response to the belief, trembling uniformly with ``eps_t =
  eps0 exp(-beta t)``.

Initial condition: player ``i`` believes the other plays effort index ``b_i``.
Q-learners start from ``Q_i(a) = P[a, b_i]`` (the payoff if the belief were true);
fictitious players start with ``w0`` prior counts on ``b_i``. The greedy action is
``argmax Q`` (or the best response to the belief). A session converges when both
greedy actions are unchanged for ``conv_window`` periods (cap ``max_periods``).

Randomness: one splitmix64 stream per session (as :mod:`abm_markets.learn.tabular`),
so results depend only on the run seed and the session's index.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from abm_markets.learn.tabular import _U53, _splitmix, session_seeds

__all__ = ["KINDS", "run_game_sessions"]

KIND_Q_EGREEDY, KIND_Q_BOLTZMANN, KIND_FICTITIOUS = 0, 1, 2
KINDS = {"q-egreedy": KIND_Q_EGREEDY, "q-boltzmann": KIND_Q_BOLTZMANN, "fictitious-play": KIND_FICTITIOUS}


@numba.njit(inline="always")
def _argmax(v: np.ndarray) -> int:
    best, vb = 0, v[0]
    for j in range(1, v.shape[0]):
        if v[j] > vb:
            best, vb = j, v[j]
    return best


@numba.njit(cache=True, boundscheck=False)
def _session(
    payoff: np.ndarray,
    kind: int,
    alpha: float,
    beta: float,
    eps0: float,
    tau0: float,
    w0: float,
    b0: int,
    b1: int,
    rng: np.uint64,
    conv_window: int,
    max_periods: int,
) -> tuple[int, int, int, bool]:
    k = payoff.shape[0]
    v = np.empty((2, k))  # Q-values, or expected payoff x total belief weight for fictitious play
    for a in range(k):
        if kind == KIND_FICTITIOUS:
            v[0, a] = w0 * payoff[a, b0]
            v[1, a] = w0 * payoff[a, b1]
        else:
            v[0, a] = payoff[a, b0]
            v[1, a] = payoff[a, b1]
    greedy = np.array([_argmax(v[0]), _argmax(v[1])])
    acts = np.empty(2, dtype=np.int64)
    probs = np.empty(k)
    decay = math.exp(-beta)
    eps = eps0
    tau = tau0
    stable = 0
    t = 0
    while t < max_periods and stable < conv_window:
        for i in range(2):
            if kind == KIND_Q_BOLTZMANN:
                if tau < 1e-12:
                    acts[i] = greedy[i]
                else:
                    vmax = v[i, greedy[i]]
                    tot = 0.0
                    for a in range(k):
                        probs[a] = math.exp((v[i, a] - vmax) / tau)
                        tot += probs[a]
                    rng, z = _splitmix(rng)
                    u = (z >> np.uint64(11)) * _U53 * tot
                    a = 0
                    acc = probs[0]
                    while acc <= u and a < k - 1:
                        a += 1
                        acc += probs[a]
                    acts[i] = a
            else:
                rng, z = _splitmix(rng)
                if (z >> np.uint64(11)) * _U53 < eps:
                    rng, z = _splitmix(rng)
                    acts[i] = int((z >> np.uint64(11)) * _U53 * k)
                else:
                    acts[i] = greedy[i]
        changed = False
        for i in range(2):
            a, b = acts[i], acts[1 - i]
            if kind == KIND_FICTITIOUS:
                for x in range(k):
                    v[i, x] += payoff[x, b]
            else:
                v[i, a] += alpha * (payoff[a, b] - v[i, a])
            g = _argmax(v[i])
            if g != greedy[i]:
                greedy[i] = g
                changed = True
        t += 1
        eps *= decay
        tau *= decay
        stable = 0 if changed else stable + 1
    return greedy[0], greedy[1], t, stable >= conv_window


@numba.njit(cache=True, parallel=True, boundscheck=False)
def _many(
    payoff: np.ndarray,
    kind: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    eps0: np.ndarray,
    tau0: np.ndarray,
    w0: np.ndarray,
    b0: np.ndarray,
    b1: np.ndarray,
    seeds: np.ndarray,
    conv_window: int,
    max_periods: int,
    out_a: np.ndarray,
    out_t: np.ndarray,
    out_done: np.ndarray,
) -> None:
    for s in numba.prange(kind.shape[0]):
        g0, g1, t, done = _session(
            payoff,
            kind[s],
            alpha[s],
            beta[s],
            eps0[s],
            tau0[s],
            w0[s],
            b0[s],
            b1[s],
            seeds[s],
            conv_window,
            max_periods,
        )
        out_a[s, 0] = g0
        out_a[s, 1] = g1
        out_t[s] = t
        out_done[s] = done


def run_game_sessions(
    payoff: np.ndarray,
    *,
    kind: np.ndarray,
    alpha: np.ndarray,
    beta: np.ndarray,
    eps0: np.ndarray | float = 1.0,
    tau0: np.ndarray,
    w0: np.ndarray,
    belief: np.ndarray,
    seed: int,
    conv_window: int,
    max_periods: int,
) -> dict[str, np.ndarray]:
    """Run ``B`` sessions of the repeated game ``payoff`` (``(K, K)``, ``pi_1 = P[a1, a2]``, ``pi_2 = P[a2, a1]``).

    Args:
        payoff: ``(K, K)`` stage payoffs.
        kind: ``(B,)`` learner kind codes (values of :data:`KINDS`).
        alpha: ``(B,)`` learning rates (Q kinds).
        beta: ``(B,)`` decay of exploration (``eps_t`` or ``tau_t``).
        eps0: ``(B,)`` initial exploration probability (epsilon-greedy kinds).
        tau0: ``(B,)`` initial Boltzmann temperature.
        w0: ``(B,)`` prior belief weight (fictitious play).
        belief: ``(B, 2)`` initial belief of each player about the other's effort index.
        seed: Run seed; session ``b`` uses ``session_seeds(seed, B)[b]``.
        conv_window: Periods of unchanged greedy actions that count as convergence.
        max_periods: Cap.

    Returns:
        ``actions`` ``(B, 2)`` final greedy actions, ``periods`` ``(B,)``, ``converged`` ``(B,)``.
    """
    b = len(kind)
    out_a = np.empty((b, 2), dtype=np.int64)
    out_t = np.empty(b, dtype=np.int64)
    out_done = np.empty(b, dtype=np.bool_)

    def f(x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.float64), (b,)))

    belief = np.asarray(belief, dtype=np.int64)
    _many(
        np.ascontiguousarray(payoff, dtype=np.float64), np.asarray(kind, dtype=np.int64), f(alpha), f(beta),
        f(eps0), f(tau0), f(w0), np.ascontiguousarray(belief[:, 0]), np.ascontiguousarray(belief[:, 1]),
        session_seeds(seed, b), int(conv_window), int(max_periods), out_a, out_t, out_done,
    )  # fmt: skip
    return {"actions": out_a, "periods": out_t, "converged": out_done}
