"""Multi-agent glue between any protocol economy (:mod:`abm_markets.engine.protocol`) and Tianshou 2.0 algorithms.

Tianshou's own multi-agent path (``PettingZooEnv``/``MultiAgentPolicyManager``) is turn-based, credits the
rewards of a converted parallel env to the last agent and does not train continuous actions, so the project
owns the multi-agent part and uses Tianshou for what it does well: algorithms (:class:`~tianshou.algorithm.PPO`,
:class:`~tianshou.algorithm.SAC`, :class:`~tianshou.algorithm.DQN`), policies, networks' interfaces, replay
buffers and :class:`~tianshou.data.Batch`. Nothing here imports a concrete economy.

Agent groups
    :func:`group_spec` turns a decision group of the economy (``economy.groups``: households, a planner acting
    for all households, firms, a declared economy's groups) into a :class:`GroupSpec`: slots per economy, the
    observation under the economy's information structure (``economy.observe(state, group)``), the critic's
    global state, the reward (``economy.rewards(outcome)[group]``) and the economy's own parametrisation of
    raw policy outputs (``economy.decode``). A group whose slot acts for several agents (the planner,
    ``units = N^h``) gets factorised networks (one MLP applied to each agent's part of the observation,
    permutation-equivariant), so the same code serves ``N^h = 1`` and ``N^h = 100``.

Learners
    A :class:`GroupLearner` holds the Tianshou algorithm(s) of a group: by default one algorithm whose
    parameters are shared by every slot (each slot of each of the ``B`` economies is one sample stream), or one
    algorithm per slot (``sharing = "per_agent"``: independent learners, e.g. the two firms of a duopoly).
    Groups learn independently of each other. With ``central_critic`` the critic (value / Q network) sees the
    slot's own observation *and* the global state (``economy.global_state``), the actor only its own
    observation: the stored observation is ``[own | global]`` and the actor reads the first ``obs_dim`` features.

Actions
    Policies output an unbounded vector ``u`` per slot, which the economy decodes (e.g. investment shares:
    softmax around the steady-state share; prices: a sigmoid onto the price range). SAC's tanh-squashed actions
    are stretched to ``u = width * a``; DQN picks ``u`` from a grid of ``n_actions`` points on
    ``[-width, width]``, or, for a group with discrete actions (``n_discrete``), the index itself.

Normalisation
    Observations are standardised with the mean and standard deviation of the first rollout (then frozen and
    stored in checkpoints); rewards are centred and scaled the same way (``(r - mean) / std``); PPO additionally
    uses Tianshou's return scaling.

Randomness
    Action sampling in the collection uses the trainer's explicit ``torch.Generator``. Tianshou draws its own
    random numbers inside updates (minibatch shuffling with NumPy's global generator, SAC's ``rsample``, the
    replay buffer's ``RandomState``); :func:`seeded` runs an update with those generators seeded from the
    explicit one and restores their previous state afterwards, so a CPU run is a function of its seed.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from abm_markets.engine.protocol import BatchedEconomy

__all__ = [
    "GroupLearner",
    "GroupSpec",
    "LearnerSettings",
    "group_spec",
    "seeded",
]


# --------------------------------------------------------------------------------------------- randomness
@contextlib.contextmanager
def seeded(generator: torch.Generator) -> Iterator[int]:
    """Seed NumPy's and torch's global generators from ``generator``; restore them on exit.

    Tianshou draws minibatch permutations from ``np.random`` and SAC samples with torch's default generator;
    this makes those draws a function of the explicit generator without leaving global state changed.
    """
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
    np_state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed)
        try:
            yield seed
        finally:
            np.random.set_state(np_state)


# ------------------------------------------------------------------------------------------------ groups
@dataclass(frozen=True)
class GroupSpec:
    """One decision group of a protocol economy, as the learners see it.

    Attributes:
        name: The economy's group name (``planner``, ``households``, ``firms``, ...).
        n_slots: Learning slots per economy ``n`` (all of the group's slots, or the learning subset).
        obs_dim: Actor observation size per slot ``D``.
        act_dim: Raw action size per slot ``A``.
        units: Agents one slot decides for (factorised networks split ``D`` and ``A`` into ``units`` parts).
        observe: ``state -> [B, n, D]`` actor observations.
        global_obs: ``state -> [B, G]`` extra critic input for a centralised critic.
        global_dim: ``G``.
        reward: ``outcome -> [B, n]``.
        to_engine: ``(raw [B, n, A], state) -> action`` in economy units for ``engine_key``.
        engine_key: The action key of ``step`` the group fills.
        slots: Learning slots when only some of the group learn (a mixed population), else None.
        n_discrete: ``> 0`` when the group's actions are indices (DQN acts on them directly).
    """

    name: str
    n_slots: int
    obs_dim: int
    act_dim: int
    units: int
    observe: Callable[[Any], Tensor]
    global_obs: Callable[[Any], Tensor]
    global_dim: int
    reward: Callable[[Any], Tensor]
    to_engine: Callable[[Tensor, Any], Tensor]
    engine_key: str
    slots: tuple[int, ...] | None = None
    n_discrete: int = 0


def group_spec(
    economy: BatchedEconomy,
    name: str,
    *,
    center: str = "reference",
    shift: float = 0.0,
    slots: tuple[int, ...] | None = None,
) -> GroupSpec:
    """The learners' view of decision group ``name`` of any protocol economy.

    Args:
        economy: The economy.
        name: One of ``economy.groups``.
        center: ``reference`` (a raw output of 0 plays the economy's reference action, e.g. the steady-state
            rule) or ``none``; see the economy's ``decode``.
        shift: Moves the centre (the economy's log/logit units): a deliberately wrong start.
        slots: Only these slots learn (a mixed population); the trainer takes the others' actions from a fixed
            source and ``to_engine`` returns the learners' actions only.
    """
    g = economy.group(name)
    if slots is not None and (not slots or len(set(slots)) != len(slots) or not all(0 <= i < g.count for i in slots)):
        raise ValueError(f"learning slots {slots!r} of {name!r} must be distinct indices in [0, {g.count})")
    idx = None if slots is None else torch.as_tensor(slots, dtype=torch.long, device=economy.device)
    rewards = economy.rewards

    def observe(state: Any) -> Tensor:
        obs = economy.observe(state, name)
        return obs if idx is None else obs[:, idx]

    def reward(outcome: Any) -> Tensor:
        r = rewards(outcome)[name]
        return r if idx is None else r[:, idx]

    def to_engine(raw: Tensor, state: Any) -> Tensor:
        return economy.decode(name, raw, state, center=center, shift=shift)

    probe = economy.global_state(economy.initial_state(1, torch.Generator(device=economy.device).manual_seed(0)))
    return GroupSpec(
        name=name,
        n_slots=g.count if slots is None else len(slots),
        obs_dim=economy.obs_dim(name),
        act_dim=1 if g.n_discrete else g.raw_dim,
        units=g.units,
        observe=observe,
        global_obs=economy.global_state,
        global_dim=int(probe.shape[-1]),
        reward=reward,
        to_engine=to_engine,
        engine_key=g.acts_for,
        slots=tuple(slots) if slots is not None else None,
        n_discrete=g.n_discrete,
    )


# ---------------------------------------------------------------------------------------------- networks
def _mlp(inp: int, hidden: tuple[int, ...], out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    d = inp
    for hdim in hidden:
        layers += [nn.Linear(d, hdim), nn.Tanh()]
        d = hdim
    layers.append(nn.Linear(d, out))
    return nn.Sequential(*layers)


class _Normaliser(nn.Module):
    """Fixed affine standardisation ``(x - mean) / std`` (buffers, set once from the first rollout)."""

    def __init__(self, dim: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def fit(self, x: Tensor) -> None:
        flat = x.reshape(-1, x.shape[-1]).float()
        self.mean.copy_(flat.mean(0))
        self.std.copy_(flat.std(0).clamp_min(1e-2) if flat.shape[0] > 1 else torch.ones_like(self.std))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


class _Encoder(nn.Module):
    """Turns a stored observation ``[N, D_total]`` into per-unit standardised features ``[N, units, d_unit]``.

    The stored observation is ``[own (units * d_unit) | global (G, optional)]``; the actor uses ``own`` only.
    """

    def __init__(self, units: int, d_unit: int, global_dim: int, use_global: bool):
        super().__init__()
        self.units, self.d_unit, self.global_dim, self.use_global = units, d_unit, global_dim, use_global
        self.norm = _Normaliser(d_unit)
        self.gnorm = _Normaliser(global_dim) if use_global else None

    def forward(self, obs: Any) -> tuple[Tensor, Tensor | None]:
        dev = self.norm.mean.device
        x = torch.as_tensor(obs, dtype=torch.float32, device=dev)
        own = self.norm(x[..., : self.units * self.d_unit].reshape(*x.shape[:-1], self.units, self.d_unit))
        g = None
        if self.use_global and self.gnorm is not None:
            g = self.gnorm(x[..., self.units * self.d_unit :])
        return own, g


class FactorisedActor(nn.Module):
    """Gaussian actor ``obs -> ((loc [N, units*A_u], scale [N, units*A_u]), None)``.

    One MLP applied to each unit's own observation (shared weights across the planner's households), a
    state-independent log standard deviation per action component of a unit. Satisfies Tianshou's actor
    protocol (``forward(obs, state=None, info=None)``).
    """

    def __init__(
        self, encoder: _Encoder, a_unit: int, hidden: tuple[int, ...], init_log_std: float, out_scale: float = 1.0
    ):
        super().__init__()
        self.encoder = encoder
        self.body = _mlp(encoder.d_unit, hidden, a_unit)
        last = self.body[-1]
        assert isinstance(last, nn.Linear)
        nn.init.uniform_(last.weight, -1e-3, 1e-3)
        nn.init.zeros_(last.bias)
        self.log_std = nn.Parameter(torch.full((a_unit,), float(init_log_std)))
        self.out_scale = out_scale

    def get_preprocess_net(self) -> nn.Module:
        return self.encoder

    def get_output_dim(self) -> int:
        return self.encoder.units * self.log_std.shape[0]

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[tuple[Tensor, Tensor], Any]:
        own, _ = self.encoder(obs)
        loc = self.body(own).flatten(-2) * self.out_scale
        scale = self.log_std.clamp(-8.0, 2.0).exp().repeat(self.encoder.units).expand_as(loc)
        return (loc, scale), state


class PooledCritic(nn.Module):
    """Value ``V(obs) [N, 1]`` (or ``Q(obs, act)`` with ``act_dim``): per-unit MLP features averaged over units,
    concatenated with the (optional) global state and the action, then a head."""

    def __init__(self, encoder: _Encoder, hidden: tuple[int, ...], act_dim: int = 0, n_out: int = 1):
        super().__init__()
        self.encoder = encoder
        width = hidden[0] if hidden else 64
        self.unit = nn.Sequential(nn.Linear(encoder.d_unit, width), nn.Tanh())
        extra = (encoder.global_dim if encoder.use_global else 0) + act_dim
        self.head = _mlp(width + extra, hidden[1:] or (width,), n_out)
        self.act_dim = act_dim

    def get_output_dim(self) -> int:
        return int(self.head[-1].out_features)  # type: ignore[union-attr]

    def forward(self, obs: Any, act: Any = None, info: Any = None, state: Any = None) -> Tensor:
        own, g = self.encoder(obs)
        feats = [self.unit(own).mean(-2)]
        if g is not None:
            feats.append(g)
        if self.act_dim:
            feats.append(torch.as_tensor(act, dtype=torch.float32, device=own.device).reshape(own.shape[0], -1))
        return self.head(torch.cat(feats, -1))


class QNet(nn.Module):
    """DQN model ``obs -> (q [N, n_actions], state)`` (Tianshou's model protocol)."""

    def __init__(self, critic: PooledCritic):
        super().__init__()
        self.critic = critic

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[Tensor, Any]:
        return self.critic(obs), state


# ---------------------------------------------------------------------------------------------- learners
@dataclass(frozen=True)
class LearnerSettings:
    """Hyper-parameters of one group's learner (see :class:`abm_markets.learn.train.TrainConfig`)."""

    algorithm: str = "ppo"
    hidden: tuple[int, ...] = (64, 64)
    lr: float = 3e-3
    gamma: float = 0.98
    gae_lambda: float = 0.95
    ent_coef: float = 0.0
    eps_clip: float = 0.2
    init_log_std: float = 0.0
    central_critic: bool = False
    sharing: str = "shared"
    sac_alpha: float = 0.01
    sac_tau: float = 0.005
    action_width: float = 3.0
    n_actions: int = 21
    target_update_freq: int = 200
    buffer_size: int = 200_000
    max_grad_norm: float = 0.5
    n_step: int = 1
    ppo_ratio: str = "joint"
    credit: str = "team"
    vf_coef: float = 0.5


def _dist_fn(loc_scale: tuple[Tensor, Tensor]) -> torch.distributions.Distribution:
    loc, scale = loc_scale
    return torch.distributions.Independent(torch.distributions.Normal(loc, scale), 1)


class _PerUnitNormal(torch.distributions.Independent):
    """Gaussian over a slot's ``units * A_u`` outputs whose ``log_prob`` and ``entropy`` are per unit ``[N, units]``.

    PPO then clips each unit's probability ratio on its own (the team advantage multiplies every unit's ratio),
    instead of the joint ratio, a product of ``units`` ratios that the clip range holds to ``1 +- eps`` and that
    lets each of a planner's ``N^h`` households move about ``eps / N^h`` per update.
    """

    def __init__(self, loc: Tensor, scale: Tensor, units: int):
        self.units = units
        shape = (*loc.shape[:-1], units, loc.shape[-1] // units)
        super().__init__(torch.distributions.Normal(loc.reshape(shape), scale.reshape(shape)), 1, validate_args=False)

    def log_prob(self, value: Tensor) -> Tensor:
        return super().log_prob(value.reshape(*value.shape[:-1], self.units, -1))

    def sample(self, sample_shape: torch.Size = torch.Size()) -> Tensor:
        return super().sample(sample_shape).flatten(-2)

    @property
    def mode(self) -> Tensor:
        return self.base_dist.mean.flatten(-2)


def _per_unit_ppo() -> type:
    """Tianshou's PPO with one probability ratio per unit (its own code flattens the old log-probabilities).

    With ``unit_adv`` set (an array ``[buffer rows, units]`` in buffer order) before an update, each unit's ratio
    is weighted by its own advantage instead of the slot's (the difference-reward credit of
    :meth:`abm_markets.learn.train.Trainer._difference_advantages`); the critic learns the slot's returns either way.
    """
    from tianshou.algorithm import PPO
    from tianshou.algorithm.modelfree.a2c import A2CTrainingStats
    from tianshou.data import SequenceSummaryStats, to_torch_as

    class PerUnitPPO(PPO):
        unit_adv: np.ndarray | None = None

        def _preprocess_batch(self, batch: Any, buffer: Any, indices: np.ndarray) -> Any:
            batch = self._add_returns_and_advantages(batch, buffer, indices)
            if self.unit_adv is not None:
                batch.adv = to_torch_as(self.unit_adv[indices], batch.v_s)
            batch.act = to_torch_as(batch.act, batch.v_s)
            with torch.no_grad():
                logp = [
                    self.policy(mb).dist.log_prob(mb.act)
                    for mb in batch.split(self.max_batchsize, shuffle=False, merge_last=True)
                ]
            batch.logp_old = torch.cat(logp, dim=0).reshape(len(batch), -1)
            return batch

        def _update_with_batch(self, batch: Any, batch_size: int | None, repeat: int) -> Any:
            if batch.adv.ndim == 1:
                return super()._update_with_batch(batch, batch_size, repeat)
            losses, clip_losses, vf_losses, ent_losses = [], [], [], []
            steps = 0
            for _ in range(repeat):
                for mb in batch.split(batch_size or -1, merge_last=True):
                    steps += 1
                    adv = mb.adv  # [mb, units]
                    if self.advantage_normalization:
                        adv = (adv - adv.mean()) / (adv.std() + self._eps)
                    dist = self.policy(mb).dist
                    ratios = (dist.log_prob(mb.act) - mb.logp_old).exp().float()
                    surr1 = ratios * adv
                    surr2 = ratios.clamp(1.0 - self.eps_clip, 1.0 + self.eps_clip) * adv
                    clip_loss = -torch.min(surr1, surr2).mean()
                    vf_loss = (mb.returns - self.critic(mb.obs).flatten()).pow(2).mean()
                    ent_loss = dist.entropy().mean()
                    loss = clip_loss + self.vf_coef * vf_loss - self.ent_coef * ent_loss
                    self.optim.step(loss)
                    clip_losses.append(clip_loss.item())
                    vf_losses.append(vf_loss.item())
                    ent_losses.append(ent_loss.item())
                    losses.append(loss.item())
            return A2CTrainingStats(
                loss=SequenceSummaryStats.from_sequence(losses),
                actor_loss=SequenceSummaryStats.from_sequence(clip_losses),
                vf_loss=SequenceSummaryStats.from_sequence(vf_losses),
                ent_loss=SequenceSummaryStats.from_sequence(ent_losses),
                gradient_steps=steps,
            )

    return PerUnitPPO


def _build_algorithm(group: GroupSpec, s: LearnerSettings, device: torch.device) -> Any:
    """One Tianshou algorithm for ``group`` (PPO, SAC or DQN)."""
    from tianshou.algorithm import DQN, PPO, SAC
    from tianshou.algorithm.modelfree.dqn import DiscreteQLearningPolicy
    from tianshou.algorithm.modelfree.reinforce import ProbabilisticActorPolicy
    from tianshou.algorithm.modelfree.sac import SACPolicy
    from tianshou.algorithm.optim import AdamOptimizerFactory

    d_unit = group.obs_dim // group.units
    a_unit = group.act_dim // group.units
    low = np.full(group.act_dim, -np.inf, dtype=np.float32)
    obs_space = gym.spaces.Box(
        -np.inf, np.inf, (group.obs_dim + (group.global_dim if s.central_critic else 0),), np.float32
    )

    def encoder(use_global: bool) -> _Encoder:
        return _Encoder(group.units, d_unit, group.global_dim, use_global)

    if s.algorithm == "ppo":
        actor = FactorisedActor(encoder(False), a_unit, s.hidden, s.init_log_std)
        critic = PooledCritic(encoder(s.central_critic), s.hidden)
        per_unit = (s.ppo_ratio == "per_unit" and group.units > 1) or s.credit in ("difference", "own")
        units = group.units

        def per_unit_dist(loc_scale: tuple[Tensor, Tensor]) -> torch.distributions.Distribution:
            return _PerUnitNormal(*loc_scale, units)

        policy = ProbabilisticActorPolicy(
            actor=actor,
            dist_fn=per_unit_dist if per_unit else _dist_fn,
            deterministic_eval=True,
            action_space=gym.spaces.Box(low, -low, dtype=np.float32),
            observation_space=obs_space,
            action_scaling=False,
            action_bound_method=None,
        )
        algo = (_per_unit_ppo() if per_unit else PPO)(
            policy=policy,
            critic=critic,
            optim=AdamOptimizerFactory(lr=s.lr),
            eps_clip=s.eps_clip,
            vf_coef=s.vf_coef,
            ent_coef=s.ent_coef,
            max_grad_norm=s.max_grad_norm,
            gae_lambda=s.gae_lambda,
            max_batchsize=1 << 16,
            gamma=s.gamma,
            return_scaling=True,
        )
    elif s.algorithm == "sac":
        actor = FactorisedActor(encoder(False), a_unit, s.hidden, s.init_log_std)
        actor.log_std.requires_grad_(False)
        actor = _StateDependentStd(actor)
        critics = [PooledCritic(encoder(s.central_critic), s.hidden, act_dim=group.act_dim) for _ in range(2)]
        policy = SACPolicy(
            actor=actor,
            action_space=gym.spaces.Box(-np.ones(group.act_dim, np.float32), np.ones(group.act_dim, np.float32)),
            observation_space=obs_space,
            action_scaling=False,
            deterministic_eval=True,
        )
        algo = SAC(
            policy=policy,
            policy_optim=AdamOptimizerFactory(lr=s.lr),
            critic=critics[0],
            critic_optim=AdamOptimizerFactory(lr=s.lr),
            critic2=critics[1],
            critic2_optim=AdamOptimizerFactory(lr=s.lr),
            tau=s.sac_tau,
            gamma=s.gamma,
            alpha=s.sac_alpha,
            n_step_return_horizon=s.n_step,
        )
    elif s.algorithm == "dqn":
        if group.act_dim != 1:
            raise ValueError(f"dqn needs one action per slot (got {group.act_dim}); use ppo or sac")
        n_actions = group.n_discrete or s.n_actions
        q = QNet(PooledCritic(encoder(s.central_critic), s.hidden, n_out=n_actions))
        policy = DiscreteQLearningPolicy(
            model=q, action_space=gym.spaces.Discrete(n_actions), observation_space=obs_space
        )
        algo = DQN(
            policy=policy,
            optim=AdamOptimizerFactory(lr=s.lr),
            gamma=s.gamma,
            n_step_return_horizon=s.n_step,
            target_update_freq=s.target_update_freq,
            is_double=True,
        )
    else:
        raise ValueError(f"unknown algorithm {s.algorithm!r}; valid: ppo, sac, dqn")
    return algo.to(device)


class _StateDependentStd(nn.Module):
    """SAC actor: loc from the factorised MLP, a learned state-independent log-std (SAC's entropy term tunes it)."""

    def __init__(self, base: FactorisedActor):
        super().__init__()
        self.base = base
        self.log_std = nn.Parameter(torch.full_like(base.log_std, -1.0))

    def get_preprocess_net(self) -> nn.Module:
        return self.base.encoder

    def get_output_dim(self) -> int:
        return self.base.get_output_dim()

    def forward(self, obs: Any, state: Any = None, info: Any = None) -> tuple[tuple[Tensor, Tensor], Any]:
        (loc, _), _ = self.base(obs)
        scale = self.log_std.clamp(-6.0, 1.0).exp().repeat(self.base.encoder.units).expand_as(loc)
        return (loc, scale), state


class GroupLearner:
    """The Tianshou algorithm(s) of one group, acting for all its slots in all ``B`` economies at once.

    Args:
        group: The group.
        settings: Hyper-parameters.
        device: Torch device of the networks.
    """

    def __init__(self, group: GroupSpec, settings: LearnerSettings, device: torch.device):
        self.group, self.settings, self.device = group, settings, device
        n_algos = group.n_slots if settings.sharing == "per_agent" else 1
        if settings.sharing not in ("shared", "per_agent"):
            raise ValueError(f"sharing = {settings.sharing!r}; valid: shared, per_agent")
        self.algorithms = nn.ModuleList([_build_algorithm(group, settings, device) for _ in range(n_algos)])
        self.reward_mean = 0.0
        self.reward_std = 1.0
        self.fitted = False

    # ------------------------------------------------------------------ observation / reward normalisation
    def stored_obs(self, state: Any) -> Tensor:
        """The observation stored for learning, ``[B, n, D (+ G)]`` float32."""
        obs = self.group.observe(state)
        if self.settings.central_critic:
            g = self.group.global_obs(state).unsqueeze(1).expand(state.batch_size, self.group.n_slots, -1)
            obs = torch.cat([obs, g], -1)
        return obs.float()

    def fit_normalisers(self, obs: Tensor, rewards: Tensor) -> None:
        """Freeze observation and reward statistics from a first rollout ``obs [T, B, n, D]``, ``rewards [T, B, n]``."""
        d_unit = self.group.obs_dim // self.group.units
        own = obs[..., : self.group.obs_dim].reshape(-1, d_unit)
        for algo in self.algorithms:
            for mod in algo.modules():
                if isinstance(mod, _Encoder):
                    mod.norm.fit(own)
                    if mod.gnorm is not None:
                        mod.gnorm.fit(obs[..., self.group.obs_dim :].reshape(-1, self.group.global_dim))
        self.reward_mean = float(rewards.mean())
        self.reward_std = float(rewards.std().clamp_min(1e-6))
        self.fitted = True

    def scale_reward(self, r: Tensor) -> Tensor:
        return (r - self.reward_mean) / self.reward_std

    # -------------------------------------------------------------------------------------------- acting
    def _slot_groups(self) -> list[tuple[Any, slice]]:
        n = self.group.n_slots
        if len(self.algorithms) == 1:
            return [(self.algorithms[0], slice(0, n))]
        return [(a, slice(i, i + 1)) for i, a in enumerate(self.algorithms)]

    @torch.no_grad()
    def act_stored(
        self, obs: Tensor, *, explore: bool, generator: torch.Generator | None, epsilon: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        """Actions for stored observations ``obs [B, n, D]``.

        Returns:
            ``(act, raw)``: ``act`` as Tianshou stores it (PPO: Gaussian sample; SAC: tanh-squashed sample in
            (-1, 1); DQN: action index, as float) ``[B, n, A]``, and the unbounded raw action ``u [B, n, A]``.
        """
        algo_kind = self.settings.algorithm
        b, n, _ = obs.shape
        acts, raws = (
            torch.empty(b, n, self.group.act_dim, device=obs.device),
            torch.empty(b, n, self.group.act_dim, device=obs.device),
        )
        for algo, sl in self._slot_groups():
            o = obs[:, sl].reshape(-1, obs.shape[-1])
            if algo_kind in ("ppo", "sac"):
                (loc, scale), _ = algo.policy.actor(o)
                if explore:
                    eps = torch.randn(loc.shape, generator=generator, device=loc.device, dtype=loc.dtype)
                    a = loc + scale * eps
                else:
                    a = loc
                if algo_kind == "sac":
                    a = torch.tanh(a)
                    raw = self.settings.action_width * a
                else:
                    raw = a
            else:
                q = algo.policy.model(o)[0]
                idx = q.argmax(-1)
                n_actions = self.group.n_discrete or self.settings.n_actions
                if explore and epsilon > 0:
                    rnd = torch.randint(0, n_actions, idx.shape, generator=generator, device=idx.device)
                    coin = torch.rand(idx.shape, generator=generator, device=idx.device) < epsilon
                    idx = torch.where(coin, rnd, idx)
                a = idx.float().unsqueeze(-1)
                if self.group.n_discrete:  # the economy's own discrete actions: raw is the index
                    raw = a
                else:  # a grid of raw outputs u on [-width, width]
                    grid = torch.linspace(
                        -self.settings.action_width, self.settings.action_width, n_actions, device=idx.device
                    )
                    raw = grid[idx].unsqueeze(-1)
            acts[:, sl] = a.reshape(b, -1, self.group.act_dim)
            raws[:, sl] = raw.reshape(b, -1, self.group.act_dim)
        return acts, raws

    def act(self, state: Any, *, explore: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Raw actions ``[B, n, A]`` for a state (deterministic unless ``explore``)."""
        return self.act_stored(self.stored_obs(state), explore=explore, generator=generator)[1]

    def state_value(self, obs: Tensor) -> Tensor:
        """The critic's value of stored observations ``obs [B, n, D]`` in scaled-reward units, ``[B, n]`` (PPO).

        Tianshou's critic predicts returns divided by its running return scale; this multiplies it back, as
        Tianshou's own advantage computation does.
        """
        vals = []
        for algo, sl in self._slot_groups():
            o = obs[:, sl]
            v = algo.critic(o.reshape(-1, o.shape[-1])).reshape(o.shape[0], o.shape[1])
            if algo.return_scaling:
                v = v * float(np.sqrt(algo.ret_rms.var + algo._eps))
            vals.append(v)
        return torch.cat(vals, 1)

    def policy_mean(self, obs: Tensor) -> Tensor:
        """Mean raw action of the Gaussian policies for stored observations ``obs [B, n, D]``: ``[B, n, A]``."""
        out = []
        for algo, sl in self._slot_groups():
            o = obs[:, sl]
            (loc, _), _ = algo.policy.actor(o.reshape(-1, o.shape[-1]))
            out.append(loc.reshape(o.shape[0], o.shape[1], -1))
        return torch.cat(out, 1)

    # ------------------------------------------------------------------------------------------- updates
    def update_on_policy(
        self,
        obs: Tensor,
        act: Tensor,
        rew: Tensor,
        obs_next: Tensor,
        done: Tensor,
        *,
        batch_size: int,
        epochs: int,
        generator: torch.Generator,
        max_streams: int | None = None,
        unit_adv: Tensor | None = None,
    ) -> dict[str, float]:
        """PPO update on a rollout ``obs [T, B, n, D]``, ``act [T, B, n, A]``, ``rew [T, B, n]``, ``done [T, B]``.

        Each (economy, slot) is one stream; streams are laid out one after the other in a Tianshou
        :class:`~tianshou.data.ReplayBuffer` whose last step of each stream is marked truncated, so GAE
        bootstraps from the critic there (and at episode resets, which are time limits, not terminal states).
        With ``max_streams`` an algorithm is updated on at most that many streams drawn at random (without
        replacement, from ``generator``): with a shared policy the update's cost then no longer grows with the
        number of agents, while every agent of every economy still acts and is simulated.
        ``unit_adv [T, B, n, units]`` replaces the slot's advantage by one advantage per unit (difference rewards).
        """
        from tianshou.data import ReplayBuffer
        from tianshou.utils.torch_utils import policy_within_training_step

        t_len, b = rew.shape[:2]
        stats: dict[str, list[float]] = {}
        for algo, sl in self._slot_groups():
            n_sl = obs[:, :, sl].shape[2]
            pick: Tensor | None = None
            if max_streams is not None and b * n_sl > max_streams:
                pick = torch.randperm(b * n_sl, generator=generator)[:max_streams].sort().values

            def stream_major(x: Tensor, sl: slice = sl, pick: Tensor | None = pick) -> np.ndarray:
                x = x[:, :, sl]  # [T, B, n', ...]
                x = x.movedim(0, 2)  # [B, n', T, ...]
                x = x.reshape(-1, *x.shape[2:])  # [streams, T, ...]
                if pick is not None:
                    x = x[pick.to(x.device)]
                return x.reshape(-1, *x.shape[2:]).cpu().numpy()

            trunc = done.unsqueeze(-1).expand(t_len, b, obs.shape[2]).clone()
            trunc[-1] = True
            n_rows = t_len * (b * n_sl if pick is None else int(pick.numel()))
            buf = ReplayBuffer.from_data(
                obs=stream_major(obs),
                act=stream_major(act),
                rew=stream_major(rew).astype(np.float64),
                terminated=np.zeros(n_rows, dtype=bool),
                truncated=stream_major(trunc),
                done=stream_major(trunc),
                obs_next=stream_major(obs_next),
            )
            if unit_adv is not None:
                algo.unit_adv = stream_major(unit_adv).reshape(n_rows, -1)
            try:
                with seeded(generator), policy_within_training_step(algo.policy):
                    res = algo.update(buf, batch_size=batch_size, repeat=epochs)
            finally:
                if unit_adv is not None:
                    algo.unit_adv = None
            for k, v in res.get_loss_stats_dict().items():
                stats.setdefault(k, []).append(float(v))
        out = {k: float(np.mean(v)) for k, v in stats.items()}
        out["entropy"] = self.entropy()
        return out

    def entropy(self) -> float:
        """Mean entropy of the Gaussian policies (state-independent std), or NaN for DQN."""
        vals = []
        for algo in self.algorithms:
            actor = algo.policy.actor if hasattr(algo.policy, "actor") else None
            if actor is None:
                return float("nan")
            log_std = actor.log_std
            vals.append(float((0.5 * math.log(2 * math.pi * math.e) + log_std.detach().clamp(-8, 2)).sum()))
        return float(np.mean(vals))

    def make_buffers(self, n_streams_per_algo: int, generator: torch.Generator) -> list[Any]:
        """One Tianshou :class:`~tianshou.data.VectorReplayBuffer` per algorithm (off-policy learners)."""
        from tianshou.data import VectorReplayBuffer

        bufs = []
        for _ in self.algorithms:
            size = max(self.settings.buffer_size, n_streams_per_algo * 2)
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator).item())
            buf = VectorReplayBuffer(size, n_streams_per_algo)
            buf._random_state = np.random.RandomState(seed)
            for sub in buf.buffers:
                sub._random_state = buf._random_state
            bufs.append(buf)
        return bufs

    def store_off_policy(
        self, buffers: list[Any], obs: Tensor, act: Tensor, rew: Tensor, obs_next: Tensor, done: Tensor
    ) -> None:
        """Add one period of ``B`` economies to the replay buffers (``obs [B, n, D]``, ``rew [B, n]``, ``done [B]``)."""
        from tianshou.data import Batch

        for buf, (_, sl) in zip(buffers, self._slot_groups(), strict=True):
            o = obs[:, sl].reshape(-1, obs.shape[-1]).cpu().numpy()
            n_sl = obs[:, sl].shape[1]
            a = act[:, sl].reshape(o.shape[0], -1).cpu().numpy()
            if self.settings.algorithm == "dqn":
                a = a[:, 0].astype(np.int64)
            d = done.unsqueeze(-1).expand(-1, n_sl).reshape(-1).cpu().numpy()
            batch = Batch(
                obs=o,
                act=a,
                rew=rew[:, sl].reshape(-1).cpu().numpy().astype(np.float64),
                terminated=np.zeros_like(d),
                truncated=d,
                obs_next=obs_next[:, sl].reshape(-1, obs.shape[-1]).cpu().numpy(),
            )
            buf.add(batch, buffer_ids=np.arange(o.shape[0]))

    def update_off_policy(
        self, buffers: list[Any], *, batch_size: int, n_updates: int, generator: torch.Generator
    ) -> dict[str, float]:
        """``n_updates`` gradient steps of SAC or DQN per algorithm on minibatches sampled from its buffer."""
        from tianshou.utils.torch_utils import policy_within_training_step

        stats: dict[str, list[float]] = {}
        for algo, buf in zip(self.algorithms, buffers, strict=True):
            with seeded(generator), policy_within_training_step(algo.policy):
                for _ in range(n_updates):
                    res = algo.update(buf, sample_size=batch_size)
                    for k, v in res.get_loss_stats_dict().items():
                        stats.setdefault(k, []).append(float(v))
        out = {k: float(np.mean(v)) for k, v in stats.items()}
        if self.settings.algorithm == "sac":
            out["entropy"] = float(
                np.mean(
                    [
                        (0.5 * math.log(2 * math.pi * math.e) + a.policy.actor.log_std.clamp(-6, 1)).sum().item()
                        for a in self.algorithms
                    ]
                )
            )
        return out

    # ------------------------------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "algorithms": [a.state_dict() for a in self.algorithms],
            # PPO's running return statistics (plain attributes, not in the module state dict)
            "return_stats": [
                [float(np.asarray(a.ret_rms.mean)), float(np.asarray(a.ret_rms.var)), float(a.ret_rms.count)]
                if hasattr(a, "ret_rms")
                else []
                for a in self.algorithms
            ],
            "reward_mean": self.reward_mean,
            "reward_std": self.reward_std,
            "fitted": self.fitted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for a, sd in zip(self.algorithms, state["algorithms"], strict=True):
            a.load_state_dict(dict(sd))
        for a, rs in zip(self.algorithms, state.get("return_stats", []), strict=False):
            if rs and hasattr(a, "ret_rms"):
                a.ret_rms.mean, a.ret_rms.var, a.ret_rms.count = np.float64(rs[0]), np.float64(rs[1]), int(rs[2])
        self.reward_mean = float(state["reward_mean"])
        self.reward_std = float(state["reward_std"])
        self.fitted = bool(state["fitted"])
