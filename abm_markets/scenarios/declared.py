"""Scenario ``train-economy``: train the learning groups of an economy declared in a TOML file, and score them.

``abm-markets run my_economy.toml`` runs this scenario when the file holds an ``[economy]`` table (a declaration
of :mod:`abm_markets.engine.constructor`); the file's ``[settings]`` are this scenario's settings (the
:class:`~abm_markets.learn.train.TrainConfig` fields plus evaluation settings below) and its ``seed`` the run's
seed. The declaration is built and checked before anything is written, then copied into the run directory
(``economy.toml``), so ``--resume`` rebuilds the same economy even if the original file changed.

What the run does:

1. scores the *initial* policies (the learners before training: a raw output of 0 plays each action's
   declared ``start``) on ``eval_economies`` economies for ``eval_periods`` periods;
2. trains the groups (all agent groups by default) with the project's one trainer (checkpoints, resume);
3. scores the trained greedy policies on the same shocks (common random numbers), and, when the declaration
   has a ``reference`` policy (closed-form decision rules), that policy too.

Summary: ``discounted_reward_<group>_initial``, ``..._trained`` (and ``..._reference``), the mean of every
logged variable under the trained policies (``mean_<variable>``), and, with a reference, the mean absolute gap
between trained and reference actions over the states visited (``action_gap_<group>``). ``steps.parquet``
holds the logged variables of the first ``log_economies`` economies in long format (``t``, ``economy``,
``agent``, ``variable``, ``value``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from abm_markets.config import param
from abm_markets.errors import ConfigError
from abm_markets.learn.train import TrainConfig
from abm_markets.runs import RunContext, atomic_write_toml
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class DeclaredEconomyConfig(TrainConfig):
    """Training and evaluation of a declared economy (the TrainConfig fields, plus the economy and evaluation)."""

    economy: str = param(
        "",
        "TOML file whose [economy] table declares the economy (set by `abm-markets run FILE.toml`; a relative "
        "path in a run directory's config.toml is relative to the run directory).",
    )
    groups: tuple[str, ...] = param((), "Learning groups (names of the economy's groups); empty = every agent group.")
    action_center: str = param(
        "reference",
        "reference: a raw policy output of 0 plays each action's declared start; none: the middle of its bounds.",
        choices=("reference", "none"),
    )
    iterations: int = param(40, "Training iterations.", ge=0)
    n_economies: int = param(256, "Economies B stepped in parallel during training.", ge=1)
    k_spread: float = param(0.3, "Training states: declared initial states scaled by 1 +- spread.", ge=0.0, lt=1.0)
    eval_economies: int = param(256, "Economies of the evaluation.", ge=1)
    eval_periods: int = param(200, "Periods of the evaluation.", ge=1)
    log_economies: int = param(4, "Economies whose logged variables are written to steps.parquet.", ge=0)

    def validate(self) -> None:
        if len(set(self.groups)) != len(self.groups):
            raise ConfigError(f"{type(self).__name__}.groups = {self.groups!r} names a group twice")

    def check(self) -> None:
        """Build the declared economy (rejecting a bad declaration in one line) before anything is written."""
        if not self.economy:
            raise ConfigError(
                "train-economy needs an economy: run a TOML file with an [economy] table (abm-markets run FILE.toml)"
            )
        economy = build_declared(self.economy)
        dataclasses.replace(self, groups=self.groups or default_groups(economy)).check_economy(economy)
        self._check_memory_of(economy)

    def _check_memory_of(self, economy: Any) -> None:
        """Rollout (periods x economies x slots x observation, float32, x8 for the learners' copies) and the
        evaluation's logs, against the memory available (one line, before anything is written)."""
        from abm_markets.config import available_memory, format_bytes

        slots = sum(g.count for g in economy.groups)
        obs = max((economy.obs_dim(g.name) for g in economy.groups), default=1)
        n_vars = max(len(economy.spec.logged), 1)
        rollout = self.n_economies * self.rollout_len * slots * (2 * obs + 8) * 4 * 8
        evaluation = self.eval_economies * slots * n_vars * 8 * 4 + self.log_economies * self.eval_periods * n_vars * 8
        need, have = rollout + evaluation, available_memory()
        if have is not None and need > have:
            raise ConfigError(
                f"train-economy on {economy.env_id} needs about {format_bytes(need)} of memory but "
                f"{format_bytes(have)} is available (MemAvailable); expected smaller settings: lower n_economies "
                f"({self.n_economies}), rollout_len ({self.rollout_len}) or eval_economies ({self.eval_economies})"
            )

    def prepare_run(self, out: Path) -> DeclaredEconomyConfig:
        """Copy the declaration into the run directory; the run reads ``economy.toml`` from there."""
        from abm_markets.engine.constructor import read_economy_table

        atomic_write_toml(out / "economy.toml", {"economy": read_economy_table(self.economy)})
        return dataclasses.replace(self, economy="economy.toml")


def build_declared(path: str, **kwargs: Any) -> Any:
    """Build (and check) the economy declared in ``path``."""
    from abm_markets.engine.constructor import build_economy, load_declaration

    return build_economy(load_declaration(path), **kwargs)


def default_groups(economy: Any) -> tuple[str, ...]:
    return tuple(g.name for g in economy.agent_groups())


@register(
    "train-economy",
    config=DeclaredEconomyConfig,
    description="Train and score the learning groups of an economy declared in a TOML file ([economy] table)",
    expected_wall_s=13.3,
    expected_wall_source="one run of scenarios/brock-mirman.toml, 1 thread, 2026-11-29",
)
def run(cfg: DeclaredEconomyConfig, ctx: RunContext) -> dict[str, Any]:
    import numpy as np
    import polars as pl

    from abm_markets.learn.evaluate import evaluate_protocol
    from abm_markets.learn.train import Trainer, train

    path = Path(cfg.economy)
    if not path.is_absolute():
        path = ctx.out / path
    economy = build_declared(str(path), device=ctx.device)
    cfg = dataclasses.replace(cfg, groups=cfg.groups or default_groups(economy))
    trainer = Trainer(economy, cfg, seed=ctx.seed)

    def score(decide: Any, log: int = 0) -> dict[str, Any]:
        return evaluate_protocol(
            economy,
            decide,
            n_economies=cfg.eval_economies,
            periods=cfg.eval_periods,
            seed=ctx.seed + 9973,
            gamma=cfg.gamma,
            log_economies=log,
        )

    summary: dict[str, Any] = {"economy": economy.env_id, "groups": list(cfg.groups)}
    if not (ctx.resume and ctx.latest_checkpoint() is not None):
        initial = score(trainer.decide())
        for g, r in initial["discounted_reward"].items():
            summary[f"discounted_reward_{g}_initial"] = float(r.mean())
        ctx.write_json("initial_scores", {k: v for k, v in summary.items() if k.endswith("_initial")})
    else:
        prev = ctx.path("initial_scores.json")
        if prev.exists():
            import json

            summary.update(json.loads(prev.read_text()))
    train(trainer, ctx, desc=f"train {economy.env_id}")
    trained = score(trainer.decide(), cfg.log_economies)
    for g, r in trained["discounted_reward"].items():
        summary[f"discounted_reward_{g}_trained"] = float(r.mean())
    summary.update({f"mean_{k}": v for k, v in trained["logged_mean"].items()})
    reference = getattr(economy, "reference_decide", None)
    if callable(reference):
        ref = score(reference())
        for g, r in ref["discounted_reward"].items():
            summary[f"discounted_reward_{g}_reference"] = float(r.mean())
        gaps = _action_gaps(economy, trainer.decide(), reference(), cfg, ctx.seed)
        summary.update({f"action_gap_{g}": v for g, v in gaps.items()})
    summary["train_env_steps"] = trainer.env_steps
    summary["train_wall_s"] = trainer.train_wall_s

    # steps.parquet: logged variables of the first economies, long format (docs/logs.md)
    over = {v.name: v.over for v in economy.spec.logged}
    frames = []
    for name, x in trained["logged"].items():
        arr = x.numpy()  # [T, E] or [T, E, n]
        agents = np.arange(arr.shape[2]) if arr.ndim == 3 else np.array([-1])  # economy-wide: agent -1
        t_idx, e_idx, a_idx = np.meshgrid(np.arange(arr.shape[0]), np.arange(arr.shape[1]), agents, indexing="ij")
        frames.append(
            pl.DataFrame(
                {
                    "t": t_idx.ravel(),
                    "economy": e_idx.ravel(),
                    "agent": a_idx.ravel(),
                    "group": over.get(name, "economy"),
                    "variable": name,
                    "value": arr.reshape(-1).astype(np.float64),
                }
            )
        )
    if frames:
        ctx.write_log("steps", pl.concat(frames))
    _plot(ctx, economy, summary)
    return summary


def _action_gaps(economy: Any, learned: Any, reference: Any, cfg: DeclaredEconomyConfig, seed: int) -> dict[str, float]:
    """Mean absolute gap between learned and reference actions over states visited under the reference policy."""
    import torch

    gen = torch.Generator(device=economy.device).manual_seed(seed + 4049)
    state = economy.initial_state(cfg.eval_economies, gen)
    gaps: dict[str, list[float]] = {}
    key_to_group = {g.acts_for: g.name for g in economy.agent_groups()}
    with torch.no_grad():
        for _ in range(cfg.eval_periods):
            a, b = learned(state), reference(state)
            for key, x in a.items():
                if key in b:
                    gaps.setdefault(key_to_group.get(key, key), []).append(float((x - b[key]).abs().double().mean()))
            state, _ = economy.step(state, b, gen)
    return {g: float(sum(v) / len(v)) for g, v in gaps.items()}


def _plot(ctx: RunContext, economy: Any, summary: dict[str, Any]) -> None:
    import matplotlib.pyplot as plt
    import polars as pl

    if not ctx.metrics:
        return
    m = pl.DataFrame(ctx.metrics, infer_schema_length=None)
    cols = [c for c in m.columns if c.startswith("mean_reward_")]
    if not cols:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for c in cols:
        ax.plot(m["env_steps"], m[c], label=c.removeprefix("mean_reward_"))
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean reward per period (rollout)")
    ax.set_title(f"{economy.env_id}: training")
    ax.legend()
    fig.tight_layout()
    ctx.save_figure("training", fig)
    plt.close(fig)
