"""PettingZoo and Gymnasium front ends over any protocol economy (:mod:`abm_markets.engine.protocol`).

* :class:`EconomyParallelEnv` (PettingZoo): every agent of a protocol economy;
* :class:`EconomyEnv` (Gymnasium): one decision slot, everybody else's actions fixed;
* :class:`InvestmentParallelEnv`, :func:`parallel_env`, :class:`InvestmentPlannerEnv`: the investment economy's
  envs, built from an ``InvestmentConfig`` and/or its fields as keywords;
* :class:`CenteredActions`, :func:`decide_from_policy`: the project trainer's action parametrisation as a
  Gymnasium wrapper, and a bridge from another library's policy to the project's evaluators.

Importing ``abm_markets`` (so also this package) registers ``abm_markets/InvestmentPlanner-v1`` with Gymnasium:
``gymnasium.make("abm_markets/InvestmentPlanner-v1", beta=0.95)``; without the import,
``gymnasium.make("abm_markets.envs:abm_markets/InvestmentPlanner-v1")`` imports it. Render modes ``None``,
``"ansi"``, ``"rgb_array"``; ``normalize_obs=True`` bounds observations in ``[0, 1]``. See ``docs/interop.md``.
"""

from abm_markets.envs.gym import (
    ENV_ID,
    CenteredActions,
    EconomyEnv,
    InvestmentPlannerEnv,
    decide_from_policy,
    default_planner_config,
)
from abm_markets.envs.parallel import EconomyParallelEnv, InvestmentParallelEnv, parallel_env

__all__ = [
    "ENV_ID",
    "CenteredActions",
    "EconomyEnv",
    "EconomyParallelEnv",
    "InvestmentParallelEnv",
    "InvestmentPlannerEnv",
    "decide_from_policy",
    "default_planner_config",
    "parallel_env",
]
