"""abm-markets: agent-based market simulator with learning agents.

One batched engine (:mod:`abm_markets.engine`), pluggable markets
(:mod:`abm_markets.markets`), three front ends (the engine itself, a Mesa model
in :mod:`abm_markets.model`, PettingZoo/Gymnasium environments in
:mod:`abm_markets.envs`), reference solvers (:mod:`abm_markets.solvers`) and
run directories (:mod:`abm_markets.runs`).
"""

__version__ = "0.1.0"
