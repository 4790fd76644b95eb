"""PettingZoo and Gymnasium front ends over any protocol economy (:mod:`abm_markets.engine.protocol`).

* :class:`EconomyParallelEnv` (PettingZoo): every agent of a protocol economy;
* :class:`EconomyEnv` (Gymnasium): one decision slot, everybody else's actions fixed;
* :class:`InvestmentParallelEnv`, :func:`parallel_env`, :class:`InvestmentPlannerEnv`: the investment economy's
  envs, built from an ``InvestmentConfig``.

Importing this package registers ``abm_markets/InvestmentPlanner-v1`` with Gymnasium:
``gymnasium.make("abm_markets/InvestmentPlanner-v1")``.
"""

import gymnasium

from abm_markets.envs.gym import ENV_ID, EconomyEnv, InvestmentPlannerEnv, default_planner_config
from abm_markets.envs.parallel import EconomyParallelEnv, InvestmentParallelEnv, parallel_env

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="abm_markets.envs.gym:InvestmentPlannerEnv")

__all__ = [
    "ENV_ID",
    "EconomyEnv",
    "EconomyParallelEnv",
    "InvestmentParallelEnv",
    "InvestmentPlannerEnv",
    "default_planner_config",
    "parallel_env",
]
