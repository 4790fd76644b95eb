"""A study defined outside the package: a scenario registered from a user's own file.

Used by ``tests/test_external.py`` (``--import tests/data/external_study.py``, and as an entry point). The
scenario trains PPO firms of the logit duopoly for a few iterations with checkpoints, so ``--resume`` has
something to continue.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from abm_markets.config import Config, param
from abm_markets.scenarios import register


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig(Config):
    """A user's study: PPO firms in the logit duopoly."""

    iterations: int = param(2, "Training iterations.", ge=1)
    n_economies: int = param(4, "Parallel duopolies.", ge=1)


@register("my-external-study", config=StudyConfig, description="A scenario defined outside abm_markets")
def run(cfg: StudyConfig, ctx: Any) -> dict[str, Any]:
    from abm_markets.engine import make_economy
    from abm_markets.engine.pricing import LogitDuopolyConfig
    from abm_markets.learn.train import TrainConfig, Trainer, train

    eco = make_economy("LogitDuopoly-v1", LogitDuopolyConfig(action="continuous"), device=ctx.device)
    tcfg = TrainConfig(
        groups=("firms",),
        sharing="per_agent",
        n_economies=cfg.n_economies,
        rollout_len=8,
        iterations=cfg.iterations,
        minibatch=32,
        checkpoint_every=1,
    )
    trainer = Trainer(eco, tcfg, seed=ctx.seed)
    rows = train(trainer, ctx)
    return {"iterations_done": trainer.iteration_done, "rows_this_call": len(rows)}
