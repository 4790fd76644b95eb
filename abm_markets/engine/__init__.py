"""The batched engine: state of torch tensors with a leading batch dimension and pure transitions."""

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.constructor import EconomyDeclaration, build_economy, declaration_from_toml, load_declaration
from abm_markets.engine.economy import AgentGroup, EconomySpec, Good, economy_ids, make_economy
from abm_markets.engine.investment import (
    InvestmentEconomy,
    InvestmentState,
    Outcome,
    shares_from_logits,
    steady_state_capital,
)

__all__ = [
    "AgentGroup",
    "EconomyDeclaration",
    "EconomySpec",
    "Good",
    "InvestmentConfig",
    "InvestmentEconomy",
    "InvestmentState",
    "Outcome",
    "build_economy",
    "declaration_from_toml",
    "economy_ids",
    "load_declaration",
    "make_economy",
    "shares_from_logits",
    "steady_state_capital",
]
