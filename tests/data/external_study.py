"""A study defined outside the package: an economy and a scenario registered from a user's own file.

Used by ``tests/test_external.py`` (``--import tests/data/external_study.py``, and as an entry point). The
economy ``UserGrowth-v1`` is declared here from blocks (a growth model with CRRA utility and partial
depreciation, one household per economy); the scenario trains its household with PPO for a few iterations
with checkpoints, so ``--resume`` has something to continue.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from abm_markets.config import Config, param
from abm_markets.engine.blocks import use
from abm_markets.engine.constructor import Action, EconomyDeclaration, Group, Shock, StateVariable, build_economy
from abm_markets.scenarios import register

USER_GROWTH = EconomyDeclaration(
    id="UserGrowth-v1",
    parameters={"alpha": 0.33, "delta": 0.1, "sigma": 2.0},
    groups=(
        Group(name="households", actions=(Action(name="s", low=0.0, high=1.0, start=0.5),), observes=("K", "Z"),
              reward="u"),
    ),
    shocks=(Shock(name="Z", values=(0.95, 1.05), persistence=0.9),),
    states=(StateVariable(name="K", over="households", init=(2.0, 4.0), next="K_next"),),
    blocks=(use("cobb_douglas"), use("spend_share"), use("accumulate"), use("crra_utility")),
)  # fmt: skip
build_economy(USER_GROWTH)  # registers UserGrowth-v1 for make_economy


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudyConfig(Config):
    """A user's study: a PPO household in the user's own growth economy."""

    iterations: int = param(2, "Training iterations.", ge=1)
    n_economies: int = param(4, "Parallel duopolies.", ge=1)


@register("my-external-study", config=StudyConfig, description="A scenario defined outside abm_markets")
def run(cfg: StudyConfig, ctx: Any) -> dict[str, Any]:
    from abm_markets.engine import make_economy
    from abm_markets.learn.train import TrainConfig, Trainer, train

    eco = make_economy("UserGrowth-v1", None, device=ctx.device)
    tcfg = TrainConfig(
        groups=("households",),
        n_economies=cfg.n_economies,
        rollout_len=8,
        iterations=cfg.iterations,
        minibatch=32,
        checkpoint_every=1,
    )
    trainer = Trainer(eco, tcfg, seed=ctx.seed)
    rows = train(trainer, ctx)
    return {"iterations_done": trainer.iteration_done, "rows_this_call": len(rows)}
