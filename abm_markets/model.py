"""The investment economy as a Mesa model (one economy, ``B = 1``).

:class:`InvestmentModel` holds ``N^h`` :class:`~abm_markets.agents.Household` agents and the
capital-good :class:`~abm_markets.agents.CapitalFirm` agents (``M`` per good in the market
formulation; one pool per good for the planner). It is an
:class:`~abm_markets.mesa_model.EconomyModel` (the Mesa model of any protocol economy) with the
investment economy's own agents and reporters. Each ``step()``:

1. households are activated in a random order drawn from the model's ``random``
   (``agents_by_type[Household].shuffle_do("decide")``); each reads its observation and
   asks its decision rule for an action; deciding firms then choose price and capacity;
2. the period is computed:

   * ``mode="engine"``: as in :class:`~abm_markets.mesa_model.EconomyModel`, the actions are
     gathered into the batched engine's tensors and
     :meth:`InvestmentEconomy.step <abm_markets.engine.InvestmentEconomy.step>` runs, with the
     activation order passed as the posted-price ``arrival`` order; agents' attributes are
     refreshed from the new state and outcome;
   * ``mode="agents"``: the same economy is computed agent by agent in plain Python floats
     (households produce and order, each good's firms clear it: planner pool, Walrasian,
     posted price in activation order, bilateral trade along the trading graph; households
     consume and accumulate), an independent second implementation that checks the engine
     and is the benchmarks' baseline.

3. the :class:`mesa.DataCollector` records model-level means and agent-level variables.

Both modes draw the period's shocks with the engine's ``draw_noise`` from one
``torch.Generator`` seeded with ``seed``, and the initial state from the engine's
``initial_state`` with that generator, so with the same seed and actions the two modes,
the engine used directly, :class:`~abm_markets.mesa_model.EconomyModel` (for markets where the
activation order does not matter) and the PettingZoo / Gymnasium environments follow the same path.

Recorded variables (one row per period, key ``Step`` = periods done): flows refer to the
period just computed, ``capital`` to the capital carried into the next period.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate
from typing import Any

import mesa
import numpy as np
import torch

from abm_markets.agents.firm import CapitalFirm
from abm_markets.agents.household import Household, markov_next
from abm_markets.agents.rules import CompetitiveSupply, DecisionRule, SteadyStateShare, firm_observation_scales
from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy, InvestmentState
from abm_markets.errors import ConfigError, unknown
from abm_markets.mesa_model import EconomyModel

MODES = ("engine", "agents")

HOUSEHOLD_REPORTERS = {
    "capital": "total_capital",
    "tfp": "tfp",
    "output": "output",
    "consumption": "consumption",
    "investment": "total_investment",
    "spending": "total_spending",
    "utility": "utility",
    "reward": "reward",
}
FIRM_REPORTERS = {
    "good": "good",
    "price": "price",
    "sold": "sold",
    "produced": "produced",
    "revenue": "revenue",
    "profit": "profit",
}
MODEL_REPORTERS = {
    "capital": "mean_capital",
    "output": "mean_output",
    "consumption": "mean_consumption",
    "investment": "mean_investment",
    "price": "mean_price",
    "welfare": "welfare",
}


def _rules_for(
    rules: DecisionRule | Sequence[DecisionRule] | None, default: DecisionRule | None, count: int, group: str
) -> list[DecisionRule | None]:
    if rules is None:
        return [default] * count
    if isinstance(rules, DecisionRule):
        return [rules] * count
    rules = list(rules)
    if len(rules) != count:
        raise ConfigError(f"rules[{group!r}] has {len(rules)} rules; expected one for all or {count}")
    return rules


class InvestmentModel(EconomyModel):
    """Mesa model of one investment economy over the batched engine.

    Args:
        cfg: The economy (default ``InvestmentConfig()``).
        seed: Seeds the activation order (``Model(rng=seed)``) and the torch generator of shocks.
        rules: Decision rules: one rule for every household, or a mapping
            ``{"households": rule | [rule per household], "firms": rule | [rule per firm]}``
            (firms in good-major order). Defaults: :class:`SteadyStateShare` for households,
            :class:`CompetitiveSupply` for deciding firms.
        policies: Learned (batched) decision functions ``{"households" | "firms": state -> actions}`` (e.g. a
            run's trained policies, :func:`abm_markets.scenarios.market_learning.learned_market`): each period
            they decide from the current state (rebuilt from the agents in ``agents`` mode) for every agent of
            their key, overriding the rules; the agents still activate, and in the posted-price market their
            activation order is still the arrival order.
        mode: ``"engine"`` (batched engine with ``B = 1``) or ``"agents"`` (plain Python per agent).
        device, dtype: Of the engine (``agents`` mode computes in Python floats).
        collect: Record the DataCollector's variables after every step (off for timing runs).

    Attributes:
        economy: The :class:`InvestmentEconomy`.
        state: Engine state (``engine`` mode; :meth:`to_state` rebuilds it in ``agents`` mode).
        rules: The ``rules`` argument as given.
        households: Households in index order.
        firms: ``firms[j][m]``.
        arrivals: Households in the order they were activated in the last period (``activation_order``).
        datacollector: Model reporters ``capital, output, consumption, investment, price, welfare``
            (means over households and goods, ``welfare = sum_i u(C_i)``); agent-type reporters for
            households (``capital, tfp, output, consumption, investment, spending, utility, reward``)
            and firms (``good, price, sold, produced, revenue, profit``).

    Unlike the generic :class:`EconomyModel`, the Mesa agents are :class:`Household` and :class:`CapitalFirm`
    (competitive firms included), ``agents_by_group`` is empty, and ``logged_values`` is not filled.
    """

    def __init__(
        self,
        cfg: InvestmentConfig | None = None,
        *,
        seed: int = 0,
        rules: DecisionRule | Sequence[DecisionRule] | Mapping[str, Any] | None = None,
        policies: Mapping[str, Any] | None = None,
        mode: str = "engine",
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float64,
        collect: bool = True,
    ) -> None:
        cfg = cfg if cfg is not None else InvestmentConfig()
        if mode not in MODES:
            raise unknown("model mode", mode, MODES)
        economy = InvestmentEconomy(cfg, device=device, dtype=dtype)
        n_h, n_j, n_m = economy.n_households, economy.n_goods, economy.n_firms
        rmap: Mapping[str, Any] = rules if isinstance(rules, Mapping) else {"households": rules}
        unknown_keys = set(rmap) - {"households", "firms"}
        if unknown_keys:
            raise unknown("rule group", sorted(unknown_keys)[0], ("households", "firms"))
        h_rules = _rules_for(rmap.get("households"), SteadyStateShare(cfg), n_h, "households")
        f_default = CompetitiveSupply(cfg) if economy.deciding_firms else None
        f_rules = _rules_for(rmap.get("firms"), f_default, n_j * n_m, "firms")
        self.policies = dict(policies or {})
        for key, pol in self.policies.items():
            if key not in ("households", "firms") or not callable(pol):
                raise ConfigError(
                    f"policies[{key!r}] is invalid; expected policies for households and/or firms, each a function "
                    "state -> actions"
                )
            if key == "firms" and not economy.deciding_firms:
                raise ConfigError("policies['firms'] given but the firms are competitive; expected firms = 'decision'")
        # read by build_agents, which EconomyModel.__init__ calls
        self.cfg = cfg
        self.mode = mode
        self.rules = rules
        self._h_rules, self._f_rules = h_rules, f_rules
        sources: dict[str, Any] = {"households": h_rules}
        if economy.deciding_firms:
            sources["firms"] = f_rules
        super().__init__(economy, sources, seed=seed, collect=collect)
        self.k_ss = self.economy.k_ss
        self.p_ss, self.s_ss = firm_observation_scales(cfg)
        self.idio_cdf = [list(accumulate(row)) for row in self.economy.idio.transition.double().cpu().tolist()]
        self.agg_cdf = [list(accumulate(row)) for row in self.economy.agg.transition.double().cpu().tolist()]
        self.deciding_firms = self.economy.deciding_firms
        self.action_override: np.ndarray | None = None
        self.firm_override: np.ndarray | None = None
        self.arrivals: list[Household] = []
        self.activation_order = self.arrivals
        self._agent_common: dict[str, list[float]] = {}

    def build_agents(self) -> None:
        """Households, firms (``firms[j][m]``) and the trading partners of the bilateral market."""
        n_h, n_j, n_m = self.economy.n_households, self.economy.n_goods, self.economy.n_firms
        h_rules, f_rules = self._h_rules, self._f_rules
        s0 = self.state
        capital = s0.capital[0].double().cpu().tolist()
        z_idx = s0.z_idx[0].cpu().tolist()
        last_spending = s0.last_spending[0].double().cpu().tolist()
        self.agg_idx = int(s0.agg_idx[0])
        self.last_price: list[float] = s0.last_price[0].double().cpu().tolist()
        self.households = [Household(self, i, h_rules[i], capital[i], z_idx[i]) for i in range(n_h)]
        self.firms = [
            [CapitalFirm(self, j, m, f_rules[j * n_m + m], last_spending[j][m]) for m in range(n_m)] for j in range(n_j)
        ]
        # trading partners from the network graph: partners[j][i] = firms m of good j household i reaches
        self.partners: list[dict[int, list[int]]] = [{i: [] for i in range(n_h)} for _ in range(n_j)]
        graph = getattr(self.economy, "graph", None)
        if graph is not None:
            for i in range(n_h):
                for node in graph.neighbors(("h", i)):
                    self.partners[node[1]][i].append(node[2])
            for by_household in self.partners:
                for ms in by_household.values():
                    ms.sort()

    def build_datacollector(self) -> mesa.DataCollector:
        return mesa.DataCollector(
            model_reporters=MODEL_REPORTERS,
            agenttype_reporters={Household: HOUSEHOLD_REPORTERS, CapitalFirm: FIRM_REPORTERS},
        )

    # ------------------------------------------------------------ reporters
    @property
    def mean_capital(self) -> float:
        """Mean of ``K_ij`` over households and goods."""
        return sum(h.total_capital for h in self.households) / (len(self.households) * self.economy.n_goods)

    @property
    def mean_output(self) -> float:
        return sum(h.output for h in self.households) / len(self.households)

    @property
    def mean_consumption(self) -> float:
        return sum(h.consumption for h in self.households) / len(self.households)

    @property
    def mean_investment(self) -> float:
        """Mean of ``I_ij`` over households and goods."""
        return sum(h.total_investment for h in self.households) / (len(self.households) * self.economy.n_goods)

    @property
    def mean_price(self) -> float:
        """Mean over goods of the period's price (shadow price ``phi I_j`` for the planner)."""
        return sum(self.last_price) / len(self.last_price)

    @property
    def welfare(self) -> float:
        """``sum_i u(C_i)`` of the period."""
        return sum(h.utility for h in self.households)

    # --------------------------------------------------------- observations
    def household_observation(self, household: Household) -> np.ndarray:
        """The household's observation ``[D]`` (the engine's information-structure blocks)."""
        if self.mode == "engine":
            return self.observations["households"][household.index]
        c = self._agent_common
        cfg, k_ss = self.cfg, self.k_ss
        parts: list[float] = []
        for block in cfg.household_obs:
            if block == "own_capital":
                parts += [k / k_ss for k in household.capital]
            elif block == "own_tfp":
                parts.append(c["tfp"][household.index])
            else:
                parts += c[block]
        return np.asarray(parts)

    def firm_observation(self, firm: CapitalFirm) -> np.ndarray:
        """The firm's observation ``[4]`` (:data:`abm_markets.agents.firm.FIRM_OBSERVATION`)."""
        if self.mode == "engine":
            return self.observations["firms"][firm.good * self.economy.n_firms + firm.index]
        c = self._agent_common
        j = firm.good
        return np.asarray(
            [self.last_price[j] / self.p_ss, firm.last_demand / self.s_ss, c["agg_capital"][j], c["agg_tfp"][0]]
        )

    def _prepare_agent_observations(self) -> None:
        cfg, k_ss = self.cfg, self.k_ss
        hs = self.households
        a = cfg.agg_tfp_values[self.agg_idx]
        tfp = [cfg.tfp_values[h.z_idx] * a for h in hs]
        n_j = self.economy.n_goods
        self._agent_common = {
            "tfp": tfp,
            "agg_capital": [sum(h.capital[j] / k_ss for h in hs) / len(hs) for j in range(n_j)],
            "agg_tfp": [sum(tfp) / len(tfp)],
            "all_capital": [k / k_ss for h in hs for k in h.capital],
            "all_tfp": tfp,
            "prices": [p / self.p_ss for p in self.last_price],
            "time": [self.period / cfg.horizon],
        }

    # ----------------------------------------------------------------- step
    def step(self, actions: Mapping[str, Any] | None = None) -> None:
        """One period.

        Args:
            actions: Optional actions overriding the rules: ``{"households": [H, J]}`` and, with
                deciding firms, ``{"firms": [J, M, 2]}``. Households are still activated (their
                order is the posted-price arrival order).
        """
        actions = dict(actions or {})
        if self.policies:
            state = self.to_state()
            for key, pol in self.policies.items():
                if actions.get(key) is None:
                    a = pol(state)[0].detach().double().cpu().numpy()
                    actions[key] = a.reshape(self.economy.n_goods, self.economy.n_firms, 2) if key == "firms" else a
        self.action_override = None if actions.get("households") is None else np.asarray(actions["households"])
        self.firm_override = None if actions.get("firms") is None else np.asarray(actions["firms"])
        self.arrivals = []
        self.activation_order = self.arrivals
        if self.mode == "engine":
            self.observe()
        else:
            self._prepare_agent_observations()
        self.activate()
        if self.mode == "engine":
            self.advance()
        else:
            self._step_agents()
        self.period += 1
        if self.collect:
            self.datacollector.collect(self)

    # ------------------------------------------------------ engine-mode hooks
    def activate(self) -> None:
        """Households in a random order (the posted-price arrival order), then deciding firms in order."""
        self.agents_by_type[Household].shuffle_do("decide")
        if self.deciding_firms:
            self.agents_by_type[CapitalFirm].do("decide")

    def deciders(self, key: str) -> list[Any]:
        """Households (``households``) or the firms in good-major order (``firms``)."""
        if key == "households":
            return list(self.households)
        return [f for row in self.firms for f in row]

    def step_kwargs(self) -> dict[str, Any]:
        """The activation order as the posted-price ``arrival`` keys ``[1, H]``."""
        eco = self.economy
        arrival = torch.empty((1, len(self.households)), device=eco.device, dtype=eco.dtype)
        for pos, h in enumerate(self.arrivals):
            arrival[0, h.index] = float(pos)
        return {"arrival": arrival}

    def refresh(self, outcome: Any) -> None:
        """Households' and firms' attributes from the new state and the period's outcome."""
        out = outcome
        st = self.state
        capital = st.capital[0].double().cpu().tolist()
        z_idx = st.z_idx[0].cpu().tolist()
        cols = {
            name: getattr(out, name)[0].double().cpu().tolist()
            for name in ("tfp", "output", "consumption", "utility", "reward_households", "overshoot")
        }
        spending = out.spending[0].double().cpu().tolist()
        investment = out.investment[0].double().cpu().tolist()
        for i, h in enumerate(self.households):
            h.capital, h.z_idx = capital[i], z_idx[i]
            h.tfp, h.output, h.consumption = cols["tfp"][i], cols["output"][i], cols["consumption"][i]
            h.utility, h.reward, h.overshoot = cols["utility"][i], cols["reward_households"][i], cols["overshoot"][i]
            h.spending, h.investment = spending[i], investment[i]
        price = out.firm_price[0].double().cpu().tolist()
        sold = out.sold[0].double().cpu().tolist()
        produced = out.produced[0].double().cpu().tolist()
        profit = out.profit[0].double().cpu().tolist()
        demand = st.last_spending[0].double().cpu().tolist()
        planner = self.cfg.formulation == "planner"
        for j, row in enumerate(self.firms):
            for m, f in enumerate(row):
                f.price, f.sold, f.produced, f.profit = price[j][m], sold[j][m], produced[j][m], profit[j][m]
                f.last_demand = demand[j][m]
                f.revenue = demand[j][m] if planner else price[j][m] * sold[j][m]
                f.capacity = produced[j][m]
        self.agg_idx = int(st.agg_idx[0])
        self.last_price = st.last_price[0].double().cpu().tolist()

    def _step_agents(self) -> None:
        cfg = self.cfg
        hs = self.households
        n_h, n_j = len(hs), self.economy.n_goods
        u = self.economy.draw_noise(1, self.generator)[0].double().cpu().tolist()
        u_match = u[n_h : n_h + n_h * n_j]  # household-major, [i * J + j]
        u_z = u[n_h + n_h * n_j : 2 * n_h + n_h * n_j]
        u_agg = u[-1]
        a = cfg.agg_tfp_values[self.agg_idx]
        for h in hs:
            h.produce(a)
            h.orders()
        prices: list[float] = []
        if cfg.formulation == "planner":
            if cfg.action == "quantities":
                self._planner_quantities()
            else:
                for h in hs:
                    h.spending = list(h.budget)
            prices = [row[0].clear_pool(hs) for row in self.firms]
        else:
            for h in hs:
                h.spending = [0.0] * n_j
                h.investment = [0.0] * n_j
            for row in self.firms:
                if cfg.market == "walrasian":
                    prices.append(CapitalFirm.clear_walrasian(row, hs))
                elif cfg.market == "posted":
                    prices.append(CapitalFirm.clear_posted(row, self.arrivals))
                else:
                    j = row[0].good
                    u_j = [u_match[i * n_j + j] for i in range(n_h)]
                    prices.append(CapitalFirm.clear_bilateral(row, self.arrivals, self.partners[j], u_j))
            for h in hs:
                plan = (
                    h.plan_total
                    if cfg.action == "shares"
                    else sum(q * p for q, p in zip(h.quantity, prices, strict=True))
                )
                h.overshoot = max(plan / h.output - 1.0, 0.0)
        for h in hs:
            h.settle(u_z[h.index], a)
        if cfg.formulation == "planner":
            for row in self.firms:
                row[0].last_demand = row[0].revenue
        else:
            # demand signal: what buyers wanted to spend at last period's price, split across the good's firms
            for j, row in enumerate(self.firms):
                p_prev = self.last_price[j]
                desired = sum(min(h.budget[j], h.quantity[j] * p_prev) for h in hs)
                for f in row:
                    f.last_demand = desired / len(row)
        self.agg_idx = markov_next(self.agg_cdf[self.agg_idx], u_agg)
        self.last_price = prices

    def _planner_quantities(self) -> None:
        """Planner with quantity requests: ``x_ij = phi/2 I_j I_ij``, requests scaled by ``Y_i / cost_i``."""
        phi = self.cfg.phi
        hs = self.households
        n_j = self.economy.n_goods
        plan = [sum(h.quantity[j] for h in hs) for j in range(n_j)]
        for h in hs:
            cost = 0.5 * phi * sum(q * p for q, p in zip(h.quantity, plan, strict=True))
            h.overshoot = max(cost / h.output - 1.0, 0.0)
            if cost > h.output:
                scale = h.output / cost
                h.quantity = [q * scale for q in h.quantity]
        total = [sum(h.quantity[j] for h in hs) for j in range(n_j)]
        for h in hs:
            h.spending = [0.5 * phi * q * t for q, t in zip(h.quantity, total, strict=True)]
            h.investment = [0.0] * n_j

    # --------------------------------------------------------------- export
    def to_state(self) -> InvestmentState:
        """The current state as an engine :class:`InvestmentState` (``B = 1``), from the agents."""
        if self.mode == "engine":
            return self.state
        eco = self.economy
        kw = {"device": eco.device, "dtype": eco.dtype}
        long = {"device": eco.device, "dtype": torch.long}
        demand = [[f.last_demand for f in row] for row in self.firms]
        return InvestmentState(
            capital=torch.tensor([[h.capital for h in self.households]], **kw),
            z_idx=torch.tensor([[h.z_idx for h in self.households]], **long),
            agg_idx=torch.tensor([self.agg_idx], **long),
            t=torch.tensor([self.period], **long),
            last_spending=torch.tensor([demand], **kw),
            last_price=torch.tensor([self.last_price], **kw),
        )

    def trajectory_row(self) -> dict[str, list[float] | float]:
        """Per-household capital (summed over goods), consumption and reward of the last period."""
        return {
            "capital": [h.total_capital for h in self.households],
            "consumption": [h.consumption for h in self.households],
            "reward": [h.reward for h in self.households],
            "price": list(self.last_price),
            "period": float(self.period),
        }


__all__ = ["MODEL_REPORTERS", "MODES", "EconomyModel", "InvestmentModel"]
