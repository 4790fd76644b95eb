"""Batched deep RL (DQN, PPO) for Calvano's pricing duopoly: ``S`` independent sessions trained at once.

A *session* is one run of two independent DQN firms (each with its own online network, target network, Adam
state and replay sampling) in one ``LogitDuopoly-v1`` market (:mod:`abm_markets.engine.pricing`), played for
``T`` periods, exactly as a tabular session of :mod:`abm_markets.learn.tabular`. The ``2S`` networks are stacked
along a leading dimension and evaluated with batched matrix products (``torch.baddbmm``), so a period of all
sessions costs a handful of tensor operations instead of ``2S`` small ones. :func:`train_ppo_sessions` is the
same for PPO firms (softmax policy over the grid and a value network per firm; see its docstring); the DQN
period is:

Per period ``t = 0 .. T-1`` of every session:

1. firm ``i`` observes ``o_i = (own last price, rival's last price)``, each mapped affinely from the grid's
   range ``[p_lo, p_hi]`` to ``[-1, 1]`` (Calvano's state, memory 1, in the firm's own perspective);
2. with probability ``eps_t = exp(-beta t)`` it posts a uniformly drawn grid price, otherwise
   ``argmax_a Q_i(o_i, a)`` (first maximiser) over Calvano's ``m = 15`` grid prices;
3. the economy's ``step`` gives the profits ``pi_i``; the transition ``(s, a_0, a_1, pi_0, pi_1, s')`` is stored
   once per session (both firms' replay buffers hold the same transitions; each firm draws its own minibatches);
4. every ``train_every`` periods, once ``batch_size`` transitions are stored, each network takes one Adam step
   on the double-DQN loss ``mean_j (Q_i(o_j, a_j) - r_j - delta Q^-_i(o'_j, argmax_a Q_i(o'_j, a)))^2`` with the
   reward standardised as ``r = (pi - m_pi) / s_pi`` (``m_pi``, ``s_pi``: mean and sd of the profit table over all
   price profiles, i.e. under uniformly random play); the target network ``Q^-`` is synced every
   ``target_update`` gradient steps.

Because the loss of the stacked networks is the *sum* of the per-network mean losses, each network's gradient is
exactly its own; Adam is element-wise, so one Adam over the stacked tensors is ``2S`` independent Adams.

Randomness: every draw of session ``b`` (its initial state, network initialisation, exploration coins, random
prices, minibatch indices) is a counter-based splitmix64 hash of the session's 64-bit seed
(:func:`abm_markets.learn.tabular.session_seeds`), the period and a stream label, so a session's numbers do not
depend on how many other sessions share the batch (tested: ``S`` batched sessions equal ``S`` runs of ``S = 1``).

After training, the greedy strategy of each firm is read off on all ``m^2`` price pairs (a ``(S, 2, m^2)``
action table), so outcomes are measured exactly as for tabular Q: the limit cycle of greedy play
(:func:`abm_markets.learn.tabular.greedy_cycle`).

Shapes: ``S`` sessions, ``N = 2S`` networks (network ``2b + i`` is firm ``i`` of session ``b``), ``H`` hidden
units, ``m`` grid prices, ``K`` minibatch size, ``C`` replay capacity.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError

__all__ = [
    "BatchedDQNConfig",
    "BatchedPPOConfig",
    "SessionsResult",
    "greedy_tables",
    "hash_uniform",
    "initial_params",
    "initial_state_index",
    "observation_features",
    "train_dqn_sessions",
    "train_ppo_sessions",
]

_U53 = 1.0 / 9007199254740992.0  # 2**-53
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM_STATE, _STREAM_INIT, _STREAM_COIN, _STREAM_ACT, _STREAM_BATCH = 1, 2, 3, 4, 5


@dataclasses.dataclass(frozen=True, kw_only=True)
class _SessionsConfig(Config):
    """What the batched DQN and PPO duopolists share: the session, the market's grid and the stability check."""

    periods: int = param(5000, "Periods T of each session (one market per session).", ge=1)
    gamma: float = param(0.95, "Discount factor delta.", ge=0.0, lt=1.0)
    hidden: tuple[int, ...] = param((64, 64), "Hidden layer widths of each network (ReLU).", ge=1)
    lr: float = param(1e-3, "Adam learning rate.", gt=0.0)
    grid_size: int = param(15, "Calvano's price grid points m (the actions).", ge=2)
    fixed_rival: int = param(
        -1, "Firm 1 always posts this grid index and does not learn (-1: firm 1 learns too).", ge=-1
    )
    check_every: int = param(0, "Periods between greedy-table snapshots (0: T // 100).", ge=0)
    check_tail: float = param(0.1, "Share of T at the end over which greedy stability is checked.", gt=0.0, le=1.0)

    def validate(self) -> None:
        if self.fixed_rival >= self.grid_size:
            raise ConfigError(
                f"{type(self).__name__}.fixed_rival = {self.fixed_rival}; "
                f"expected -1 or a grid index < {self.grid_size}"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchedDQNConfig(_SessionsConfig):
    """Settings of the batched DQN duopolists (defaults: collusion-deeprl's DQN where it applies, see the docs)."""

    eps_beta: float = param(1.6e-3, "Exploration decay per period: eps_t = exp(-eps_beta t).", gt=0.0)
    batch_size: int = param(32, "Minibatch transitions per gradient step and network.", ge=1)
    train_every: int = param(4, "Periods between gradient steps (one step per network each time).", ge=1)
    target_update: int = param(100, "Gradient steps between target-network syncs.", ge=1)
    buffer_size: int = param(50_000, "Replay capacity per session (the latest transitions).", ge=1)
    xi: float = param(0.1, "Grid extends xi (p_M - p_N) beyond the Nash and monopoly prices.", ge=0.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BatchedPPOConfig(_SessionsConfig):
    """Settings of the batched PPO duopolists (discrete grid prices; collusion-deeprl's PPO settings otherwise);
    ``hidden`` sizes the policy and the value network alike."""

    gae_lambda: float = param(0.95, "GAE lambda.", ge=0.0, le=1.0)
    rollout: int = param(32, "Periods per rollout (one market: transitions per update and network).", ge=2)
    epochs: int = param(4, "Full-batch Adam steps on each rollout.", ge=1)
    clip: float = param(0.2, "PPO ratio clip.", gt=0.0)
    vf_coef: float = param(0.5, "Weight of the value loss.", ge=0.0)


@dataclasses.dataclass
class SessionsResult:
    """Outcome of :func:`train_dqn_sessions` and :func:`train_ppo_sessions`.

    Attributes:
        greedy: Final greedy action per firm and state, ``(S, 2, m^2)`` int64 (state = ``a_0 m + a_1``).
        state: Final state (last price profile index), ``(S,)`` int64.
        stable: Greedy tables identical at every snapshot of the last ``check_tail`` of the run, ``(S,)`` bool.
        changes: Snapshots in that tail at which either table changed, ``(S,)`` int64.
        profit_gain_train: Mean profit gain over the last ``check_tail`` of training play, ``(S,)``.
        params: Final parameters (stacked, ``N`` leading), for tests.
        gradient_steps: Adam steps taken by each network.
    """

    greedy: np.ndarray
    state: np.ndarray
    stable: np.ndarray
    changes: np.ndarray
    profit_gain_train: np.ndarray
    params: list[Tensor]
    gradient_steps: int


# ------------------------------------------------------------------------------------------------ randomness
def hash_uniform(keys: np.ndarray, t: int, stream: int, n: int) -> np.ndarray:
    """Counter-based uniforms on [0, 1): splitmix64 of (key, period, stream, index).

    Args:
        keys: ``(S,)`` uint64 session keys.
        t: Period (any non-negative int).
        stream: Label of the kind of draw.
        n: Draws per session.

    Returns:
        ``(S, n)`` float64, a pure function of ``(keys[b], t, stream, j)`` for entry ``(b, j)``.
    """
    ctr = np.uint64((t * 0x100000001B3 + stream * 0xC2B2AE3D27D4EB4F) & 0xFFFFFFFFFFFFFFFF)
    x = (keys[:, None] ^ ctr) + (np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN)[None, :]
    for _ in range(2):  # two rounds: the counters above are not independent enough for one
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        x = z ^ (z >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) * _U53


# ------------------------------------------------------------------------------------------------ networks
def _init_params(keys: np.ndarray, sizes: list[int], dtype: torch.dtype) -> list[Tensor]:
    """Stacked MLP parameters ``[W_1, b_1, ..., W_L, b_L]`` (``W_l``: ``(N, in, out)``, ``b_l``: ``(N, 1, out)``),
    each entry ``U(-1/sqrt(in), 1/sqrt(in))`` as torch's ``nn.Linear``, drawn from the network's own key."""
    out = []
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1.0 / math.sqrt(fan_in)
        u = hash_uniform(keys, layer, _STREAM_INIT, fan_in * fan_out + fan_out)
        w = (2.0 * u[:, : fan_in * fan_out] - 1.0) * bound
        b = (2.0 * u[:, fan_in * fan_out :] - 1.0) * bound
        out.append(torch.as_tensor(w.reshape(-1, fan_in, fan_out), dtype=dtype))
        out.append(torch.as_tensor(b.reshape(-1, 1, fan_out), dtype=dtype))
    return out


def _q_values(params: list[Tensor], x: Tensor) -> Tensor:
    """Q-values ``(N, K, m)`` of the stacked MLPs at observations ``x (N, K, 2)``."""
    h = x
    n_layers = len(params) // 2
    for layer in range(n_layers):
        h = torch.baddbmm(params[2 * layer + 1], h, params[2 * layer])
        if layer < n_layers - 1:
            h = torch.relu(h)
    return h


def greedy_tables(params: list[Tensor], features: Tensor, n_sessions: int) -> np.ndarray:
    """Greedy actions of every network on every state: ``(S, 2, m^2)`` int64.

    Args:
        params: Stacked online parameters (``N = 2S`` networks).
        features: ``(2, m^2, 2)`` observation of firm ``i`` in state ``a_0 m + a_1``.
        n_sessions: ``S``.
    """
    x = features.repeat(n_sessions, 1, 1)  # (N, m^2, 2): network 2b + i gets firm i's features
    with torch.no_grad():
        q = _q_values(params, x.to(params[0].dtype))
    return q.argmax(-1).reshape(n_sessions, 2, -1).numpy().astype(np.int64)


def observation_features(economy: Any, dtype: torch.dtype = torch.float32) -> Tensor:
    """``(2, m^2, 2)``: firm ``i``'s observation (own last price, rival's last price), each mapped from
    ``[p_lo, p_hi]`` to ``[-1, 1]``, in state ``k = a_0 m + a_1``."""
    grid = economy.grid
    m = len(grid)
    pnorm = (2.0 * (grid - economy.p_lo) / (economy.p_hi - economy.p_lo) - 1.0).to(dtype)
    a0, a1 = (torch.arange(m * m) // m), (torch.arange(m * m) % m)
    return torch.stack([torch.stack([pnorm[a0], pnorm[a1]], -1), torch.stack([pnorm[a1], pnorm[a0]], -1)])


def initial_state_index(keys: np.ndarray, m: int) -> np.ndarray:
    """``(S, 2)`` grid indices of the last prices before period 0, uniform per session."""
    return (hash_uniform(np.asarray(keys, dtype=np.uint64), 0, _STREAM_STATE, 2) * m).astype(np.int64)


def initial_params(
    cfg: BatchedDQNConfig | BatchedPPOConfig, keys: np.ndarray, *, outputs: int = 0, salt: int = 0
) -> list[Tensor]:
    """Untrained parameters of the ``2S`` networks of sessions ``keys`` (float32): ``2 -> hidden -> outputs``
    (default ``m``); ``salt`` gives a second, independent set (PPO's critic)."""
    keys = np.asarray(keys, dtype=np.uint64) ^ np.uint64(salt)
    net_keys = np.repeat(keys, 2) ^ np.tile(np.array([0x51ED2701, 0xA3B19535], dtype=np.uint64), len(keys))
    return _init_params(net_keys, [2, *cfg.hidden, outputs or cfg.grid_size], torch.float32)


# ------------------------------------------------------------------------------------------------ sessions
class _Markets:
    """The ``S`` markets of a batch: the economy's state, the current price-pair index, the standardised rewards
    and the bookkeeping of the last ``check_tail`` of the run (greedy snapshots, training profit gain)."""

    def __init__(self, economy: Any, keys: np.ndarray, *, periods: int, check_tail: float, check_every: int):
        from abm_markets.engine.pricing import PricingState

        m = len(economy.grid)
        self.economy, self.keys, self.m, self.n = economy, keys, m, len(keys)
        self.features = observation_features(economy)  # (2, m^2, 2): own price first
        grid = economy.grid
        a0, a1 = (torch.arange(m * m) // m), (torch.arange(m * m) % m)  # state / profile k = a0 m + a1
        _, table = economy.profits(torch.stack([grid[a0], grid[a1]], -1))  # (m^2, 2) profits of every profile
        self.r_mean, self.r_sd = float(table.mean()), float(table.std())
        s = torch.as_tensor(initial_state_index(keys, m))  # (S, 2) last action indices
        self.state = PricingState(
            prices=grid[s].unsqueeze(1).expand(-1, economy.lags, -1).clone(),
            noise=torch.zeros(self.n, economy.lags, 2, dtype=grid.dtype),
            t=torch.zeros(self.n, dtype=torch.long),
        )
        self.s_idx = s[:, 0] * m + s[:, 1]  # (S,)
        self.firm_of_net = torch.arange(2 * self.n) % 2  # (N,)
        self.periods = periods
        self.tail_start = periods - max(round(check_tail * periods), 1)
        self.check = check_every or max(periods // 100, 1)
        self.last_tab = np.zeros((self.n, 2, m * m), dtype=np.int64)
        self.snapshots = 0
        self.changes = np.zeros(self.n, dtype=np.int64)
        self.tail_gain = np.zeros(self.n)
        self.tail_n = 0

    def observe(self) -> Tensor:
        """``(N, 1, 2)`` observation of every network."""
        return self.features[self.firm_of_net, self.s_idx.repeat_interleave(2)].unsqueeze(1)

    def play(self, t: int, act: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Post prices ``act (S, 2)`` in period ``t``; returns ``(state index, next state index, rewards (S, 2))``
        with rewards standardised; the profits themselves go to the tail's profit gain."""
        self.state, out = self.economy.step(self.state, act)
        s, s2 = self.s_idx, act[:, 0] * self.m + act[:, 1]
        if t >= self.tail_start:
            self.tail_gain += self.economy.profit_gain(out.profits.mean(-1)).numpy()
            self.tail_n += 1
        self.s_idx = s2
        return s, s2, ((out.profits - self.r_mean) / self.r_sd).to(torch.float32)

    def snapshot_due(self, t: int) -> bool:
        return t + 1 >= self.tail_start and ((t + 1) % self.check == 0 or t + 1 == self.periods)

    def snapshot(self, tab: np.ndarray) -> None:
        if self.snapshots:
            self.changes += np.any(tab != self.last_tab, axis=(1, 2))
        self.last_tab, self.snapshots = tab, self.snapshots + 1

    def result(self, params: list[Tensor], steps: int) -> SessionsResult:
        return SessionsResult(
            greedy=self.last_tab,
            state=self.s_idx.numpy().astype(np.int64),
            stable=self.changes == 0,
            changes=self.changes,
            profit_gain_train=self.tail_gain / max(self.tail_n, 1),
            params=[p.detach().clone() for p in params],
            gradient_steps=steps,
        )


def _check_economy(economy: Any, grid_size: int, who: str) -> None:
    if economy.cfg.action != "grid" or economy.cfg.grid_size != grid_size:
        raise ConfigError(
            f"{who}: expected a LogitDuopoly with action = 'grid' and grid_size = {grid_size}; "
            f"got action = {economy.cfg.action!r}, grid_size = {economy.cfg.grid_size}"
        )


# ------------------------------------------------------------------------------------------------ DQN
def train_dqn_sessions(cfg: BatchedDQNConfig, *, keys: np.ndarray, economy: Any) -> SessionsResult:
    """Train ``S = len(keys)`` independent DQN duopoly sessions for ``cfg.periods`` periods each.

    Args:
        cfg: Settings.
        keys: ``(S,)`` uint64 session seeds (e.g. :func:`abm_markets.learn.tabular.session_seeds`).
        economy: A ``LogitDuopoly`` with ``action = "grid"`` and memory 1 (its ``step`` plays the market).

    Returns:
        :class:`SessionsResult`.
    """
    _check_economy(economy, cfg.grid_size, "train_dqn_sessions")
    keys = np.asarray(keys, dtype=np.uint64)
    n_sess, m, T = len(keys), cfg.grid_size, cfg.periods
    n_net = 2 * n_sess
    mk = _Markets(economy, keys, periods=T, check_tail=cfg.check_tail, check_every=cfg.check_every)
    features, firm = mk.features, mk.firm_of_net[:, None]
    sess = (torch.arange(n_net) // 2)[:, None]  # (N, 1)

    params = [p.requires_grad_() for p in initial_params(cfg, keys)]
    target = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=cfg.lr, fused=True)
    learns = torch.ones(n_net)
    if cfg.fixed_rival >= 0:
        learns[1::2] = 0.0

    cap = min(cfg.buffer_size, T)
    buf_s = torch.zeros(n_sess, cap, dtype=torch.long)
    buf_a = torch.zeros(n_sess, cap, 2, dtype=torch.long)
    buf_r = torch.zeros(n_sess, cap, 2)
    buf_s2 = torch.zeros(n_sess, cap, dtype=torch.long)
    steps, eps, decay = 0, 1.0, math.exp(-cfg.eps_beta)
    for t in range(T):
        # ---- act: epsilon-greedy ------------------------------------------------------------------------
        with torch.no_grad():
            greedy = _q_values(params, mk.observe())[:, 0].argmax(-1).reshape(n_sess, 2)
        coin = hash_uniform(keys, t, _STREAM_COIN, 2)
        rand = torch.as_tensor((hash_uniform(keys, t, _STREAM_ACT, 2) * m).astype(np.int64))
        act = torch.where(torch.as_tensor(coin < eps), rand, greedy)
        if cfg.fixed_rival >= 0:
            act[:, 1] = cfg.fixed_rival
        pos = t % cap
        buf_s[:, pos], buf_s2[:, pos], buf_r[:, pos] = mk.play(t, act)
        buf_a[:, pos] = act
        eps *= decay

        # ---- learn: one double-DQN step per network ------------------------------------------------------
        size = min(t + 1, cap)
        if size >= cfg.batch_size and (t + 1) % cfg.train_every == 0:
            u = hash_uniform(keys, t, _STREAM_BATCH, 2 * cfg.batch_size)
            j = torch.as_tensor((u * size).astype(np.int64)).reshape(n_net, cfg.batch_size)  # (N, K)
            x, x2 = features[firm, buf_s[sess, j]], features[firm, buf_s2[sess, j]]  # (N, K, 2)
            ab, rb = buf_a[sess, j, firm], buf_r[sess, j, firm]  # (N, K)
            with torch.no_grad():
                a_star = _q_values(params, x2).argmax(-1, keepdim=True)
                y = rb + cfg.gamma * _q_values(target, x2).gather(-1, a_star)[..., 0]
            q = _q_values(params, x).gather(-1, ab.unsqueeze(-1))[..., 0]
            per_net = ((q - y) ** 2).mean(-1) * learns  # (N,): a fixed rival's network gets no gradient
            opt.zero_grad(set_to_none=False)
            per_net.sum().backward()
            opt.step()
            steps += 1
            if steps % cfg.target_update == 0:
                with torch.no_grad():
                    for p_t, p in zip(target, params, strict=True):
                        p_t.copy_(p)

        if mk.snapshot_due(t):
            tab = greedy_tables(params, features, n_sess)
            if cfg.fixed_rival >= 0:
                tab[:, 1] = cfg.fixed_rival
            mk.snapshot(tab)
    return mk.result(params, steps)


# ------------------------------------------------------------------------------------------------ PPO
def train_ppo_sessions(cfg: BatchedPPOConfig, *, keys: np.ndarray, economy: Any) -> SessionsResult:
    """Train ``S = len(keys)`` independent PPO duopoly sessions for ``cfg.periods`` periods each.

    Each firm has a softmax policy over the grid prices and a separate value network (both MLPs); every
    ``rollout`` periods it takes ``epochs`` full-batch Adam steps on the clipped surrogate plus
    ``vf_coef`` times the squared value error, with GAE advantages (normalised per network and rollout) and the
    value of the next state bootstrapped (a continuing game). Prices are sampled from the policy by inverse CDF
    of the session's counter-based uniforms. The greedy strategy is the policy's mode.

    Args:
        cfg: Settings.
        keys: ``(S,)`` uint64 session seeds.
        economy: A ``LogitDuopoly`` with ``action = "grid"`` and memory 1.

    Returns:
        :class:`SessionsResult` (``params``: the actor's parameters, then the critic's).
    """
    _check_economy(economy, cfg.grid_size, "train_ppo_sessions")
    keys = np.asarray(keys, dtype=np.uint64)
    n_sess, T, R = len(keys), cfg.periods, cfg.rollout
    n_net = 2 * n_sess
    mk = _Markets(economy, keys, periods=T, check_tail=cfg.check_tail, check_every=cfg.check_every)
    features, firm = mk.features, mk.firm_of_net[:, None]
    actor = [p.requires_grad_() for p in initial_params(cfg, keys)]
    with torch.no_grad():
        actor[-2].mul_(0.01)  # near-uniform initial policy (small output layer)
        actor[-1].mul_(0.01)
    critic = [p.requires_grad_() for p in initial_params(cfg, keys, outputs=1, salt=0x3C6EF372)]
    opt = torch.optim.Adam(actor + critic, lr=cfg.lr, fused=True)
    learns = torch.ones(n_net)
    if cfg.fixed_rival >= 0:
        learns[1::2] = 0.0

    buf_s = torch.zeros(n_sess, R, dtype=torch.long)
    buf_s2 = torch.zeros(n_sess, R, dtype=torch.long)
    buf_a = torch.zeros(n_sess, R, 2, dtype=torch.long)
    buf_r = torch.zeros(n_sess, R, 2)
    buf_logp = torch.zeros(n_net, R)
    steps = 0
    disc = cfg.gamma * cfg.gae_lambda
    for t in range(T):
        with torch.no_grad():
            logits = _q_values(actor, mk.observe())[:, 0]  # (N, m)
            cdf = torch.softmax(logits.double(), -1).cumsum(-1)
        u = torch.as_tensor(hash_uniform(keys, t, _STREAM_ACT, 2)).reshape(n_net, 1)
        a_net = (cdf < u).sum(-1).clamp(max=cfg.grid_size - 1)  # (N,) inverse-CDF draw
        act = a_net.reshape(n_sess, 2)
        if cfg.fixed_rival >= 0:
            act[:, 1] = cfg.fixed_rival
        pos = t % R
        buf_s[:, pos], buf_s2[:, pos], buf_r[:, pos] = mk.play(t, act)
        buf_a[:, pos] = act
        buf_logp[:, pos] = torch.log_softmax(logits, -1).gather(-1, act.reshape(n_net, 1))[:, 0]

        if pos == R - 1:  # ---- learn on the rollout ---------------------------------------------------------
            x = features[firm, buf_s.repeat_interleave(2, 0)]  # (N, R, 2)
            x2 = features[firm, buf_s2.repeat_interleave(2, 0)]
            a = buf_a.repeat_interleave(2, 0).gather(-1, firm[:, :, None].expand(-1, R, 1))  # (N, R, 1)
            r = buf_r.repeat_interleave(2, 0).gather(-1, firm[:, :, None].expand(-1, R, 1))[..., 0]  # (N, R)
            with torch.no_grad():
                v, v2 = _q_values(critic, x)[..., 0], _q_values(critic, x2)[..., 0]
                delta = r + cfg.gamma * v2 - v
                adv = torch.zeros_like(delta)
                run = torch.zeros(n_net)
                for k in range(R - 1, -1, -1):
                    run = delta[:, k] + disc * run
                    adv[:, k] = run
                ret = adv + v
                adv = (adv - adv.mean(-1, keepdim=True)) / (adv.std(-1, keepdim=True) + 1e-8)
            for _ in range(cfg.epochs):
                logp = torch.log_softmax(_q_values(actor, x), -1).gather(-1, a)[..., 0]
                ratio = torch.exp(logp - buf_logp)
                surr = torch.minimum(ratio * adv, ratio.clamp(1 - cfg.clip, 1 + cfg.clip) * adv)
                v_loss = ((_q_values(critic, x)[..., 0] - ret) ** 2).mean(-1)
                per_net = (-surr.mean(-1) + cfg.vf_coef * v_loss) * learns
                opt.zero_grad(set_to_none=False)
                per_net.sum().backward()
                opt.step()
                steps += 1

        if mk.snapshot_due(t):
            tab = greedy_tables(actor, features, n_sess)
            if cfg.fixed_rival >= 0:
                tab[:, 1] = cfg.fixed_rival
            mk.snapshot(tab)
    return mk.result(actor + critic, steps)
