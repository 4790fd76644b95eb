"""Tabular Q-learning households in the investment economy (market formulation, one capital good), vectorised over
sessions.

Each of ``B`` sessions is one economy of ``N^h`` households that share one Q table (independent learners with a
shared table: each household updates it from its own reward and state). The state is a pair of bins, own capital and
mean capital, on a logarithmic grid between ``k_lo`` and ``k_hi`` (clamped at the ends); the action is a spending
share, the steady-state share times ``exp(m)`` for ``m`` in ``log_multipliers``. Per period every household plays
epsilon-greedy (``eps_t = max(eps_end, exp(-t / eps_decay))``), the economy steps, and each visited cell moves toward
``r + gamma max_a' Q(s', a')`` by ``alpha`` (households of one session that visit the same cell average their
targets). Episodes restart every ``episode`` periods from ``K_0`` with a uniform spread.

The initial policy is set by the initial table: ``Q_0 = q_base`` everywhere plus ``init_bonus`` on the action
``init_action``, so the greedy policy starts as that constant share and changes only when experience says so.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
from torch import Tensor

from abm_markets.engine.investment_groups import steady_state_spending_share

__all__ = [
    "TabularMacroConfig",
    "TabularMacroResult",
    "greedy_decide",
    "initial_table",
    "run_tabular_households",
    "state_index",
]


@dataclasses.dataclass(frozen=True)
class TabularMacroConfig:
    k_lo: float
    k_hi: float
    k_bins: int = 24
    log_multipliers: tuple[float, ...] = (-0.5, -0.4, -0.3, -0.2, -0.1, 0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
    sessions: int = 64
    periods: int = 20_000
    episode: int = 400
    alpha: float = 0.1
    eps_decay: float = 4_000.0
    eps_end: float = 0.01
    init_action: int = 5
    init_bonus: float = 1.0


@dataclasses.dataclass
class TabularMacroResult:
    q: Tensor  # [B, S, A]
    shares: Tensor  # [A] spending share of each action
    train_wall_s: float
    periods: int


def _bins(k: Tensor, cfg: TabularMacroConfig) -> Tensor:
    x = (torch.log(k) - math.log(cfg.k_lo)) / (math.log(cfg.k_hi) - math.log(cfg.k_lo))
    return (x * cfg.k_bins).floor().clamp(0, cfg.k_bins - 1).long()


def state_index(capital: Tensor, cfg: TabularMacroConfig) -> Tensor:
    """``[B, H]`` table rows: own-capital bin times ``k_bins`` plus mean-capital bin (one capital good)."""
    own = capital[..., 0]
    mean = own.mean(-1, keepdim=True).expand_as(own)
    return _bins(own, cfg) * cfg.k_bins + _bins(mean, cfg)


def initial_table(cfg: TabularMacroConfig, q_base: float, dtype: torch.dtype) -> Tensor:
    """``Q_0 [sessions, k_bins^2, actions]``: ``q_base`` everywhere plus ``init_bonus`` on ``init_action``."""
    q = torch.full((cfg.sessions, cfg.k_bins * cfg.k_bins, len(cfg.log_multipliers)), q_base, dtype=dtype)
    q[..., cfg.init_action] += cfg.init_bonus
    return q


def run_tabular_households(
    economy: Any, cfg: TabularMacroConfig, *, k0: float, k_spread: float, seed: int, q_base: float
) -> TabularMacroResult:
    """Train the shared tables of ``cfg.sessions`` sessions of ``economy`` (an ``InvestmentEconomy`` with one good,
    households only); episodes start at ``k0 * U[1 - k_spread, 1 + k_spread]``."""
    g = torch.Generator().manual_seed(seed)
    b, h = cfg.sessions, economy.n_households
    dt = economy.dtype
    shares = steady_state_spending_share(economy.cfg) * torch.exp(torch.tensor(cfg.log_multipliers, dtype=dt))
    q = initial_table(cfg, q_base, dt)
    gamma = economy.cfg.beta
    rows = torch.arange(b).unsqueeze(-1).expand(b, h)

    def reset() -> Any:
        st = economy.initial_state(b, g)
        u = torch.rand((b, h, 1), generator=g, dtype=dt)
        return dataclasses.replace(st, capital=k0 * (1.0 + k_spread * (2.0 * u - 1.0)))

    state = reset()
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread is fastest, and leaves the other core alone
    try:
        _loop(economy, cfg, q, shares, state, reset, g, rows, gamma)
    finally:
        torch.set_num_threads(threads)
    return TabularMacroResult(q=q, shares=shares, train_wall_s=time.perf_counter() - t0, periods=cfg.periods)


def _loop(
    economy: Any,
    cfg: TabularMacroConfig,
    q: Tensor,
    shares: Tensor,
    state: Any,
    reset: Any,
    g: torch.Generator,
    rows: Tensor,
    gamma: float,
) -> None:
    """The training periods; updates ``q`` in place."""
    b, n_s, n_a = q.shape
    h = rows.shape[1]
    dt = q.dtype
    for t in range(cfg.periods):
        if t and t % cfg.episode == 0:
            state = reset()
        s = state_index(state.capital, cfg)
        greedy = q[rows, s].argmax(-1)
        eps = max(cfg.eps_end, math.exp(-t / cfg.eps_decay))
        explore = torch.rand((b, h), generator=g, dtype=dt) < eps
        a = torch.where(explore, torch.randint(0, n_a, (b, h), generator=g), greedy)
        nxt, out = economy.step(state, {"households": shares[a].unsqueeze(-1)}, g)
        s2 = state_index(nxt.capital, cfg)
        target = out.utility + gamma * q[rows, s2].amax(-1)
        flat = (rows * n_s + s) * n_a + a
        td = torch.zeros(b * n_s * n_a, dtype=dt).index_add_(0, flat.reshape(-1), (target - q[rows, s, a]).reshape(-1))
        cnt = torch.zeros(b * n_s * n_a, dtype=dt).index_add_(0, flat.reshape(-1), torch.ones(b * h, dtype=dt))
        q += (cfg.alpha * td / cnt.clamp_min(1.0)).view(b, n_s, n_a)
        state = nxt


def greedy_decide(result: TabularMacroResult, cfg: TabularMacroConfig) -> Any:
    """``state -> {"households": shares}`` of each session's greedy policy (economy ``b`` uses table ``b``)."""
    q, shares = result.q, result.shares

    def decide(state: Any) -> dict[str, Tensor]:
        s = state_index(state.capital, cfg)
        rows = torch.arange(s.shape[0]).unsqueeze(-1).expand_as(s)
        return {"households": shares[q[rows, s].argmax(-1)].unsqueeze(-1)}

    return decide
