"""Learning agents on the batched engine.

* :mod:`abm_markets.learn.glue` — agent groups, per-group Tianshou algorithms (PPO, SAC, DQN), parameter
  sharing, centralised critic, batched collection.
* :mod:`abm_markets.learn.train` — :class:`~abm_markets.learn.train.TrainConfig`, :class:`~abm_markets.learn.train.Trainer`,
  :func:`~abm_markets.learn.train.train` (metrics, checkpoints, resume).
* :mod:`abm_markets.learn.sources` — interchangeable decision sources (trained policy, rule, DP, random, mixed).
* :mod:`abm_markets.learn.evaluate` — welfare on a fixed shock path, consumption-equivalent gap, policy error.
* :mod:`abm_markets.learn.tabular` — vectorised tabular Q-learning (collusion).

Import the submodules directly; this package does not import Tianshou at import time.
"""
