"""Structural reinforcement learning (SRL) for heterogeneous-agent macro models.

* :mod:`abm_markets.srl.solver` — the generic solver and the model protocol
  (:class:`~abm_markets.srl.solver.SRLModel`, :func:`~abm_markets.srl.solver.solve`).
* :mod:`abm_markets.srl.grids` — discretisation, lottery push-forward, clearing on a price grid.
* :mod:`abm_markets.srl.huggett` — Huggett economies (partial equilibrium, aggregate risk, lagged price).

See ``docs/srl.md``.
"""

from abm_markets.srl import solver as _solver
from abm_markets.srl.solver import *  # noqa: F403 - the package re-exports the solver's public API

__all__ = list(_solver.__all__)
