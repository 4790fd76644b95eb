"""Deterministic steady state of seed 001's two-sector model with labour (section 4).

Households maximise ``sum beta^t [log C - chi L^(1 + 1/eta) / (1 + 1/eta)]``, own the capital and rent it to the
firms at ``r`` (consumption units), work at wage ``w`` and buy investment goods at price ``p``:
``C + p X = r K + w L``, ``K' = (1 - delta) K + X``. Competitive firms produce the consumption good
``Y_c = Z_c K_c^alpha_c L_c^(1 - alpha_c)`` and the investment good ``Y_x = Z_x K_x^alpha_x L_x^(1 - alpha_x)``;
capital and labour move freely between sectors. Quantities are per household (with identical households the
steady state does not depend on their number).

Closed form (derived in docs/two_sector.md): the Euler equation of capital bought at ``p`` and rented at ``r`` gives
``r / p = 1 / beta - 1 + delta``; the investment sector's rental condition gives its capital-labour ratio
``k_x = (alpha_x Z_x / (r / p))^(1 / (1 - alpha_x))``; equal factor-price ratios ``w / r`` in both sectors give
``k_c = k_x alpha_c (1 - alpha_x) / ((1 - alpha_c) alpha_x)``, and with them ``r``, ``w`` and ``p``. Investment
``Y_x = delta K`` fixes the labour split ``L_x / L_c = delta k_c / (y_x - delta k_x)`` (``y_x = Z_x k_x^alpha_x``),
and the labour supply condition ``chi L^(1/eta) C = w`` with ``C = Y_c`` fixes the level.

The tests check it against the planner's steady state found by a root search on the planner's first-order
conditions (marginal products by autograd, no prices; the welfare theorems make the two coincide).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError

__all__ = ["TwoSectorConfig", "TwoSectorSteadyState", "steady_state"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TwoSectorConfig(Config):
    """Seed 001 section 4's calibration."""

    beta: float = param(0.96, "Households' discount factor per period.", gt=0.0, lt=1.0)
    delta: float = param(0.10, "Depreciation rate of capital per period.", gt=0.0, le=1.0)
    alpha_c: float = param(0.30, "Capital share of the consumption sector.", gt=0.0, lt=1.0)
    alpha_x: float = param(0.40, "Capital share of the investment sector.", gt=0.0, lt=1.0)
    chi: float = param(1.0, "Weight of the disutility of labour.", gt=0.0)
    eta: float = param(1.0, "Frisch elasticity of labour supply.", gt=0.0)
    z_c: float = param(1.0, "TFP of the consumption sector.", gt=0.0)
    z_x: float = param(1.0, "TFP of the investment sector.", gt=0.0)


@dataclasses.dataclass(frozen=True)
class TwoSectorSteadyState:
    """Per household: ``capital`` K, ``labour`` L, ``consumption`` C, ``investment`` X = delta K, the sector
    inputs, and the prices ``price_investment`` p, ``rental_rate`` r, ``wage`` w (consumption units)."""

    capital: float
    labour: float
    consumption: float
    investment: float
    capital_consumption_sector: float
    capital_investment_sector: float
    labour_consumption_sector: float
    labour_investment_sector: float
    price_investment: float
    rental_rate: float
    wage: float
    utility: float

    def to_json(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def steady_state(cfg: TwoSectorConfig | None = None, **overrides: Any) -> TwoSectorSteadyState:
    """The deterministic steady state in closed form (see the module docstring)."""
    cfg = cfg or TwoSectorConfig()
    if overrides:
        cfg = dataclasses.replace(cfg, **overrides)
    ac, ax = cfg.alpha_c, cfg.alpha_x
    r_over_p = 1.0 / cfg.beta - 1.0 + cfg.delta
    k_x = (ax * cfg.z_x / r_over_p) ** (1.0 / (1.0 - ax))
    k_c = k_x * ac * (1.0 - ax) / ((1.0 - ac) * ax)
    r = ac * cfg.z_c * k_c ** (ac - 1.0)
    w = (1.0 - ac) * cfg.z_c * k_c**ac
    p = r / r_over_p
    y_c, y_x = cfg.z_c * k_c**ac, cfg.z_x * k_x**ax
    if y_x <= cfg.delta * k_x:
        raise ConfigError("TwoSectorConfig: the investment sector cannot replace depreciation; no steady state")
    split = cfg.delta * k_c / (y_x - cfg.delta * k_x)  # L_x / L_c
    share = 1.0 + split  # L / L_c
    l_c = (w / (cfg.chi * share ** (1.0 / cfg.eta) * y_c)) ** (1.0 / (1.0 + 1.0 / cfg.eta))
    l_x = split * l_c
    labour = l_c + l_x
    cons = y_c * l_c
    capital = k_c * l_c + k_x * l_x
    period_u = math.log(cons) - cfg.chi * labour ** (1 + 1 / cfg.eta) / (1 + 1 / cfg.eta)
    return TwoSectorSteadyState(
        capital=capital,
        labour=labour,
        consumption=cons,
        investment=cfg.delta * capital,
        capital_consumption_sector=k_c * l_c,
        capital_investment_sector=k_x * l_x,
        labour_consumption_sector=l_c,
        labour_investment_sector=l_x,
        price_investment=p,
        rental_rate=r,
        wage=w,
        utility=period_u / (1.0 - cfg.beta),
    )
