"""Torch implementation of the batched Q-learning sessions (CPU or CUDA, no code change).

Same algorithm, random streams and arithmetic as the numba kernel in
:mod:`abm_markets.learn.tabular`, written as batched tensor operations over the
``B`` sessions with a Python loop over periods; the tests hold it bit-identical
to the kernel on CPU. It exists for devices numba does not target (CUDA): one
period costs a few dozen small kernel launches whatever ``B`` is, so it pays off
only for very many sessions on a GPU; on CPU the numba kernel is much faster.

splitmix64 runs on signed ``int64`` tensors: addition and multiplication wrap
modulo 2^64 exactly as on ``uint64``; logical right shifts are arithmetic shifts
masked to the low ``64 - k`` bits.
"""

from __future__ import annotations

import numpy as np
import torch

from abm_markets.learn.tabular import QLearningState, calvano_q0, init_state, session_seeds

__all__ = ["run_q_learning_torch"]

_GOLDEN = 0x9E3779B97F4A7C15 - (1 << 64)
_C1 = 0xBF58476D1CE4E5B9 - (1 << 64)
_C2 = 0x94D049BB133111EB - (1 << 64)
_U53 = 1.0 / 9007199254740992.0


def _lsr(z: torch.Tensor, k: int) -> torch.Tensor:
    return (z >> k) & ((1 << (64 - k)) - 1)


def _splitmix(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x + _GOLDEN
    z = (x ^ _lsr(x, 30)) * _C1
    z = (z ^ _lsr(z, 27)) * _C2
    return x, z ^ _lsr(z, 31)


def _uniform(z: torch.Tensor) -> torch.Tensor:
    return _lsr(z, 11).to(torch.float64) * _U53


def run_q_learning_torch(
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
    device: torch.device | str = "cpu",
    check_every: int = 1024,
) -> QLearningState:
    """Run the sessions of :func:`abm_markets.learn.tabular.run_q_learning` with torch on ``device``.

    Arguments as there (``device``: where the tensors live; ``check_every``: periods
    between host-side checks whether all sessions are done). Returns the final state
    as numpy arrays.
    """
    n = profit.shape[0]
    n_profiles = m**n
    n_states = n_profiles**memory
    if q0 is None:
        q0 = calvano_q0(profit, m, n_states, delta)
    st0 = init_state(q0, seeds=session_seeds(seed, n_sessions, seed_offset), alpha=alpha, beta=beta)
    dev = torch.device(device)
    q = torch.as_tensor(st0.q, device=dev)
    greedy = torch.as_tensor(st0.greedy, device=dev)
    s = torch.as_tensor(st0.s, device=dev)
    t = torch.zeros(n_sessions, dtype=torch.int64, device=dev)
    eps = torch.ones(n_sessions, dtype=torch.float64, device=dev)
    stable = torch.zeros(n_sessions, dtype=torch.int64, device=dev)
    rng = torch.as_tensor(st0.rng.view(np.int64), device=dev)
    alpha_t = torch.as_tensor(st0.alpha, device=dev)
    one_minus_alpha = 1.0 - alpha_t
    decay = torch.as_tensor(st0.decay, device=dev)
    prof = torch.as_tensor(np.ascontiguousarray(profit, dtype=np.float64), device=dev)
    rows = torch.arange(n_sessions, device=dev)
    acts = torch.empty((n_sessions, n), dtype=torch.int64, device=dev)

    for period in range(max_periods):
        active = stable < conv_window
        if period % check_every == 0 and not bool(active.any()):
            break
        profile = torch.zeros(n_sessions, dtype=torch.int64, device=dev)
        for i in range(n):
            rng1, z = _splitmix(rng)
            explore = _uniform(z) < eps
            rng2, z2 = _splitmix(rng1)
            a_rand = (_uniform(z2) * m).to(torch.int64)
            a = torch.where(explore, a_rand, greedy[rows, i, s])
            rng = torch.where(active, torch.where(explore, rng2, rng1), rng)
            acts[:, i] = a
            profile = profile * m + a
        s_next = profile if n_states == n_profiles else (s * n_profiles + profile) % n_states
        changed = torch.zeros(n_sessions, dtype=torch.bool, device=dev)
        for i in range(n):
            a = acts[:, i]
            target = prof[i, profile] + delta * q[rows, i, s_next, greedy[rows, i, s_next]]
            old = q[rows, i, s, a]
            new = one_minus_alpha * old + alpha_t * target
            q[rows, i, s, a] = torch.where(active, new, old)
            g_new = torch.argmax(q[rows, i, s], dim=-1)  # first maximiser, as the kernel
            changed |= active & (g_new != greedy[rows, i, s])
            greedy[rows, i, s] = g_new
        s = torch.where(active, s_next, s)
        t = t + active.to(torch.int64)
        eps = torch.where(active, eps * decay, eps)
        stable = torch.where(active, torch.where(changed, 0, stable + 1), stable)

    return QLearningState(
        q=q.cpu().numpy(),
        greedy=greedy.cpu().numpy(),
        s=s.cpu().numpy(),
        t=t.cpu().numpy(),
        eps=eps.cpu().numpy(),
        stable=stable.cpu().numpy(),
        done=(stable >= conv_window).cpu().numpy(),
        rng=rng.cpu().numpy().view(np.uint64),
        alpha=st0.alpha,
        decay=st0.decay,
    )
