"""PettingZoo and Gymnasium front ends over the batched engine.

Importing this package registers ``abm_markets/InvestmentPlanner-v1`` with Gymnasium:
``gymnasium.make("abm_markets/InvestmentPlanner-v1")``.
"""

import gymnasium

from abm_markets.envs.gym import ENV_ID, InvestmentPlannerEnv, default_planner_config
from abm_markets.envs.parallel import InvestmentParallelEnv, parallel_env

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="abm_markets.envs.gym:InvestmentPlannerEnv")

__all__ = ["ENV_ID", "InvestmentParallelEnv", "InvestmentPlannerEnv", "default_planner_config", "parallel_env"]
