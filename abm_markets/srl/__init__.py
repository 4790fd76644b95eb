"""Structural reinforcement learning (SRL) for heterogeneous-agent macro models.

* :mod:`abm_markets.srl.solver` — the generic solver and the model protocol
  (:class:`~abm_markets.srl.solver.SRLModel`, :func:`~abm_markets.srl.solver.solve`).
* :mod:`abm_markets.srl.grids` — discretisation, lottery push-forward, clearing on a price grid.
* :mod:`abm_markets.srl.huggett` — Huggett economies (partial equilibrium, aggregate risk, lagged price).

See ``docs/srl.md``.
"""

from abm_markets.srl.solver import (
    PeriodInput,
    PeriodOutput,
    Rollout,
    SRLConfig,
    SRLModel,
    SRLResult,
    describe,
    interp_axis1,
    policy_gradient,
    rollout,
    simulate,
    simulate_markov,
    solve,
    take_agg,
)

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
