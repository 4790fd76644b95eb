"""Learning agents on the batched engine.

* :mod:`abm_markets.learn.glue` — agent groups, per-group Tianshou algorithms (PPO, SAC, DQN), parameter
  sharing, centralised critic, batched collection.
* :mod:`abm_markets.learn.train` — ``TrainConfig``, ``Trainer``, ``train`` (metrics, checkpoints, resume).
* :mod:`abm_markets.learn.experiments` — train a planner and compare it with DP.
* :mod:`abm_markets.learn.sources` — interchangeable decision sources (trained policy, rule, DP, random, mixed).
* :mod:`abm_markets.learn.evaluate` — welfare on a fixed shock path, consumption-equivalent gap, policy error.
* :mod:`abm_markets.learn.tabular` — vectorised tabular Q-learning (collusion).

Import the submodules directly; this package does not import Tianshou at import time.
"""
