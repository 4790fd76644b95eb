"""The household of the investment economy as a Mesa agent.

A :class:`Household` decides through its :class:`~abm_markets.agents.rules.DecisionRule`
when the Mesa model activates it. In the model's ``engine`` mode that is all it does: the
batched engine computes the period and the household's attributes are refreshed from the
engine's state. In ``agents`` mode the household also runs its own economics in plain
Python floats (an independent second implementation of the engine's equations, used to
check the engine and as the benchmark's baseline):

* output ``Y_i = Z_i prod_j K_ij^(alpha / N^c)``;
* orders from the action (:meth:`orders`): shares ``s = clip(a, 0, 1)`` scaled onto the
  simplex, spending cap ``b_j = s_j Y``; or quantities ``q_j = max(a_j, 0)``;
* after trade (:meth:`settle`): ``C = max(Y - sum_j paid_j, 0)``, ``u(C)`` CRRA,
  ``K'_j = max((1 - delta) K_j + I_j, 1e-12)``, TFP moves along its Markov chain.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np

if TYPE_CHECKING:
    from abm_markets.agents.rules import DecisionRule


def crra(c: float, sigma: float, floor: float) -> float:
    """CRRA utility of consumption ``c`` evaluated at ``max(c, floor)`` (``log`` for ``sigma = 1``)."""
    c = max(c, floor)
    if math.isclose(sigma, 1.0):
        return math.log(c)
    return (c ** (1.0 - sigma) - 1.0) / (1.0 - sigma)


def markov_next(cdf_row: list[float], u: float) -> int:
    """Next state of a finite chain by inverse CDF: the number of CDF entries ``<= u``."""
    return min(sum(1 for c in cdf_row if u >= c), len(cdf_row) - 1)


class Household(mesa.Agent):
    """One household.

    Attributes (refreshed every period; flows refer to the period just stepped):
        index: Position ``i`` in the engine's household dimension.
        rule: Where the action comes from.
        action: Last action ``[J]`` (NumPy).
        capital: ``K_i`` after the period, list of ``J`` floats.
        tfp: ``Z_i`` of the period.
        output, consumption, utility, reward, overshoot: Scalars of the period.
        spending, investment: Lists of ``J`` floats (paid for / received of each good).
        z_idx: Idiosyncratic TFP state index (agents mode keeps it here).
    """

    def __init__(self, model: mesa.Model, index: int, rule: DecisionRule, capital: list[float], z_idx: int) -> None:
        super().__init__(model)
        self.index = index
        self.rule = rule
        n_goods = len(capital)
        self.capital = list(capital)
        self.z_idx = int(z_idx)
        self.action = np.zeros(n_goods)
        self.tfp = math.nan
        self.output = math.nan
        self.consumption = math.nan
        self.utility = math.nan
        self.reward = math.nan
        self.overshoot = 0.0
        self.spending = [0.0] * n_goods
        self.investment = [0.0] * n_goods
        # trade-time scratch (agents mode)
        self.budget = [0.0] * n_goods
        self.quantity = [math.inf] * n_goods
        self.plan_total = 0.0

    @property
    def total_capital(self) -> float:
        """``sum_j K_ij``."""
        return sum(self.capital)

    @property
    def total_investment(self) -> float:
        """``sum_j I_ij`` of the period."""
        return sum(self.investment)

    @property
    def total_spending(self) -> float:
        """``sum_j x_ij`` of the period."""
        return sum(self.spending)

    # ------------------------------------------------------------ decisions
    def decide(self) -> None:
        """Choose this period's action from the rule (or the model's override) and join the arrival queue."""
        model = self.model
        override = model.action_override
        if override is not None:
            self.action = np.asarray(override[self.index], dtype=np.float64)
        else:
            self.action = np.asarray(self.rule.act(model.household_observation(self)), dtype=np.float64)
        model.arrivals.append(self)

    # --------------------------------------------------- agents-mode economics
    def produce(self, agg_tfp: float) -> float:
        """``Y_i = Z_i prod_j K_ij^(alpha / N^c)`` with ``Z_i = z_i A``."""
        cfg = self.model.cfg
        self.tfp = cfg.tfp_values[self.z_idx] * agg_tfp
        n = len(self.capital)
        self.output = self.tfp * math.exp((cfg.alpha / n) * sum(math.log(k) for k in self.capital))
        return self.output

    def orders(self) -> None:
        """Turn the action into orders: spending caps ``budget`` and quantity caps ``quantity`` per good.

        Shares: ``s = clip(a, 0, 1)``, divided by ``max(sum s, 1)``; ``budget = s Y``, ``quantity = inf``.
        Quantities (market): ``q = max(a, 0)``; ``budget = q / sum q * Y``. Planner quantities are
        handled by the pool (they need the pooled total), see :meth:`CapitalFirm.clear_pool`.
        """
        cfg = self.model.cfg
        a = [float(x) for x in self.action]
        if cfg.action == "shares":
            s = [min(max(x, 0.0), 1.0) for x in a]
            total = sum(s)
            self.overshoot = max(total - 1.0, 0.0)
            scale = max(total, 1.0)
            self.budget = [x / scale * self.output for x in s]
            self.quantity = [math.inf] * len(s)
            self.plan_total = total * self.output
        else:
            q = [max(x, 0.0) for x in a]
            total = sum(q)
            self.quantity = q
            self.budget = [(x / total if total > 0 else 0.0) * self.output for x in q]

    def settle(self, u_z: float, agg_tfp: float) -> None:
        """Consume, enjoy, accumulate capital and draw next period's TFP state (agents mode)."""
        cfg = self.model.cfg
        self.consumption = max(self.output - sum(self.spending), 0.0)
        self.utility = crra(self.consumption, cfg.crra, cfg.c_floor)
        penalty = cfg.budget_penalty * self.overshoot if cfg.budget == "penalty" else 0.0
        self.reward = self.utility - penalty
        self.capital = [
            max((1.0 - cfg.delta) * k + i, 1e-12) for k, i in zip(self.capital, self.investment, strict=True)
        ]
        self.z_idx = markov_next(self.model.idio_cdf[self.z_idx], u_z)
