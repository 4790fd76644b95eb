"""Tabular Q-learning on any protocol economy: a grid over one group's observation and actions.

Written for economies of one decision group with one agent (the growth economies of ``growth-dimension``);
``n_economies`` economies learn one table at once, so each period is a few batched tensor operations. The table
has ``n_states x n_actions`` cells: it grows as the product of the per-feature and per-action grid sizes, which
is what limits the method as an economy's dimension grows (docs/growth.md).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import torch
from torch import Tensor

__all__ = ["TabularGrid", "TabularResult", "run_tabular_q"]


@dataclasses.dataclass(frozen=True)
class TabularGrid:
    """A grid over a protocol economy's observation and actions (one decision group, one agent).

    Attributes:
        edges: Per observation feature, the inner bin edges ``[n_f - 1]`` (``torch.bucketize``).
        actions: Per action variable, its grid values ``[m_a]``; the joint actions are the product grid.
    """

    edges: tuple[Tensor, ...]
    actions: tuple[Tensor, ...]

    @property
    def n_states(self) -> int:
        return math.prod(len(e) + 1 for e in self.edges)

    @property
    def n_actions(self) -> int:
        return math.prod(len(a) for a in self.actions)

    def state_index(self, obs: Tensor) -> Tensor:
        """``obs [B, F]`` -> table rows ``[B]`` (feature 0 most significant)."""
        idx = torch.zeros(obs.shape[0], dtype=torch.long, device=obs.device)
        for f, e in enumerate(self.edges):
            idx = idx * (len(e) + 1) + torch.bucketize(obs[:, f].contiguous(), e)
        return idx

    def action_values(self, a: Tensor) -> Tensor:
        """Joint action indices ``[B]`` -> action values ``[B, A]`` (action 0 most significant)."""
        cols, rest = [], a
        for grid in reversed(self.actions):
            cols.append(grid[rest % len(grid)])
            rest = rest // len(grid)
        return torch.stack(cols[::-1], -1)

    def nearest(self, values: list[float]) -> int:
        """Joint index of the grid point nearest to ``values`` (one value per action variable)."""
        idx = 0
        for grid, v in zip(self.actions, values, strict=True):
            idx = idx * len(grid) + int((grid - v).abs().argmin())
        return idx


@dataclasses.dataclass
class TabularResult:
    q: Tensor  # [S, A] float32
    grid: TabularGrid
    train_wall_s: float
    periods: int

    def decide(self, group: str = "households") -> Any:
        """``state -> {group: [B, 1, A]}``: the greedy policy of the table."""

        def decide(state: Any, *, economy: Any) -> dict[str, Tensor]:
            obs = economy.observe(state, group)[:, 0]
            a = self.q[self.grid.state_index(obs)].argmax(-1)
            return {group: self.grid.action_values(a).unsqueeze(1)}

        return decide


def run_tabular_q(
    economy: Any,
    grid: TabularGrid,
    *,
    start: list[float],
    n_economies: int,
    periods: int,
    lr: float,
    lr_power: float,
    gamma: float,
    eps_decay: float,
    eps_end: float,
    episode_len: int,
    seed: int,
    group: str = "households",
) -> TabularResult:
    """Q-learning of one table on a protocol economy (one group of one agent), ``n_economies`` economies at once.

    Per period each economy plays epsilon-greedy (``eps_t = max(eps_end, exp(-t / eps_decay))``, a uniform joint
    action otherwise), the economy steps, and each visited cell moves toward ``r + gamma max_a' Q(s', a')`` by
    ``lr`` (economies visiting the same cell average their targets). Economies restart every ``episode_len``
    periods from ``economy.initial_state``. The table starts at ``q0 = u_start / (1 - gamma)`` (the start
    policy's mean reward on its first period) with a bonus of 1 on the grid point nearest to ``start``, so the
    greedy policy starts there and moves only when experience says so.
    """
    g = torch.Generator().manual_seed(seed)
    n_s, n_a = grid.n_states, grid.n_actions
    a_start = grid.nearest(start)
    b = n_economies
    state = economy.initial_state(b, g)
    start_act = grid.action_values(torch.full((b,), a_start, dtype=torch.long)).unsqueeze(1)
    _, out0 = economy.step(state, {group: start_act}, torch.Generator().manual_seed(seed + 1))
    q0 = float(economy.rewards(out0)[group].mean()) / (1.0 - gamma)
    q = torch.full((n_s, n_a), q0, dtype=torch.float32)
    q[:, a_start] += 1.0
    visits = torch.zeros(n_s * n_a)
    t0 = time.perf_counter()
    s = grid.state_index(economy.observe(state, group)[:, 0])
    for t in range(periods):
        if t and t % episode_len == 0:
            state = economy.initial_state(b, g)
            s = grid.state_index(economy.observe(state, group)[:, 0])
        eps = max(eps_end, math.exp(-t / eps_decay))
        explore = torch.rand(b, generator=g) < eps
        a = torch.where(explore, torch.randint(0, n_a, (b,), generator=g), q[s].argmax(-1))
        state, out = economy.step(state, {group: grid.action_values(a).unsqueeze(1)}, g)
        r = economy.rewards(out)[group][:, 0].float()
        s2 = grid.state_index(economy.observe(state, group)[:, 0])
        flat = s * n_a + a
        td = torch.zeros(n_s * n_a).index_add_(0, flat, r + gamma * q[s2].amax(-1) - q.view(-1)[flat])
        cnt = torch.zeros(n_s * n_a).index_add_(0, flat, torch.ones(b))
        visits.add_(cnt)
        # step of a cell visited k times this period after N visits in all: (k / N)^omega, at most lr
        step = (cnt / visits.clamp_min(1.0)).pow(lr_power).clamp_max(lr)
        q.view(-1).add_(step * td / cnt.clamp_min(1.0))
        s = s2
    return TabularResult(q=q, grid=grid, train_wall_s=time.perf_counter() - t0, periods=periods)
