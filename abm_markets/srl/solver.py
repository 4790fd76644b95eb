"""Structural reinforcement learning (SRL): a generic solver for heterogeneous-agent models.

Method (Yang, Wang, Schaab and Moll, *Structural Reinforcement Learning for
Heterogeneous Agent Macroeconomics*, 2024/25). Households observe prices, not
the cross-sectional distribution. Their policy is a table over (aggregate
exogenous state ``z``, price grid [and lagged-price grids], individual asset
``b``, idiosyncratic state ``y``) and is improved by gradient ascent on

    v(theta) = 1/N sum_n sum_{t<T} beta^t sum_{b,y} g_t^n(b, y) u(c_theta(b, y, p_t^n, z_t^n)),

the discounted utility averaged over ``N`` simulated equilibrium paths. The
distribution ``g_t`` lives on the asset grid and is pushed forward by the
policy with Young's lottery, so the gradient is exact through the known
individual dynamics (structural knowledge: budget, transitions, utility). Each
household takes the *aggregate* distribution and prices as given: prices are
computed from ``g_t.detach()`` and the detached policy (stop-gradient = price
taking), while ``g_t`` itself, read as the household's own state distribution,
carries the gradient. Each period the market clears on the price grid
(:func:`abm_markets.srl.grids.clear_on_grid`).

Division of labour
------------------
The **model** supplies the economics of one period; the **solver** supplies
everything else: sampling the aggregate shock paths, the time loop over ``N``
paths at once, the discounting, stop-gradient of the state carried between
periods, gradients per policy group, Adam with gradient clipping and
learning-rate decay, warm-up from fixed or random initial distributions,
continuation of the paths across epochs (so later epochs sample the ergodic set),
convergence in a robust norm, per-epoch logging, checkpoints and resume, and
guards against divergence.

Checkpoints, resume, guards
---------------------------
With a run context the solver saves ``checkpoints/epochNNNNNN.pt`` every
``checkpoint_every`` epochs and at the end: tables, Adam state, the random
generator's state, the paths' state (distribution, ``z``, carry), the
convergence counter, the history and the metric rows. With ``ctx.resume`` it
continues from the latest one, bit for bit (the same tables and numbers as an
uninterrupted solve). After every epoch one fused check (one host
synchronisation) tests the objectives, gradient norms, tables and the paths'
state; a NaN or inf raises :class:`~abm_markets.errors.TrainingDiverged` naming
the epoch, the group and what went non-finite, before that epoch is
checkpointed, so ``checkpoints/latest`` keeps naming the last good checkpoint.

Model protocol (:class:`SRLModel`)
----------------------------------
A model is any object with these attributes and methods (shapes: ``N`` paths,
``nb`` asset points, ``ny`` idiosyncratic states, ``nz`` aggregate states):

``beta: float``
    Discount factor applied by the solver as ``beta**t`` to every reward.
``agg_transition: Tensor (nz, nz)``
    Markov matrix of the aggregate exogenous state ``z`` (index). Use a
    one-state chain ``[[1.0]]`` for no aggregate risk. Partial-equilibrium
    models put exogenous prices into ``z``.
``init_params(device, dtype) -> dict[str, Tensor]``
    Initial policy tables (the solver makes them leaves with ``requires_grad``).
``param_groups() -> dict[str, tuple[str, ...]]``
    Objective name -> names of the tables it is maximised over, e.g.
    ``{"household": ("savings_logit",)}``; HANK adds ``{"firm": ("inflation",)}``.
    ``period`` returns one reward per objective name. Each group's gradient is
    taken of its own objective only (simultaneous, independent updates).
``initial_distribution(n, kind, generator, device, dtype) -> Tensor (n, nb, ny)``
    ``kind`` is ``"fixed"`` (the same for every path) or ``"random"``.
``initial_carry(n, z0, device, dtype) -> dict[str, Tensor]``
    Aggregate state carried between periods, e.g. ``{"price_lag": (n,)}``;
    may be empty.
``prepare(params) -> dict[str, Tensor]`` (optional)
    Policy-derived tables computed once per rollout, with gradient (e.g.
    ``sigmoid`` of the logit table, and the detached savings at every grid price
    for clearing). The policy is fixed within a rollout, so this moves the
    table-sized work out of the time loop. Passed to ``period`` as
    ``inp.prepared``; without ``prepare``, ``inp.prepared`` is ``params``.
``period(inp: PeriodInput) -> PeriodOutput``
    One period for all paths: evaluate the policy, clear the markets (using
    ``inp.given_dist`` and detached tables, i.e. stop-gradient), compute
    consumption, rewards and the next distribution (with gradient, via
    :func:`~abm_markets.srl.grids.lottery` and
    :func:`~abm_markets.srl.grids.push_forward`).
``policy_values(params) -> Tensor``
    The policy in economic units on its whole table (e.g. savings ``b'`` at
    every (z, p, b, y)); the convergence criterion is a high quantile of the
    absolute change of this tensor between epochs.

Helpers for models: :func:`take_agg` (select the tables of each path's
``z``), :func:`interp_axis1` (interpolate a table along its price axis at a
bracket ``(j, w)``), everything in :mod:`abm_markets.srl.grids`.

Rewards and logs
----------------
``PeriodOutput.reward[name]`` is the period-``t`` payoff per path ``(N,)``,
undiscounted: the solver multiplies by ``beta**t``. A model with stochastic
discounting (firms discounting by ``R_{0->t}``) multiplies its reward by its own
discount ratio ``disc_t / beta**t`` (carry the discount in ``carry``).
``PeriodOutput.log[name]`` are ``(N,)`` path observables (prices, aggregates);
names starting with ``resid_`` are market-clearing residuals, summarised every
epoch as mean and max absolute value over paths and periods.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError, TrainingDiverged, UserError
from abm_markets.runs import nonfinite_kind, nonfinite_tensors

if TYPE_CHECKING:
    from abm_markets.runs import RunContext

__all__ = [
    "PeriodInput",
    "PeriodOutput",
    "Rollout",
    "SRLConfig",
    "SRLModel",
    "SRLResult",
    "describe",
    "interp_axis1",
    "policy_gradient",
    "rollout",
    "simulate",
    "simulate_markov",
    "solve",
    "take_agg",
]

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclasses.dataclass(frozen=True, kw_only=True)
class SRLConfig(Config):
    """Settings of the SRL solver (not of the economy)."""

    n_paths: int = param(32, "Number N of simulated equilibrium paths per epoch (batch).", ge=1)
    horizon: int = param(80, "Periods T per path and epoch (objective truncated at T).", ge=2)
    max_epochs: int = param(1500, "Maximum number of gradient epochs.", ge=1)
    min_epochs: int = param(100, "No convergence is declared before this epoch.", ge=0)
    lr: float = param(0.05, "Initial Adam learning rate (tables are in logit units).", gt=0.0)
    lr_decay: float = param(0.99, "Multiplicative learning-rate decay per epoch after warm-up.", gt=0.0, le=1.0)
    lr_min: float = param(1e-4, "Floor of the decayed learning rate.", gt=0.0)
    adam_beta1: float = param(0.9, "Adam first-moment decay.", ge=0.0, lt=1.0)
    adam_beta2: float = param(0.999, "Adam second-moment decay.", ge=0.0, lt=1.0)
    adam_eps: float = param(
        1e-8,
        "Adam epsilon: table entries whose gradient stays well below it (states with almost no mass) barely move.",
        gt=0.0,
    )
    clip_norm: float | None = param(1.0, "Clip each group's gradient to this global L2 norm (None: off).", gt=0.0)
    warmup_epochs: int = param(50, "Epochs whose paths start from fixed/random initial distributions.", ge=0)
    warmup_init: str = param("random", "Initial distributions during warm-up.", choices=("fixed", "random"))
    restart_share: float = param(
        0.1,
        "After warm-up, share of paths restarted from a random distribution each epoch (exploration).",
        ge=0.0,
        le=1.0,
    )
    tol: float = param(2e-3, "Convergence: quantile of |policy update| (model units) below this.", gt=0.0)
    tol_quantile: float = param(0.99, "Quantile of |policy update| used as the robust norm.", gt=0.0, le=1.0)
    patience: int = param(5, "Consecutive epochs below tol required to declare convergence.", ge=1)
    tail: int = param(
        30,
        "Last periods of each rollout simulated with the policy detached: their rewards still count for earlier"
        " decisions, but their own (truncation-myopic) decisions get no gradient.",
        ge=0,
    )
    terminal: str = param(
        "perpetuity",
        "Value after the horizon: perpetuity counts the last period's reward forever (x 1/(1 - beta)); none drops it.",
        choices=("perpetuity", "none"),
    )
    dtype: str = param("float32", "Floating-point type of tables and distributions.", choices=("float32", "float64"))
    checkpoint_every: int = param(
        50,
        "Save a checkpoint every this many epochs (0 = only at the end); a resumed run continues from the latest.",
        ge=0,
    )

    def validate(self) -> None:
        if self.tail >= self.horizon:
            raise ConfigError(f"SRLConfig.tail = {self.tail} is invalid; expected < horizon = {self.horizon}")
        if self.lr_min > self.lr:
            raise ConfigError(f"SRLConfig.lr_min = {self.lr_min} is invalid; expected <= lr = {self.lr}")

    @property
    def torch_dtype(self) -> torch.dtype:
        return _DTYPES[self.dtype]


@dataclasses.dataclass(frozen=True)
class PeriodInput:
    """What a model's ``period`` receives for period ``t`` (all paths at once).

    Attributes:
        t: Period index within the epoch's rollout.
        z: ``(N,)`` long, aggregate exogenous state index at ``t``.
        z_next: ``(N,)`` long, its value at ``t + 1`` (for transitions that depend on both).
        dist: ``(N, nb, ny)`` the households' own state distribution; carries the gradient.
        carry: Aggregate state from the previous period (detached), e.g. lagged prices.
        params: The policy tables (leaves with gradient).
        prepared: What ``model.prepare(params)`` returned for this rollout (else ``params``).
    """

    t: int
    z: Tensor
    z_next: Tensor
    dist: Tensor
    carry: Mapping[str, Tensor]
    params: Mapping[str, Tensor]
    prepared: Mapping[str, Tensor]
    tape: list[tuple[str, Tensor, Tensor]] | None = None

    @property
    def given_dist(self) -> Tensor:
        """The aggregate distribution as households take it: ``dist`` with the gradient stopped."""
        return self.dist.detach()

    def gather(self, name: str, index: Tensor, keep_dims: int) -> Tensor:
        """Rows of table ``name`` with its leading axes flattened: ``table.reshape(-1, *last keep_dims axes)[index]``.

        Prefer this to indexing ``params`` directly: when gradients are on, the
        rows are returned as fresh leaves and recorded on a tape, and the solver
        scatters their gradients into the table once per epoch. Indexing the
        table itself makes autograd add a table-sized gradient for every
        period, which dominates the cost for large (lagged-price) tables.
        """
        table = self.params[name]
        flat = table.reshape(-1, *table.shape[table.dim() - keep_dims :])
        if self.tape is None or not table.requires_grad:
            return flat.index_select(0, index)
        leaf = flat.detach().index_select(0, index).requires_grad_(True)
        self.tape.append((name, index, leaf))
        return leaf


@dataclasses.dataclass(frozen=True)
class PeriodOutput:
    """What a model's ``period`` returns.

    Attributes:
        dist_next: ``(N, nb, ny)`` next distribution (differentiable in the policy).
        reward: Objective name -> ``(N,)`` period payoff (the solver applies ``beta**t``).
        carry: Next aggregate state (the solver detaches it).
        log: Name -> ``(N,)`` observables; ``resid_*`` are clearing residuals.
    """

    dist_next: Tensor
    reward: Mapping[str, Tensor]
    carry: Mapping[str, Tensor] = dataclasses.field(default_factory=dict)
    log: Mapping[str, Tensor] = dataclasses.field(default_factory=dict)


class SRLModel(Protocol):
    """The model protocol; see the module docstring."""

    beta: float
    agg_transition: Tensor

    def init_params(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]: ...

    def param_groups(self) -> dict[str, tuple[str, ...]]: ...

    def initial_distribution(
        self, n: int, kind: str, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> Tensor: ...

    def initial_carry(self, n: int, z0: Tensor, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]: ...

    def period(self, inp: PeriodInput) -> PeriodOutput: ...

    def policy_values(self, params: Mapping[str, Tensor]) -> Tensor: ...


# ---------------------------------------------------------------------- helpers for models
def take_agg(table: Tensor, z: Tensor) -> Tensor:
    """Rows of ``table`` (leading axis = aggregate state) for each path: ``table[z]``, shape ``(N, ...)``."""
    return table.index_select(0, z)


def interp_axis1(x: Tensor, j: Tensor, w: Tensor) -> Tensor:
    """Linear interpolation along axis 1 at per-path brackets.

    Args:
        x: ``(N, n, ...)`` values on a grid along axis 1.
        j: ``(N,)`` long bracket index, ``0 <= j <= n - 2``.
        w: ``(N,)`` weight of ``j + 1``.

    Returns:
        ``(N, ...)``: ``(1 - w) x[:, j] + w x[:, j + 1]`` (differentiable in ``x`` and ``w``).
    """
    shape = (x.shape[0], 1, *x.shape[2:])
    idx = j.view(-1, *([1] * (x.dim() - 1))).expand(shape)
    x0 = x.gather(1, idx).squeeze(1)
    x1 = x.gather(1, idx + 1).squeeze(1)
    wv = w.view(-1, *([1] * (x0.dim() - 1)))
    return x0 + wv * (x1 - x0)


def simulate_markov(P: Tensor, z0: Tensor, periods: int, generator: torch.Generator) -> Tensor:
    """Simulate ``len(z0)`` paths of a Markov chain for ``periods`` steps.

    Args:
        P: ``(nz, nz)`` transition matrix.
        z0: ``(N,)`` long initial states.
        periods: Number of transitions.
        generator: The one random generator (on ``P``'s device).

    Returns:
        ``(N, periods + 1)`` long state indices, ``[:, 0] == z0``.
    """
    n = z0.shape[0]
    cum = torch.cumsum(P, dim=1)
    cum[:, -1] = 1.0 + 1e-6
    u = torch.rand(periods, n, 1, generator=generator, device=P.device, dtype=P.dtype)
    out = torch.empty(n, periods + 1, dtype=torch.long, device=P.device)
    out[:, 0] = z0
    z = z0
    for t in range(periods):
        z = torch.searchsorted(cum.index_select(0, z), u[t]).squeeze(1).clamp_(max=P.shape[0] - 1)
        out[:, t + 1] = z
    return out


def _sample_stationary(P: Tensor, n: int, generator: torch.Generator) -> Tensor:
    from abm_markets.srl.grids import stationary_distribution

    pi = stationary_distribution(P.double()).to(P.dtype)
    return torch.multinomial(pi.clamp_min(0), n, replacement=True, generator=generator)


# ---------------------------------------------------------------------- rollout
class Rollout(NamedTuple):
    """Result of :func:`rollout`.

    Attributes:
        objective: Objective name -> ``(N,)`` discounted sum of rewards per path.
        logs: Name -> ``(N, T)`` observables (detached).
        dist: ``(N, nb, ny)`` distribution after the last period (detached).
        carry: Aggregate carry after the last period (detached).
        z: ``(N, T + 1)`` the aggregate state path used.
        tape: ``(table name, row index, leaf)`` of every :meth:`PeriodInput.gather` with gradient.
    """

    objective: dict[str, Tensor]
    logs: dict[str, Tensor]
    dist: Tensor
    carry: dict[str, Tensor]
    z: Tensor
    tape: list[tuple[str, Tensor, Tensor]]


def rollout(
    model: SRLModel,
    params: Mapping[str, Tensor],
    z_path: Tensor,
    dist0: Tensor,
    carry0: Mapping[str, Tensor],
    *,
    tail: int = 0,
    terminal: str = "none",
) -> Rollout:
    """Simulate ``N`` equilibrium paths under the policy ``params`` and accumulate the objective.

    Runs ``T = z_path.shape[1] - 1`` periods; differentiable in ``params``
    unless called under ``torch.no_grad()``. In the last ``tail`` periods the
    policy is used detached: those decisions get no gradient (they would be
    distorted by the truncation at ``T``), their rewards still count.
    ``terminal="perpetuity"`` weights the last period's reward by
    ``1 / (1 - beta)``: the stream after ``T`` is approximated by repeating the
    last period, which gives wealth at ``T`` roughly its marginal value
    ``u'(c)`` instead of zero.
    """
    T = z_path.shape[1] - 1
    prepare = getattr(model, "prepare", None)
    prepared = prepare(params) if prepare is not None else params
    frozen_params = {k: v.detach() for k, v in params.items()}
    frozen = {k: v.detach() for k, v in prepared.items()}
    tape: list[tuple[str, Tensor, Tensor]] = []
    use_tape = torch.is_grad_enabled()
    dist = dist0
    carry = dict(carry0)
    totals: dict[str, Tensor] = {}
    logs: dict[str, list[Tensor]] = {}
    disc = 1.0
    for t in range(T):
        live = t < T - tail
        out = model.period(
            PeriodInput(
                t,
                z_path[:, t],
                z_path[:, t + 1],
                dist,
                carry,
                params if live else frozen_params,
                prepared if live else frozen,
                tape if (live and use_tape) else None,
            )
        )
        weight = disc / (1.0 - model.beta) if (terminal == "perpetuity" and t == T - 1) else disc
        for name, r in out.reward.items():
            totals[name] = totals[name] + weight * r if name in totals else weight * r
        for name, v in out.log.items():
            logs.setdefault(name, []).append(v.detach())
        carry = {k: v.detach() for k, v in out.carry.items()}
        dist = out.dist_next
        disc *= model.beta
    return Rollout(
        objective=totals,
        logs={k: torch.stack(v, dim=1) for k, v in logs.items()},
        dist=dist.detach(),
        carry=carry,
        z=z_path,
        tape=tape,
    )


def simulate(
    model: SRLModel,
    params: Mapping[str, Tensor],
    *,
    n_paths: int,
    periods: int,
    generator: torch.Generator,
    burn_in: int = 0,
    dist0: Tensor | None = None,
    z0: Tensor | None = None,
    carry0: Mapping[str, Tensor] | None = None,
    z_path: Tensor | None = None,
    init: str = "fixed",
) -> Rollout:
    """Evaluate a policy without gradients: ``burn_in`` periods discarded, then ``periods`` logged.

    ``z_path`` (``(N, periods + 1)``) fixes the aggregate shocks of the logged
    part (a common shock path for comparisons); otherwise they are drawn.
    """
    P = model.agg_transition
    some = next(iter(params.values()))
    device, dtype = some.device, some.dtype
    with torch.no_grad():
        if dist0 is None:
            dist0 = model.initial_distribution(n_paths, init, generator, device, dtype)
        if z0 is None:
            z0 = z_path[:, 0] if z_path is not None else _sample_stationary(P, n_paths, generator)
        carry = dict(carry0) if carry0 is not None else model.initial_carry(n_paths, z0, device, dtype)
        dist = dist0
        if burn_in > 0:
            zb = simulate_markov(P, z0, burn_in, generator)
            if z_path is not None:
                zb[:, -1] = z_path[:, 0]  # end the burn-in in the requested state
            burn = rollout(model, params, zb, dist, carry)
            dist, carry, z0 = burn.dist, burn.carry, zb[:, -1]
        if z_path is None:
            z_path = simulate_markov(P, z0, periods, generator)
        return rollout(model, params, z_path, dist, carry)


def policy_gradient(
    roll: Rollout, tables: Mapping[str, Tensor], groups: Mapping[str, tuple[str, ...]]
) -> dict[str, Tensor]:
    """Gradient of each group's mean objective w.r.t. its own tables (ascent direction negated: for minimisers).

    Returns ``d(-mean objective_g) / d table`` for every table of every group
    ``g``: autograd through the rollout, plus the rows recorded on the
    rollout's gather tape scattered back into their tables (one ``index_add``
    per table and epoch).
    """
    out: dict[str, Tensor] = {}
    items = list(groups.items())
    for i, (gname, pnames) in enumerate(items):
        obj = roll.objective[gname].mean()
        plist = [tables[n] for n in pnames]
        taped = [(n, idx, leaf) for n, idx, leaf in roll.tape if n in pnames]
        grads = torch.autograd.grad(
            -obj, plist + [leaf for _, _, leaf in taped], retain_graph=i < len(items) - 1, allow_unused=True
        )
        for n, p, gr in zip(pnames, plist, grads[: len(plist)], strict=True):
            out[n] = torch.zeros_like(p) if gr is None else gr.contiguous()
        by_name: dict[str, tuple[list[Tensor], list[Tensor]]] = {}
        for (n, idx, _leaf), gr in zip(taped, grads[len(plist) :], strict=True):
            if gr is not None:
                by_name.setdefault(n, ([], []))[0].append(idx)
                by_name[n][1].append(gr)
        for n, (idxs, grs) in by_name.items():
            rows = torch.cat(grs)
            out[n].view(-1, *rows.shape[1:]).index_add_(0, torch.cat(idxs), rows)
    return out


# ---------------------------------------------------------------------- training
@dataclasses.dataclass
class SRLResult:
    """Outcome of :func:`solve`.

    Attributes:
        params: Learned policy tables (detached).
        converged: Whether the update criterion was met before ``max_epochs``.
        epochs: Number of epochs run.
        wall_s: Wall time of the training loop in seconds.
        history: One dict per epoch (the rows also sent to ``ctx.log_metrics``).
        dist, z, carry: Terminal state of the training paths (a draw from the ergodic set).
    """

    params: dict[str, Tensor]
    converged: bool
    epochs: int
    wall_s: float
    history: list[dict[str, float]]
    dist: Tensor
    z: Tensor
    carry: dict[str, Tensor]


def _summarise_logs(logs: Mapping[str, Tensor]) -> dict[str, float]:
    row: dict[str, float] = {}
    for name, v in logs.items():
        if name.startswith("resid_"):
            a = v.abs()
            row[f"{name}_mean"] = float(a.mean())
            row[f"{name}_max"] = float(a.max())
        else:
            row[f"{name}_mean"] = float(v.mean())
    return row


def solve(
    model: SRLModel,
    cfg: SRLConfig,
    *,
    generator: torch.Generator,
    device: torch.device | str = "cpu",
    params: Mapping[str, Tensor] | None = None,
    ctx: RunContext | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
) -> SRLResult:
    """Train the policy tables of ``model`` by structural RL.

    Per epoch: draw aggregate shock paths, roll ``cfg.n_paths`` paths forward
    ``cfg.horizon`` periods, ascend each group's objective with Adam (gradient
    clipped to ``cfg.clip_norm``, learning rate ``lr * lr_decay**(epoch -
    warmup)`` floored at ``lr_min``), and measure the update as the
    ``tol_quantile`` quantile of ``|policy_values(new) - policy_values(old)|``.
    Converged once the update stays below ``tol`` for ``patience`` epochs
    (not before ``min_epochs`` nor during warm-up).

    Warm-up: for the first ``warmup_epochs`` epochs every path starts from
    ``model.initial_distribution(kind=cfg.warmup_init)``. Afterwards each path
    continues from where the previous epoch ended (so the paths sample the
    ergodic set of the current policy), except a share ``restart_share``
    restarted from random distributions to keep off-path states trained.

    Args:
        model: An :class:`SRLModel`.
        cfg: Solver settings.
        generator: The one random generator (on ``device``).
        device: Torch device.
        params: Initial tables (default ``model.init_params``).
        ctx: Optional run context; one ``log_metrics`` row per epoch.
        callback: Optional ``callback(epoch, row)`` after each epoch.

    Returns:
        :class:`SRLResult`.
    """
    device = torch.device(device)
    dtype = cfg.torch_dtype
    model_dtype = getattr(model, "dtype", dtype)
    if model_dtype != dtype:
        raise ConfigError(f"SRLConfig.dtype = {cfg.dtype!r} is invalid; the model was built with {model_dtype}")
    init = params if params is not None else model.init_params(device, dtype)
    tables = {k: v.detach().to(device=device, dtype=dtype).clone().requires_grad_(True) for k, v in init.items()}
    groups = model.param_groups()
    opt = torch.optim.Adam(
        [{"params": [tables[n] for n in names], "name": g} for g, names in groups.items()],
        lr=cfg.lr,
        betas=(cfg.adam_beta1, cfg.adam_beta2),
        eps=cfg.adam_eps,
    )
    P = model.agg_transition.to(device=device, dtype=dtype)
    N, T = cfg.n_paths, cfg.horizon
    history: list[dict[str, float]] = []
    below = 0
    converged = False
    dist = z = None
    carry: dict[str, Tensor] = {}
    wall0 = 0.0
    start = 0
    last_good = _latest_checkpoint_path(ctx)
    if ctx is not None and getattr(ctx, "resume", False):
        ckpt = ctx.latest_checkpoint()
        if ckpt is not None and "srl" in ckpt:
            st = ckpt["srl"]
            _load_tables(tables, st["tables"], last_good)
            opt.load_state_dict(st["optimizer"])
            generator.set_state(st["generator"].cpu())
            dist = None if st["dist"] is None else st["dist"].to(device)
            z = None if st["z"] is None else st["z"].to(device)
            carry = {k: v.to(device) for k, v in st["carry"].items()}
            below, converged = int(st["below"]), bool(st["converged"])
            history = [dict(r) for r in st["history"]]
            wall0 = float(st["wall_s"])
            start = int(st["epoch"])
            ctx.set_metrics(list(ckpt.get("metrics", [])))
    t0 = time.perf_counter()
    with torch.no_grad():
        values = model.policy_values(tables)

    def save(epoch: int, done: bool) -> None:
        nonlocal last_good
        saver = getattr(ctx, "save_checkpoint", None)
        if saver is None:
            return
        state = {
            "epoch": epoch,
            "tables": {k: v.detach() for k, v in tables.items()},
            "optimizer": opt.state_dict(),
            "generator": generator.get_state(),
            "dist": dist,
            "z": z,
            "carry": dict(carry),
            "below": below,
            "converged": converged,
            "finished": done,
            "history": history,
            "wall_s": wall0 + time.perf_counter() - t0,
        }
        bad = nonfinite_tensors({k: state[k] for k in ("tables", "optimizer", "dist", "carry")})
        if bad:
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise TrainingDiverged(epoch, None, f"non-finite checkpoint state {bad[0]}{more}", last_good, "epoch")
        metrics = list(getattr(ctx, "metrics", []))
        path = saver(f"epoch{epoch:06d}", {"srl": state, "srl_config": cfg.to_dict(), "metrics": metrics})
        if path is not None:
            last_good = str(path)
        _flush(ctx)

    epoch = start
    bar_cm = ctx.progress(cfg.max_epochs, "SRL epochs", unit="epoch") if hasattr(ctx, "progress") else None
    bar = bar_cm.__enter__() if bar_cm is not None else None
    if bar is not None:
        bar.update(start)  # resumed: the epochs already done
    for epoch in range(start + 1, 0 if converged else cfg.max_epochs + 1):  # resumed: continue where it stopped
        te = time.perf_counter()
        warm = epoch <= cfg.warmup_epochs
        with torch.no_grad():
            if warm or dist is None:
                dist = model.initial_distribution(N, cfg.warmup_init, generator, device, dtype)
                z = _sample_stationary(P, N, generator)
                carry = model.initial_carry(N, z, device, dtype)
            elif cfg.restart_share > 0:
                restart = torch.rand(N, generator=generator, device=device) < cfg.restart_share
                if bool(restart.any()):
                    fresh = model.initial_distribution(N, "random", generator, device, dtype)
                    dist = torch.where(restart[:, None, None], fresh, dist)
        lr = max(cfg.lr_min, cfg.lr * cfg.lr_decay ** max(0, epoch - cfg.warmup_epochs))
        for g in opt.param_groups:
            g["lr"] = lr
        z_path = simulate_markov(P, z, T, generator)
        try:
            roll = rollout(model, tables, z_path, dist, carry, tail=cfg.tail, terminal=cfg.terminal)
            grads = policy_gradient(roll, tables, groups)
        except (ValueError, RuntimeError) as exc:  # e.g. a NaN reaching a search or a sampler: name it if so
            try:
                _check_finite(epoch, {}, tables, groups, _paths_state(dist, carry), last_good)
            except TrainingDiverged as diverged:
                _flush(ctx)
                raise diverged from exc
            raise
        row: dict[str, float] = {"epoch": float(epoch), "lr": lr, "warmup": float(warm)}
        for gname, pnames in groups.items():
            plist = [tables[n] for n in pnames]
            for n in pnames:
                tables[n].grad = grads[n]
            gnorm = torch.sqrt(sum((p.grad**2).sum() for p in plist))
            if cfg.clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(plist, cfg.clip_norm)
            row[f"objective_{gname}"] = float(roll.objective[gname].mean().detach())
            row[f"grad_norm_{gname}"] = float(gnorm)
        opt.step()
        try:
            _check_finite(epoch, row, tables, groups, _paths_state(roll.dist, roll.carry), last_good)
        except TrainingDiverged:
            _flush(ctx)  # the rows of the good epochs, for diagnosis (a resume restores the checkpoint's)
            raise
        with torch.no_grad():
            new_values = model.policy_values(tables)
            diff = (new_values - values).abs().flatten()
            k = max(1, min(diff.numel(), math.ceil(cfg.tol_quantile * diff.numel())))
            update = float(torch.kthvalue(diff, k).values)
            values = new_values
        dist, z, carry = roll.dist, roll.z[:, -1], roll.carry
        row["update"] = update
        row["update_max"] = float(diff.max())
        row.update(_summarise_logs(roll.logs))
        row["epoch_s"] = time.perf_counter() - te
        row["solver_wall_s"] = wall0 + time.perf_counter() - t0
        history.append(row)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(update=f"{update:.2e}", refresh=False)
        if ctx is not None:
            ctx.log_metrics(**row)
        if callback is not None:
            callback(epoch, row)
        if not warm and epoch >= cfg.min_epochs and math.isfinite(update):
            below = below + 1 if update < cfg.tol else 0
            if below >= cfg.patience:
                converged = True
                break
        if cfg.checkpoint_every and epoch % cfg.checkpoint_every == 0 and epoch < cfg.max_epochs:
            save(epoch, False)
    if bar_cm is not None:
        bar_cm.__exit__(None, None, None)
    if epoch > start:
        save(epoch, True)
    wall = wall0 + time.perf_counter() - t0
    return SRLResult(
        params={k: v.detach() for k, v in tables.items()},
        converged=converged,
        epochs=epoch,
        wall_s=wall,
        history=history,
        dist=dist,
        z=z,
        carry=carry,
    )


def _paths_state(dist: Tensor | None, carry: Mapping[str, Tensor]) -> dict[str, Tensor]:
    out = {"distribution": dist} if dist is not None else {}
    return {**out, **{f"carry {k}": v for k, v in carry.items()}}


def _check_finite(
    epoch: int,
    row: Mapping[str, float],
    tables: Mapping[str, Tensor],
    groups: Mapping[str, tuple[str, ...]],
    state: Mapping[str, Tensor],
    last_good: str | None,
) -> None:
    """One fused finiteness check per epoch (one host synchronisation); raise :class:`TrainingDiverged` naming the
    first culprit in causal order: the paths' state, the objectives, the gradient norms, the tables."""
    tensors = [x for x in state.values() if x.is_floating_point()] + list(tables.values())
    with torch.no_grad():
        ok = bool(torch.stack([torch.isfinite(x.detach()).all() for x in tensors]).all())
    scalars = {k: v for k, v in row.items() if k.startswith(("objective_", "grad_norm_"))}
    if ok and all(math.isfinite(v) for v in scalars.values()):
        return
    owner = {n: g for g, names in groups.items() for n in names}
    culprits: list[tuple[str | None, str]] = []
    for name, x in state.items():
        if x.is_floating_point() and not bool(torch.isfinite(x).all()):
            culprits.append((None, f"{nonfinite_kind(x)} in the paths' {name}"))
    for prefix, what in (("objective_", "objective (loss)"), ("grad_norm_", "gradient norm")):
        for k, v in scalars.items():
            if k.startswith(prefix) and not math.isfinite(v):
                culprits.append((k[len(prefix) :], f"{'NaN' if math.isnan(v) else 'inf'} in the {what}"))
    for name, x in tables.items():
        if not bool(torch.isfinite(x.detach()).all()):
            culprits.append((owner.get(name), f"{nonfinite_kind(x)} in table {name!r}"))
    group, what = culprits[0]
    more = f" (and {len(culprits) - 1} more non-finite)" if len(culprits) > 1 else ""
    raise TrainingDiverged(epoch, group, what + more, last_good, "epoch")


def _flush(ctx: Any) -> None:
    flush = getattr(ctx, "flush_metrics", None)
    if flush is not None:
        flush()


def _latest_checkpoint_path(ctx: Any) -> str | None:
    folder = getattr(ctx, "checkpoint_dir", None)
    if folder is None:
        return None
    marker = Path(folder) / "latest"
    return str(Path(folder) / f"{marker.read_text().strip()}.pt") if marker.exists() else None


def _load_tables(tables: dict[str, Tensor], saved: Mapping[str, Tensor], path: str | None) -> None:
    if set(saved) != set(tables) or any(saved[k].shape != tables[k].shape for k in tables):
        have = {k: tuple(v.shape) for k, v in saved.items()}
        want = {k: tuple(v.shape) for k, v in tables.items()}
        raise UserError(f"checkpoint {path} holds tables {have}; this model has {want} (settings changed?)")
    with torch.no_grad():
        for k, v in tables.items():
            v.copy_(saved[k].to(device=v.device, dtype=v.dtype))


def describe(result: SRLResult) -> dict[str, Any]:
    """Headline figures of a solve for a summary: converged, epochs, wall_s, last update."""
    last = result.history[-1] if result.history else {}
    return {
        "converged": result.converged,
        "epochs": result.epochs,
        "wall_s": result.wall_s,
        "srl_wall_s": result.wall_s,
        "final_update": last.get("update"),
    }
