"""Declarations of the investment economy that need no engine: steady state, decision groups, logged variables.

Kept apart from :mod:`abm_markets.engine.investment` so that the investment config
can check an information structure against the economy's groups when it is built, without importing the engine.
Functions take the config (``cfg``, an ``InvestmentConfig``) and read its fields only.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from abm_markets.engine.protocol import Block, DecisionGroup, LoggedVariable

__all__ = [
    "FIRM_BLOCK_DOCS",
    "HOUSEHOLD_BLOCK_DOCS",
    "LOGGED",
    "decision_groups",
    "firm_scales",
    "steady_state_capital",
    "steady_state_spending_share",
]


def steady_state_capital(cfg: Any) -> float:
    """Deterministic steady-state capital per household and good (Z = 1).

    ``K^(2 - alpha) = alpha beta M / (N^c N^h phi delta (1 - beta (1 - delta)))`` for
    both formulations (M firms per good in the market; the planner has M = 1). Derived
    in ``docs/steady_state.md`` and checked against the numerical solver in the tests.
    """
    m = cfg.firms_per_good if cfg.formulation == "market" else 1
    num = cfg.alpha * cfg.beta * m
    den = cfg.n_capital_goods * cfg.n_households * cfg.phi * cfg.delta * (1.0 - cfg.beta * (1.0 - cfg.delta))
    return float((num / den) ** (1.0 / (2.0 - cfg.alpha)))


def steady_state_spending_share(cfg: Any) -> float:
    """Total spending share ``sum_j s_j`` of output in the deterministic steady state (``Z = 1``).

    Planner: ``x_ij = phi/2 I_j I_ij`` with ``I_j = N^h delta K`` and ``I_ij = delta K``; with
    ``K^(2-alpha) = alpha beta / (N^c N^h phi delta (1 - beta(1-delta)))`` this gives
    ``sum_j s_j = alpha beta delta / (2 (1 - beta (1 - delta)))`` for every ``N^h, N^c``. Market (competitive):
    households pay ``p = beta MPK / (1 - beta (1 - delta))`` per unit and buy ``delta K``, so the share is
    ``alpha beta delta / (1 - beta (1 - delta))``, twice the planner's, for every ``N^h, N^c`` and ``M`` (the
    ``M`` firms per good change the price and the capital, not the share).
    """
    s = cfg.alpha * cfg.beta * cfg.delta / (2.0 * (1.0 - cfg.beta * (1.0 - cfg.delta)))
    if cfg.formulation == "market":
        s *= 2.0
    return s


def firm_scales(cfg: Any) -> tuple[float, float, float]:
    """Steady-state quantity, price and revenue of one firm ``(q_ss, p_ss, S_ss)``.

    ``q_ss = N^h delta K / M`` units per firm at the competitive price ``p_ss = phi q_ss``; ``S_ss = p_ss q_ss``.
    """
    m = cfg.firms_per_good if cfg.formulation == "market" else 1
    q = cfg.n_households * cfg.delta * steady_state_capital(cfg) / m
    return q, cfg.phi * q, cfg.phi * q * q


HOUSEHOLD_BLOCK_DOCS = {
    "own_capital": "own capital K_ij / K_ss, per good",
    "own_tfp": "own TFP Z_i",
    "agg_capital": "mean capital of each good / K_ss",
    "agg_tfp": "mean TFP",
    "all_capital": "every household's capital / K_ss",
    "all_tfp": "every household's TFP",
    "prices": "last period's price of each good / p_ss",
    "time": "t / horizon",
    "nbr_capital": "mean capital of each good among the households sharing a seller of it on the network / K_ss "
    "(bilateral market)",
}
FIRM_BLOCK_DOCS = {
    "own_price": "its good's last average price / p_ss",
    "own_demand": "spending buyers wanted to place with it last period / S_ss",
    "good_capital": "mean capital of its good / K_ss",
    "agg_tfp": "mean TFP",
}


def decision_groups(cfg: Any) -> tuple[DecisionGroup, ...]:
    """The decision groups of the investment economy (declared from the config alone).

    * ``households``: ``N^h`` slots, action ``[J]`` spending shares (``Box(0, 1)``) or investment requests
      (``Box(0, K_ss)``), raw policy output ``[J]``, reward ``u(C_i)`` (minus the budget penalty);
    * ``planner``: one slot acting for every household (``units = N^h``), observing their own blocks,
      reward ``sum_i u(C_i)``; not a front-end agent;
    * ``firms`` (market formulation with ``firms = "decision"``): ``N^c M`` slots, action (posted price,
      capacity) in ``Box(0, (10 p_ss, 10 q_ss))``, raw output ``[2]``, reward profit.
    """
    h, j = cfg.shape
    k_ss = steady_state_capital(cfg)
    sizes = {
        "own_capital": j,
        "own_tfp": 1,
        "agg_capital": j,
        "agg_tfp": 1,
        "all_capital": h * j,
        "all_tfp": h,
        "prices": j,
        "time": 1,
    }
    if cfg.formulation == "market" and cfg.market == "bilateral":
        sizes["nbr_capital"] = j
    blocks = tuple(Block(n, sizes[n], 0.0, float("inf"), HOUSEHOLD_BLOCK_DOCS[n]) for n in sizes)
    if cfg.action == "shares":
        h_act = gymnasium.spaces.Box(0.0, 1.0, (j,), np.float32)
    else:
        h_act = gymnasium.spaces.Box(0.0, float(k_ss), (j,), np.float32)
    reward = "u(C_i)" + (" - penalty * overshoot" if cfg.budget == "penalty" else "")
    own = tuple(b for b in cfg.household_obs if b in ("own_capital", "own_tfp")) or ("own_capital", "own_tfp")
    groups = [
        DecisionGroup("households", h, "households", blocks, cfg.household_obs, h_act, j, reward=reward),
        DecisionGroup(
            "planner",
            1,
            "households",
            tuple(b for b in blocks if b.name in ("own_capital", "own_tfp")),
            own,
            h_act,
            h * j,
            units=h,
            reward="sum_i u(C_i)",
            agent=False,
        ),
    ]
    if cfg.formulation == "market" and cfg.firms == "decision":
        q_ss, p_ss, _ = firm_scales(cfg)
        f_act = gymnasium.spaces.Box(
            np.zeros(2, np.float32), np.array([10.0 * p_ss, 10.0 * q_ss], np.float32), dtype=np.float32
        )
        f_blocks = tuple(Block(n, 1, 0.0, float("inf"), d) for n, d in FIRM_BLOCK_DOCS.items())
        groups.append(
            DecisionGroup(
                "firms",
                j * cfg.firms_per_good,
                "firms",
                f_blocks,
                tuple(FIRM_BLOCK_DOCS),
                f_act,
                2,
                reward="p * sold - phi/2 * produced^2",
            )
        )
    return tuple(groups)


LOGGED = (
    LoggedVariable("capital", "households", "capital carried into the next period, summed over goods"),
    LoggedVariable("tfp", "households", "TFP Z_i of the period"),
    LoggedVariable("output", "households", "output Y_i"),
    LoggedVariable("consumption", "households", "consumption C_i"),
    LoggedVariable("investment", "households", "units of capital goods received, summed over goods"),
    LoggedVariable("spending", "households", "spending on capital goods, summed over goods"),
    LoggedVariable("utility", "households", "u(C_i)"),
    LoggedVariable("price", "good", "average price of each good (planner: shadow price phi I_j)"),
    LoggedVariable("sold", "good", "units sold of each good"),
    LoggedVariable("produced", "good", "units produced of each good"),
    LoggedVariable("profit", "good", "firms' profit per good"),
    LoggedVariable("welfare", "economy", "sum_i u(C_i)"),
)
