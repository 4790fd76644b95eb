"""Mesa agents of the investment economy and the decision rules that drive them."""

from abm_markets.agents.firm import FIRM_OBSERVATION, CapitalFirm, firm_observation
from abm_markets.agents.household import Household
from abm_markets.agents.rules import (
    CompetitiveSupply,
    ConstantAction,
    DecisionRule,
    FixedShare,
    PostedMarkup,
    RandomShare,
    SteadyStateShare,
    firm_observation_scales,
    steady_state_share,
)

__all__ = [
    "FIRM_OBSERVATION",
    "CapitalFirm",
    "CompetitiveSupply",
    "ConstantAction",
    "DecisionRule",
    "FixedShare",
    "Household",
    "PostedMarkup",
    "RandomShare",
    "SteadyStateShare",
    "firm_observation",
    "firm_observation_scales",
    "steady_state_share",
]
