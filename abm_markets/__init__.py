"""abm-markets: agent-based market simulator with learning agents.

One batched engine (:mod:`abm_markets.engine`), pluggable markets
(:mod:`abm_markets.markets`), three front ends (the engine itself, a Mesa model
in :mod:`abm_markets.model`, PettingZoo/Gymnasium environments in
:mod:`abm_markets.envs`), reference solvers (:mod:`abm_markets.solvers`) and
run directories (:mod:`abm_markets.runs`).
"""

__version__ = "0.1.0"


def _register_gymnasium_ids() -> None:
    """Register ``abm_markets/InvestmentPlanner-v1`` with Gymnasium when it is installed (a string entry point: no
    torch import until the env is made), so ``import abm_markets`` is enough for ``gymnasium.make``."""
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - gymnasium is a dependency
        return
    env_id = "abm_markets/InvestmentPlanner-v1"
    if env_id not in gymnasium.registry:
        gymnasium.register(id=env_id, entry_point="abm_markets.envs.gym:InvestmentPlannerEnv")


_register_gymnasium_ids()
