"""Scenario ``growth-dimension``: tabular Q-learning against deep RL as the number of capital goods grows.

Seed 001, section 1.3 ("Q-learning vs deep Q-learning as the dimensionality increases"). The economy is
Brock and Mirman (1972) with ``D`` capital goods, declared block by block with the economy constructor
(:func:`growth_declaration`, id ``GrowthD<D>-v1``; no Python step of its own):

    Y    = Z prod_j K_j^(alpha / D)          (technology, an expression block)
    X_j  = x_j Y                             (investment in good j, expression blocks)
    C    = (1 - sum_j x_j) Y                 (budget, an expression block)
    K_j' = (1 - delta) K_j + X_j, delta = 1  (``accumulate``, one use per good)
    u    = log C                             (``log_utility``)

``Z`` is a two-state Markov chain (0.9, 1.1, persistence 0.9). One household observes ``(K_1, ..., K_D, Z)`` and
chooses ``D`` shares ``x_j in (0, 1/D)`` of output saved in each good; the bound keeps ``C > 0`` without a
feasibility projection, and the optimum is interior for every ``D`` because ``alpha beta < 1``. The optimal
policy has a closed form (derived in docs/growth.md): ``x_j = alpha beta / D`` for every good and every state;
it is the declaration's reference policy, checked numerically by value iteration in the tests. Learners start
from a deliberately wrong policy: total saving 0.6 of output, tilted across goods from ``0.6 (1 - tilt)/D`` to
``0.6 (1 + tilt)/D``.

Methods (``methods``), each trained from that start:

* ``tabular-q``: Q-learning on a grid (``k_bins`` log-spaced bins per capital good, the two TFP states; a
  product grid of ``share_points`` shares per good), one table updated by ``tabular_economies`` economies
  stepped in parallel. The table has ``2 k_bins^D x share_points^D`` cells: where it exceeds
  ``memory_limit_mb`` the method is not run and its row says so (``ran = False``) with the memory it would need.
* ``dqn``: the project's DQN (:class:`~abm_markets.learn.train.Trainer`) acts on one discrete action per slot,
  so it runs at ``D = 1`` only; a joint grid over ``D`` shares would need ``n_actions^D`` outputs (the row
  gives that count and is not run).
* ``ppo``, ``sac``: the project's trainer with continuous actions (``D`` outputs), every ``D``.

Every row is scored on the same evaluation: ``eval_economies`` economies for ``eval_periods`` periods under the
closed-form policy, from the declared initial states; ``policy_error`` is the mean over the visited states and
the goods of ``|x_j - alpha beta / D| / (alpha beta / D)`` (equivalently the relative error of next period's
capital stocks); ``welfare_loss_pct`` is the consumption-equivalent loss of the learned policy against the
closed form on common shocks, ``1 - exp((1 - beta)(W - W*))``. ``memory_mb`` is what the method stores to
represent its policy: the Q table and its visit counts (float32), or every network's parameters with Adam's
two moments; ``buffer_mb`` adds what training holds besides (the replay buffer, measured, for DQN and SAC).

A second case (``crra_case``) puts a learner against the project's value-function iteration
(:func:`abm_markets.solvers.investment.solve_vfi`) in the one-good economy with CRRA utility, partial
depreciation and the investment economy's quadratic cost of capital goods, ``C = Y - X``, ``I = sqrt(2 X /
phi)``, ``K' = (1 - delta) K + I``; declared from library blocks as ``GrowthCRRA-v1``. Its row has ``D = 1`` and
``method = <algorithm>-crra``; ``policy_error`` is the relative error of the spending share ``X / Y`` against the
VFI policy over the states the VFI policy visits.

Outputs: ``dimension.parquet`` (one row per method, ``D`` and seed), ``steps.parquet`` (``Y``, ``C`` and per good
``K``, ``x`` of the first ``log_economies`` evaluation economies under each trained policy and the closed form;
docs/logs.md), ``metrics.parquet`` (one row per training run), ``plots/dimension.png``. The summary has
``rows``: one entry per (method, D) with ``policy_error``, ``train_wall_s``, ``memory_mb`` (means over seeds),
``ran`` and a ``note``.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from typing import Any

import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.learn.tabular_grid import TabularGrid, run_tabular_q
from abm_markets.runs import RunContext
from abm_markets.scenarios import register

__all__ = [
    "GrowthDimensionConfig",
    "TabularGrid",
    "crra_declaration",
    "growth_declaration",
    "policy_error",
    "run_tabular_q",
    "steady_state_capital",
    "tabular_cells",
]

METHODS = ("tabular-q", "dqn", "ppo", "sac")


@dataclasses.dataclass(frozen=True, kw_only=True)
class GrowthDimensionConfig(Config):
    """Settings of the growth-dimension study."""

    dims: tuple[int, ...] = param((1, 2, 5, 10), "Numbers of capital goods D.", ge=1, le=20)
    methods: tuple[str, ...] = param(METHODS, "Methods: tabular-q, dqn, ppo, sac.", choices=METHODS)
    seeds: int = param(2, "Seeds per (method, D): the run's seed, seed + 1, ...", ge=1)
    alpha: float = param(0.36, "Capital share alpha (split equally over the goods).", gt=0.0, lt=1.0)
    beta: float = param(0.96, "Discount factor beta (the learners' gamma).", gt=0.0, lt=1.0)
    tfp_values: tuple[float, ...] = param((0.9, 1.1), "TFP states.", gt=0.0)
    tfp_persistence: float = param(0.9, "Probability TFP stays in its state.", ge=0.0, lt=1.0)
    start_share: float = param(
        0.6, "Total saving share of the learners' start (the optimum is alpha beta).", gt=0.0, lt=1.0
    )
    start_tilt: float = param(
        0.5,
        "Tilt of the start across goods: good j starts at start_share (1 + tilt (2 j/(D-1) - 1)) / D.",
        ge=0.0,
        lt=1.0,
    )
    memory_limit_mb: float = param(
        2048.0, "Largest table (Q and visit counts, float32) the tabular method may allocate.", gt=0.0
    )
    # tabular Q
    k_bins: int = param(12, "Tabular: log-spaced bins per capital good.", ge=2)
    k_range: float = param(4.0, "Tabular: bins cover [K*/r, K* r] per good, K* the steady state at Z = 1.", gt=1.0)
    share_points: int = param(7, "Tabular: shares per good, (i + 1/2) / (points D), i = 0..points-1.", ge=2)
    tabular_economies: int = param(256, "Tabular: economies stepped in parallel, all updating one table.", ge=1)
    tabular_periods: int = param(40_000, "Tabular: training periods.", ge=1)
    tabular_lr: float = param(0.1, "Tabular: largest step of the Q update.", gt=0.0, le=1.0)
    tabular_lr_power: float = param(
        0.6, "Tabular: a cell visited k times in a period after N visits in all steps by (k / N)^power.", gt=0.0
    )
    tabular_eps_decay: float = param(10_000.0, "Tabular: epsilon = max(eps_end, exp(-t / decay)).", gt=0.0)
    tabular_eps_end: float = param(0.05, "Tabular: final exploration rate.", ge=0.0, le=1.0)
    episode_len: int = param(100, "Periods between resets of a training economy (tabular and deep).", ge=1)
    # deep RL (the project's Trainer)
    n_economies: int = param(256, "PPO/DQN/SAC: economies stepped in parallel.", ge=1)
    rollout_len: int = param(32, "PPO/DQN/SAC: periods per iteration.", ge=1)
    ppo_iterations: int = param(60, "PPO iterations.", ge=0)
    dqn_iterations: int = param(40, "DQN iterations.", ge=0)
    sac_iterations: int = param(40, "SAC iterations.", ge=0)
    sac_economies: int = param(
        32, "SAC/DQN: economies stepped in parallel (off-policy: fewer, more updates each).", ge=1
    )
    minibatch_off_policy: int = param(256, "SAC/DQN minibatch.", ge=1)
    updates_per_step: int = param(2, "SAC/DQN gradient steps per collected period.", ge=1)
    n_actions: int = param(41, "DQN: discrete actions (a grid of raw outputs on [-2, 2]).", ge=2)
    # evaluation
    eval_economies: int = param(256, "Evaluation economies (closed-form paths; common shocks).", ge=1)
    eval_periods: int = param(100, "Evaluation periods.", ge=1)
    log_economies: int = param(2, "Evaluation economies logged to steps.parquet per row.", ge=0)
    # the CRRA, partial-depreciation one-good case against the project's VFI
    crra_case: bool = param(True, "Also run the one-good CRRA economy with partial depreciation against VFI.")
    crra_algorithm: str = param("ppo", "Learner of the CRRA case.", choices=("ppo", "sac"))
    crra_sigma: float = param(2.0, "CRRA case: relative risk aversion.", gt=0.0)
    crra_delta: float = param(0.1, "CRRA case: depreciation.", gt=0.0, le=1.0)
    crra_phi: float = param(0.5, "CRRA case: capital-good cost phi/2 I^2.", gt=0.0)
    crra_alpha: float = param(0.3, "CRRA case: capital share.", gt=0.0, lt=1.0)

    def validate(self) -> None:
        if len(set(self.dims)) != len(self.dims):
            raise ConfigError(f"GrowthDimensionConfig.dims = {self.dims} names a D twice")
        if len(set(self.methods)) != len(self.methods):
            raise ConfigError(f"GrowthDimensionConfig.methods = {self.methods} names a method twice")

    def estimated_bytes(self) -> int:
        """Tabular tables are capped by memory_limit_mb; deep learners' buffers are small here (x4 headroom)."""
        table = min(self.memory_limit_mb * 2**20, max(tabular_cells(self, d) for d in self.dims) * 8)
        return int(table + 4 * self.n_economies * self.rollout_len * (2 * max(self.dims) + 8) * 8)


# ------------------------------------------------------------------------------------------------ economics
def steady_state_capital(d: int, alpha: float, beta: float, z: float = 1.0) -> float:
    """Each good's deterministic steady state under the optimum: ``K = (alpha beta z / D)^(1/(1 - alpha))``."""
    return (alpha * beta * z / d) ** (1.0 / (1.0 - alpha))


def start_shares(d: int, total: float, tilt: float) -> list[float]:
    """The learners' start: ``total (1 + tilt (2 j/(D-1) - 1)) / D`` for good ``j`` (``total / D`` at ``D = 1``)."""
    if d == 1:
        return [total]
    return [total * (1.0 + tilt * (2.0 * j / (d - 1) - 1.0)) / d for j in range(d)]


def growth_declaration(
    d: int,
    *,
    alpha: float = 0.36,
    beta: float = 0.96,
    tfp_values: tuple[float, ...] = (0.9, 1.1),
    tfp_persistence: float = 0.9,
    start_share: float = 0.6,
    start_tilt: float = 0.5,
    horizon: int = 200,
) -> Any:
    """Brock-Mirman with ``d`` capital goods, declared from blocks (id ``GrowthD<d>-v1``).

    States ``K_1..K_d`` (per household, one household), shock ``Z``, actions ``x_1..x_d`` in ``(0, 1/d)`` (share
    of output saved in each good), reward ``u = log C``; reference policy ``x_j = alpha beta / d``. Initial
    capital is uniform on ``[K*/2, 3 K*/2]`` per good, ``K*`` the steady state at ``Z = 1``.
    """
    from abm_markets.engine.blocks import expression, use
    from abm_markets.engine.constructor import Action, EconomyDeclaration, Group, Shock, StateVariable

    if d < 1:
        raise ConfigError(f"growth_declaration d = {d} is invalid; expected d >= 1")
    goods = range(1, d + 1)
    k_ss = steady_state_capital(d, alpha, beta)
    starts = start_shares(d, start_share, start_tilt)
    actions = tuple(
        Action(name=f"x_{j}", low=0.0, high=1.0 / d, start=starts[j - 1], doc=f"share of output saved in good {j}")
        for j in goods
    )
    technology = "Z * " + " * ".join(f"K_{j}**(alpha / {d})" for j in goods)
    blocks: list[Any] = [
        *expression("technology", Y=technology),
        *expression("budget", C="(1 - " + " - ".join(f"x_{j}" for j in goods) + ") * Y"),
        use("log_utility", name="utility"),
    ]
    for j in goods:
        blocks.extend(expression(f"invest_{j}", **{f"X_{j}": f"x_{j} * Y"}))
        blocks.append(
            use(
                "accumulate",
                name=f"capital_{j}",
                rename={"K": f"K_{j}", "X": f"X_{j}", "K_next": f"K_{j}_next"},
                params={"delta": 1.0},
            )
        )
    return EconomyDeclaration(
        id=f"GrowthD{d}-v1",
        description=f"Brock-Mirman growth with {d} capital goods, Y = Z prod_j K_j^(alpha/{d}), full depreciation, "
        "log utility; optimal x_j = alpha beta / D (docs/growth.md).",
        parameters={"alpha": alpha, "beta": beta},
        groups=(
            Group(
                name="households",
                actions=actions,
                observes=(*(f"K_{j}" for j in goods), "Z"),
                reward="u",
                doc="the representative household (a planner of its D capital stocks)",
            ),
        ),
        shocks=(Shock(name="Z", values=tuple(tfp_values), persistence=tfp_persistence, doc="TFP"),),
        states=tuple(
            StateVariable(
                name=f"K_{j}", over="households", init=(0.5 * k_ss, 1.5 * k_ss), next=f"K_{j}_next", doc=f"good {j}"
            )
            for j in goods
        ),
        blocks=tuple(blocks),
        reference={f"x_{j}": f"alpha * beta / {d}" for j in goods},
        log=("Y", "C", *(f"K_{j}" for j in goods), *(f"x_{j}" for j in goods)),
        horizon=horizon,
        history=("v1: first version (growth-dimension scenario).",),
    )


def crra_declaration(
    *,
    alpha: float,
    beta: float,
    delta: float,
    phi: float,
    sigma: float,
    tfp_values: tuple[float, ...],
    tfp_persistence: float,
    k_ss: float,
    start_share: float,
) -> Any:
    """One good, CRRA utility, partial depreciation and the investment economy's capital-good cost (id
    ``GrowthCRRA-v1``): ``Y = Z K^alpha``, ``C = (1 - s) Y``, ``X = s Y``, ``I = sqrt(2 X / phi)``,
    ``K' = (1 - delta) K + I``, ``u = (C^(1-sigma) - 1)/(1 - sigma)``; the action is the spending share ``s``."""
    from abm_markets.engine.blocks import expression, use
    from abm_markets.engine.constructor import Action, EconomyDeclaration, Group, Shock, StateVariable

    return EconomyDeclaration(
        id="GrowthCRRA-v1",
        description="One-good growth, CRRA utility, partial depreciation, capital goods cost phi/2 I^2.",
        parameters={"alpha": alpha, "beta": beta, "sigma": sigma, "phi": phi},
        groups=(
            Group(
                name="households",
                actions=(Action(name="s", low=0.0, high=1.0, start=start_share, doc="share of output spent"),),
                observes=("K", "Z"),
                reward="u",
            ),
        ),
        shocks=(Shock(name="Z", values=tuple(tfp_values), persistence=tfp_persistence),),
        states=(StateVariable(name="K", over="households", init=(0.7 * k_ss, 1.3 * k_ss), next="K_next"),),
        blocks=(
            use("cobb_douglas", name="technology"),
            use("spend_share", name="budget"),
            *expression("capital_goods", I="sqrt(2 * X / phi)"),
            use("accumulate", name="capital", rename={"X": "I"}, params={"delta": delta}),
            use("crra_utility", name="utility"),
        ),
        log=("Y", "C", "K", "s"),
        history=("v1: first version (growth-dimension scenario).",),
    )


# ------------------------------------------------------------------------------------------------ tabular Q
def tabular_cells(cfg: GrowthDimensionConfig, d: int) -> int:
    """Cells of the tabular method's Q table at ``D = d``: ``n_z k_bins^d x share_points^d``."""
    return len(cfg.tfp_values) * cfg.k_bins**d * cfg.share_points**d


def growth_grid(cfg: GrowthDimensionConfig, d: int, dtype: torch.dtype = torch.float64) -> TabularGrid:
    """Log-spaced capital bins around the steady state, TFP by its states, shares ``(i + 1/2)/(points D)``."""
    k_ss = steady_state_capital(d, cfg.alpha, cfg.beta)
    lo, hi = math.log(k_ss / cfg.k_range), math.log(k_ss * cfg.k_range)
    k_edges = torch.exp(torch.linspace(lo, hi, cfg.k_bins + 1, dtype=dtype)[1:-1])
    z = sorted(cfg.tfp_values)
    z_edges = torch.tensor([(a + b) / 2 for a, b in itertools.pairwise(z)], dtype=dtype)
    shares = (torch.arange(cfg.share_points, dtype=dtype) + 0.5) / (cfg.share_points * d)
    return TabularGrid(edges=(*(k_edges,) * d, z_edges), actions=(shares,) * d)


# ------------------------------------------------------------------------------------------------ scoring
def policy_error(
    economy: Any, decide: Any, *, n_economies: int, periods: int, seed: int, reference: Any = None
) -> float:
    """Mean relative gap ``|a - a*| / a*`` of the actions of ``decide`` to ``reference``'s (default: the declared
    reference policy) over the states ``reference`` visits: ``n_economies`` paths of ``periods`` periods from the
    declared initial states, averaged over periods, economies and action variables."""
    gen = torch.Generator().manual_seed(seed)
    reference = reference or economy.reference_decide()
    state = economy.initial_state(n_economies, gen)
    total, n = 0.0, 0
    with torch.no_grad():
        for _ in range(periods):
            a, ref = decide(state)["households"], reference(state)["households"]
            total += float(((a.reshape(ref.shape) - ref).abs() / ref.abs()).double().sum())
            n += ref.numel()
            state, _ = economy.step(state, {"households": ref}, gen)
    return total / n


def ce_loss_pct(w: float, w_ref: float, *, beta: float, sigma: float) -> float:
    """Consumption-equivalent loss (%) of discounted utility ``w`` against ``w_ref`` with CRRA ``sigma``: the share
    ``1 - lambda`` of consumption in every period that, taken from the reference, leaves it at ``w``:
    ``1 - exp((1 - beta)(w - w_ref))`` for log utility, ``1 - ((w + A)/(w_ref + A))^(1/(1 - sigma))`` with
    ``A = 1/((1 - sigma)(1 - beta))`` otherwise (infinite-horizon formula; the evaluation's finite horizon adds
    ``beta^T`` terms)."""
    if sigma == 1.0:
        return 100.0 * (1.0 - math.exp((1.0 - beta) * (w - w_ref)))
    a = 1.0 / ((1.0 - sigma) * (1.0 - beta))
    return 100.0 * (1.0 - ((w + a) / (w_ref + a)) ** (1.0 / (1.0 - sigma)))


def _batch_nbytes(obj: Any) -> int:
    """Bytes of the arrays held by a Tianshou buffer / Batch (recursively)."""
    import numpy as np

    if isinstance(obj, np.ndarray):
        return int(obj.nbytes)
    if isinstance(obj, Tensor):
        return obj.numel() * obj.element_size()
    items = getattr(obj, "items", None)
    if callable(items):
        return sum(_batch_nbytes(v) for _, v in items())
    return 0


def _network_mb(trainer: Any) -> tuple[float, float]:
    """(parameters + buffers + Adam's two moments of the trainable parameters, replay buffers), in MB."""
    nbytes, buffers = 0, 0
    for lrn in trainer.learners.values():
        for p in lrn.algorithms.parameters():
            nbytes += p.numel() * p.element_size() * (3 if p.requires_grad else 1)
        for buf in lrn.algorithms.buffers():
            nbytes += buf.numel() * buf.element_size()
    for bufs in (trainer.buffers or {}).values():
        buffers += sum(_batch_nbytes(getattr(b, "_meta", None)) for b in bufs)
    return nbytes / 2**20, buffers / 2**20


# ------------------------------------------------------------------------------------------------ the run
@register(
    "growth-dimension",
    config=GrowthDimensionConfig,
    description="Brock-Mirman with D capital goods: tabular Q vs DQN/PPO/SAC against the closed form as D grows",
    expected_wall_s=722.2,
    expected_wall_source="one default run (2 seeds), 1 thread, 2 cores shared at load 5-7, 2026-11-30",
)
def run(cfg: GrowthDimensionConfig, ctx: RunContext) -> dict[str, Any]:
    import polars as pl

    from abm_markets.engine.constructor import build_economy

    rows: list[dict[str, Any]] = []
    logs: list[pl.DataFrame] = []
    for d in cfg.dims:
        economy = build_economy(
            growth_declaration(
                d,
                alpha=cfg.alpha,
                beta=cfg.beta,
                tfp_values=cfg.tfp_values,
                tfp_persistence=cfg.tfp_persistence,
                start_share=cfg.start_share,
                start_tilt=cfg.start_tilt,
            )
        )
        reference = economy.reference_decide()
        w_ref = _welfare(economy, reference, cfg, ctx.seed)
        logs.append(_log_frame(economy, reference, cfg, ctx.seed, case=f"closed-form D={d}", policy="closed_form"))
        for method in cfg.methods:
            for k in range(cfg.seeds):
                seed = ctx.seed + k
                row = _train_one(cfg, ctx, economy, d, method, seed)
                decide = row.pop("decide")
                if decide is not None:
                    row["policy_error"] = policy_error(
                        economy, decide, n_economies=cfg.eval_economies, periods=cfg.eval_periods, seed=ctx.seed + 101
                    )
                    w = _welfare(economy, decide, cfg, ctx.seed)
                    row["welfare_loss_pct"] = ce_loss_pct(w, w_ref, beta=cfg.beta, sigma=1.0)
                    if k == 0:
                        logs.append(
                            _log_frame(economy, decide, cfg, ctx.seed, case=f"{method} D={d}", policy="learned")
                        )
                rows.append(row)
                ctx.log_metrics(**{k2: v for k2, v in row.items() if k2 != "note"})
                if not row["ran"]:
                    break  # the same reason holds for every seed
    if cfg.crra_case:
        rows.extend(_crra_rows(cfg, ctx))

    table = pl.DataFrame(rows, infer_schema_length=None)
    ctx.write_table("dimension", table)
    if logs and cfg.log_economies:
        ctx.write_log("steps", pl.concat(logs, how="diagonal_relaxed"))
    _plot(ctx, table)
    return {"rows": summary_rows(table), "memory_limit_mb": cfg.memory_limit_mb, "seeds": cfg.seeds}


def summary_rows(table: Any) -> list[dict[str, Any]]:
    """One entry per (method, D): means over seeds of the numeric columns, with their spread (min, max)."""
    import polars as pl

    out = []
    for (method, d), g in table.group_by(["method", "D"], maintain_order=True):
        entry: dict[str, Any] = {"method": method, "D": int(d), "ran": bool(g["ran"].all()), "seeds": g.height}
        for col in ("policy_error", "welfare_loss_pct", "train_wall_s", "memory_mb", "buffer_mb"):
            if col in g.columns:
                x = g[col].drop_nulls().drop_nans() if g.schema[col] in (pl.Float64, pl.Float32) else g[col]
                entry[col] = float(x.mean()) if len(x) else None
                if col == "policy_error" and len(x) > 1:
                    entry["policy_error_min"], entry["policy_error_max"] = float(x.min()), float(x.max())
        entry["note"] = str(g["note"][0])
        out.append(entry)
    return out


def _train_one(cfg: GrowthDimensionConfig, ctx: RunContext, economy: Any, d: int, method: str, seed: int) -> dict:
    row: dict[str, Any] = {"method": method, "D": d, "seed": seed, "ran": False, "decide": None, "note": ""}
    row.update(policy_error=math.nan, welfare_loss_pct=math.nan, train_wall_s=math.nan, buffer_mb=0.0)
    starts = start_shares(d, cfg.start_share, cfg.start_tilt)
    if method == "tabular-q":
        cells = tabular_cells(cfg, d)
        row["memory_mb"] = cells * 8 / 2**20  # Q and visit counts, float32
        row["table_cells"] = float(cells)
        if row["memory_mb"] > cfg.memory_limit_mb:
            row["note"] = f"not run: the Q table needs {row['memory_mb']:.3g} MB > {cfg.memory_limit_mb:g} MB"
            return row
        res = run_tabular_q(
            economy,
            growth_grid(cfg, d),
            start=starts,
            n_economies=cfg.tabular_economies,
            periods=cfg.tabular_periods,
            lr=cfg.tabular_lr,
            lr_power=cfg.tabular_lr_power,
            gamma=cfg.beta,
            eps_decay=cfg.tabular_eps_decay,
            eps_end=cfg.tabular_eps_end,
            episode_len=cfg.episode_len,
            seed=seed,
        )
        table_decide = res.decide()
        row.update(ran=True, train_wall_s=res.train_wall_s, env_steps=float(res.periods * cfg.tabular_economies))
        row["decide"] = lambda state: table_decide(state, economy=economy)
        row["note"] = f"{cfg.k_bins} bins/good, {cfg.share_points} shares/good"
        return row
    if method == "dqn" and d > 1:
        outputs = float(cfg.n_actions) ** d
        row["memory_mb"] = math.nan
        row["table_cells"] = outputs
        row["note"] = (
            f"not run: the project's DQN takes one discrete action per slot; a joint grid would need "
            f"{cfg.n_actions}^{d} = {outputs:.3g} outputs"
        )
        return row
    trainer, wall = _deep(cfg, economy, method, seed)
    mem, buf = _network_mb(trainer)
    row.update(ran=True, train_wall_s=wall, memory_mb=mem, buffer_mb=buf, env_steps=float(trainer.env_steps))
    row["decide"] = trainer.decide()
    return row


def _deep(cfg: GrowthDimensionConfig, economy: Any, method: str, seed: int) -> tuple[Any, float]:
    from abm_markets.learn.train import TrainConfig, Trainer, train

    common: dict[str, Any] = {"groups": ("households",), "gamma": cfg.beta, "action_center": "reference"}
    common["episode_len"] = cfg.episode_len
    if method == "ppo":
        tc = TrainConfig(
            **common,
            algorithm="ppo",
            n_economies=cfg.n_economies,
            rollout_len=cfg.rollout_len,
            iterations=cfg.ppo_iterations,
            checkpoint_every=0,
        )
    else:
        tc = TrainConfig(
            **common,
            algorithm=method,
            n_economies=cfg.sac_economies,
            rollout_len=cfg.rollout_len,
            iterations=cfg.dqn_iterations if method == "dqn" else cfg.sac_iterations,
            minibatch=cfg.minibatch_off_policy,
            updates_per_step=cfg.updates_per_step,
            n_actions=cfg.n_actions,
            buffer_size=50_000,
            checkpoint_every=0,
        )
    trainer = Trainer(economy, tc, seed=seed)
    train(trainer, None, desc=f"{method} {economy.env_id}")
    return trainer, float(trainer.train_wall_s)


def _welfare(economy: Any, decide: Any, cfg: GrowthDimensionConfig, seed: int) -> float:
    from abm_markets.learn.evaluate import evaluate_protocol

    res = evaluate_protocol(
        economy, decide, n_economies=cfg.eval_economies, periods=cfg.eval_periods, seed=seed + 9973, gamma=cfg.beta
    )
    return float(res["discounted_reward"]["households"].mean())


def _log_frame(economy: Any, decide: Any, cfg: GrowthDimensionConfig, seed: int, *, case: str, policy: str) -> Any:
    """``Y``, ``C`` (aggregates) and per good ``K``, ``x`` (agent = good index) of the first evaluation economies."""
    import numpy as np
    import polars as pl

    from abm_markets.learn.evaluate import evaluate_protocol

    res = evaluate_protocol(
        economy,
        decide,
        n_economies=max(cfg.log_economies, 1),
        periods=cfg.eval_periods,
        seed=seed + 9973,
        gamma=cfg.beta,
        log_economies=cfg.log_economies,
    )
    frames = []
    for name, x in res["logged"].items():
        arr = x.numpy().reshape(x.shape[0], x.shape[1])  # [T, E] (one household)
        base, _, good = name.partition("_")
        agent, group = (int(good) - 1, "goods") if good else (-1, "economy")
        t_idx, e_idx = np.meshgrid(np.arange(arr.shape[0]), np.arange(arr.shape[1]), indexing="ij")
        frames.append(
            pl.DataFrame(
                {
                    "t": t_idx.ravel(),
                    "economy": e_idx.ravel(),
                    "agent": np.full(arr.size, agent),
                    "variable": base,
                    "value": arr.ravel().astype(np.float64),
                    "case": case,
                    "policy": policy,
                    "group": group,
                }
            )
        )
    return pl.concat(frames)


def _crra_rows(cfg: GrowthDimensionConfig, ctx: RunContext) -> list[dict[str, Any]]:
    """The one-good CRRA, partial-depreciation economy: the learner against the project's VFI."""
    from abm_markets.engine.config import InvestmentConfig
    from abm_markets.engine.constructor import build_economy
    from abm_markets.solvers.investment import closed_form_steady_state, solve_vfi

    icfg = InvestmentConfig(
        formulation="planner",
        n_households=1,
        n_capital_goods=1,
        alpha=cfg.crra_alpha,
        beta=cfg.beta,
        delta=cfg.crra_delta,
        phi=cfg.crra_phi,
        crra=cfg.crra_sigma,
        tfp_values=cfg.tfp_values,
        tfp_persistence=cfg.tfp_persistence,
    )
    t0 = time.perf_counter()
    sol = solve_vfi(icfg)
    vfi_s = time.perf_counter() - t0
    k_ss = float(closed_form_steady_state(icfg).capital.reshape(-1)[0])
    y_ss = k_ss**cfg.crra_alpha
    s_ss = 0.5 * cfg.crra_phi * (cfg.crra_delta * k_ss) ** 2 / y_ss
    decl = crra_declaration(
        alpha=cfg.crra_alpha,
        beta=cfg.beta,
        delta=cfg.crra_delta,
        phi=cfg.crra_phi,
        sigma=cfg.crra_sigma,
        tfp_values=cfg.tfp_values,
        tfp_persistence=cfg.tfp_persistence,
        k_ss=k_ss,
        start_share=min(0.9, 2.0 * s_ss),
    )
    economy = build_economy(decl)
    vfi_decide = _vfi_decide(economy, sol, cfg)
    rows = [
        {
            "method": "vfi-crra",
            "D": 1,
            "seed": ctx.seed,
            "ran": True,
            "policy_error": 0.0,
            "welfare_loss_pct": 0.0,
            "train_wall_s": vfi_s,
            "memory_mb": (sol.v.numel() + sol.policy.numel() + sol.ev.numel()) * 8 * 2 / 2**20,
            "buffer_mb": 0.0,
            "note": f"reference: solve_vfi, {sol.grid.numel()} knots, residual {sol.bellman_residual:.1e}",
        }
    ]
    w_ref = _welfare(economy, vfi_decide, cfg, ctx.seed)
    for k in range(cfg.seeds):
        trainer, wall = _deep(cfg, economy, cfg.crra_algorithm, ctx.seed + k)
        decide = trainer.decide()
        err = policy_error(
            economy,
            decide,
            n_economies=cfg.eval_economies,
            periods=cfg.eval_periods,
            seed=ctx.seed + 101,
            reference=vfi_decide,
        )
        w = _welfare(economy, decide, cfg, ctx.seed)
        mem, buf = _network_mb(trainer)
        ce = ce_loss_pct(w, w_ref, beta=cfg.beta, sigma=cfg.crra_sigma)
        rows.append(
            {
                "method": f"{cfg.crra_algorithm}-crra",
                "D": 1,
                "seed": ctx.seed + k,
                "ran": True,
                "policy_error": err,
                "welfare_loss_pct": ce,
                "train_wall_s": wall,
                "memory_mb": mem,
                "buffer_mb": buf,
                "env_steps": float(trainer.env_steps),
                "note": f"sigma = {cfg.crra_sigma}, delta = {cfg.crra_delta}: against solve_vfi",
            }
        )
        ctx.log_metrics(**{k2: v for k2, v in rows[-1].items() if k2 != "note"})
    return rows


def _vfi_decide(economy: Any, sol: Any, cfg: GrowthDimensionConfig) -> Any:
    """The VFI policy as the declared economy's action: ``s = phi/2 (K' - (1 - delta) K)^2 / Y``."""
    import numpy as np

    grid = sol.grid.numpy()
    pol = sol.policy.numpy()  # [S, n_k]
    tfp = sol.tfp.numpy()

    def decide(state: Any) -> dict[str, Tensor]:
        k = state.K[:, 0].numpy()
        z = economy.value(state, "Z").numpy()
        zi = np.abs(z[:, None] - tfp[None, :]).argmin(-1)
        kp = np.array([np.interp(k[i], grid, pol[zi[i]]) for i in range(k.shape[0])])
        inv = kp - (1.0 - cfg.crra_delta) * k
        s = 0.5 * cfg.crra_phi * inv**2 / (z * k**cfg.crra_alpha)
        return {"households": torch.as_tensor(s, dtype=economy.dtype).unsqueeze(-1)}

    return decide


def _plot(ctx: RunContext, table: Any) -> None:
    """Policy error, training time and memory against D, one line per method (from ``dimension.parquet``)."""
    import matplotlib.pyplot as plt

    fig = plot_dimension(table)
    ctx.save_figure("dimension", fig)
    plt.close(fig)


def plot_dimension(table: Any, memory_limit_mb: float | None = 2048.0) -> Any:
    """Three panels against D (log scales): policy error, train wall time, memory; not-run rows as open markers
    at the memory they would need."""
    import matplotlib.pyplot as plt
    import polars as pl

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    t = table.filter(~pl.col("method").str.ends_with("-crra"))
    for method, g in t.group_by("method", maintain_order=True):
        name = method[0] if isinstance(method, tuple) else method
        agg = (
            g.group_by("D")
            .agg(
                pl.col("policy_error").mean().alias("err"),
                pl.col("policy_error").min().alias("lo"),
                pl.col("policy_error").max().alias("hi"),
                pl.col("train_wall_s").mean(),
                pl.col("memory_mb").mean(),
                pl.col("ran").all(),
            )
            .sort("D")
        )
        ran = agg.filter(pl.col("ran"))
        line = axes[0].errorbar(
            ran["D"],
            ran["err"],
            yerr=[ran["err"] - ran["lo"], ran["hi"] - ran["err"]],
            marker="o",
            label=name,
            capsize=3,
        )
        color = line[0].get_color()
        axes[1].plot(ran["D"], ran["train_wall_s"], marker="o", color=color, label=name)
        axes[2].plot(ran["D"], ran["memory_mb"], marker="o", color=color, label=name)
        skipped = agg.filter(~pl.col("ran") & pl.col("memory_mb").is_not_nan())
        if skipped.height:
            axes[2].plot(skipped["D"], skipped["memory_mb"], marker="o", mfc="none", ls=":", color=color,
                         label=f"{name}: would need (not run)")  # fmt: skip
    if memory_limit_mb:
        axes[2].axhline(memory_limit_mb, color="grey", lw=0.8, ls="--", label="memory limit")
    labels = ("policy error (mean |x - x*| / x*)", "training wall time (s)", "memory (MB)")
    for ax, lab in zip(axes, labels, strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("capital goods D")
        ax.set_ylabel(lab)
        ax.set_xticks(sorted(set(t["D"].to_list())))
        ax.set_xticklabels([str(x) for x in sorted(set(t["D"].to_list()))])
    axes[0].legend(fontsize=7)
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig
