"""The investment-under-uncertainty economy, batched (seed 000, section 3).

Equations (household i, capital good j, period t; ``B`` economies at once):

* Output: ``Y_i = Z_i * prod_j K_ij^(alpha/N^c)``, ``Z_i = z_i * A`` (idiosyncratic
  Markov chain times an optional aggregate chain); with ``externality_high != 1`` (market formulation) times the
  aggregate production externality ``A(Kbar)`` of mean capital, which households take as given.
* Spending: household i spends ``x_ij >= 0`` of its output on capital good j and
  consumes ``C_i = Y_i - sum_j x_ij`` (what it does not manage to spend is consumed).
* Capital: ``K'_ij = (1 - delta) K_ij + I_ij``.
* Planner formulation: resources are pooled, ``R_j = sum_i x_ij = phi/2 I_j^2``, and
  output is shared by contribution, ``I_ij = x_ij / sqrt(phi R_j / 2)``. The
  planner's reward is ``sum_i u(C_i)``; ``p_j = phi I_j`` is the shadow price.
* Market formulation: households buy from capital-good firms through a market
  mechanism (Walrasian, posted price, bilateral; see :mod:`abm_markets.markets`).
  Competitive firms supply ``I = p / phi``; deciding firms post price and capacity.
  Firm profit ``p * sold - phi/2 * produced^2``.
* Utility: CRRA, ``u(C) = log C`` by default.

Actions (documented mapping onto the feasible set, not penalties alone):

* ``action = "shares"``: household action ``a_ij`` is read as the spending share
  ``s_ij = clip(a_ij, 0, 1)``; if ``sum_j s_ij > 1`` the shares are scaled onto the
  simplex (``s / sum_j s``), so ``C_i >= 0`` always. :func:`shares_from_logits`
  maps unbounded policy outputs to the simplex (softmax over goods + consumption).
* ``action = "quantities"``: ``a_ij`` is the investment ``I_ij = max(a_ij, 0)``
  requested. Planner: its cost is ``x_ij = phi/2 * I_j * I_ij``; a household whose
  cost exceeds its output has all its requests scaled by ``Y_i / cost_i`` (one pass
  suffices: scaling lowers every ``I_j``). Market: quantity orders with spending
  cap ``Y_i`` split across goods in proportion to the quantities.
* ``budget = "penalty"``: as above, and the overshoot ``max(planned/Y - 1, 0)`` is
  also subtracted from the reward, times ``budget_penalty``.
* Deciding firms: action ``[..., 2]`` = (posted price, capacity), clipped to be
  positive / nonnegative.

Shapes: capital ``[B, H, J]``, household vectors ``[B, H]``, goods ``[B, J]``,
firms ``[B, J, M]`` (``M`` firms per good).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.economy import OBSERVATION_BLOCKS, AgentGroup, EconomySpec, Good, register_economy
from abm_markets.engine.investment_groups import (
    FIRM_BLOCK_DOCS,
    LOGGED,
    decision_groups,
    firm_scales,
    steady_state_capital,
    steady_state_spending_share,
)
from abm_markets.engine.preferences import crra_utility
from abm_markets.engine.protocol import BatchedEconomy, index_state, parse_information
from abm_markets.engine.shocks import MarkovChain, persistent_chain
from abm_markets.engine.technology import accumulate, externality, output, pooled_investment
from abm_markets.markets import (
    BilateralMarket,
    MarketNoise,
    Offers,
    Orders,
    PostedPriceMarket,
    WalrasianMarket,
    make_network,
    network_from_graph,
)
from abm_markets.markets.base import PRICE_FLOOR

ENV_HISTORY = (
    "v1 (2026-11): first version; planner and market formulations, shares or quantities, "
    "walrasian/posted/bilateral markets.",
)


@dataclass(frozen=True)
class InvestmentState:
    """Batched state of the investment economy (immutable; ``step`` returns a new one).

    Attributes:
        capital: ``K`` ``[B, H, J]``.
        z_idx: Idiosyncratic TFP state index ``[B, H]`` (long).
        agg_idx: Aggregate TFP state index ``[B]`` (long).
        t: Period ``[B]`` (long).
        last_spending: Spending buyers wanted to place with each firm last period (orders at last
            period's price, rationed demand included, split evenly across a good's firms) ``[B, J, M]``;
            the demand signal of rule firms in the posted-price market.
        last_price: Average price of each good last period ``[B, J]``.
    """

    capital: Tensor
    z_idx: Tensor
    agg_idx: Tensor
    t: Tensor
    last_spending: Tensor
    last_price: Tensor

    @property
    def batch_size(self) -> int:
        return int(self.capital.shape[0])

    def index(self, idx: Tensor | slice | int) -> InvestmentState:
        """Select economies along the batch dimension."""
        return index_state(self, idx)


class Outcome(NamedTuple):
    """What happened in one period (all tensors, leading batch dim)."""

    tfp: Tensor  # [B, H]
    output: Tensor  # [B, H]
    consumption: Tensor  # [B, H]
    spending: Tensor  # [B, H, J] paid for capital goods
    investment: Tensor  # [B, H, J] units received
    price: Tensor  # [B, J] (shadow price phi * I_j for the planner)
    firm_price: Tensor  # [B, J, M]
    sold: Tensor  # [B, J, M]
    produced: Tensor  # [B, J, M]
    profit: Tensor  # [B, J, M]
    overshoot: Tensor  # [B, H] relative budget overshoot of the plan (before projection)
    utility: Tensor  # [B, H]
    reward_households: Tensor  # [B, H]
    reward_planner: Tensor  # [B]
    reward_firms: Tensor  # [B, J, M]


def shares_from_logits(logits: Tensor) -> Tensor:
    """Map unbounded outputs ``[..., J + 1]`` to spending shares ``[..., J]`` via a softmax.

    The last component is the consumption share, so shares lie in the open simplex.
    """
    return torch.softmax(logits, dim=-1)[..., :-1]


class InvestmentEconomy(BatchedEconomy):
    """Batched investment economy: ``initial_state`` and pure ``step``.

    Args:
        cfg: The economy's config.
        device: Torch device (CPU or CUDA, no code change).
        dtype: Floating dtype (float64 by default; float32 for speed on GPU).
    """

    def __init__(
        self, cfg: InvestmentConfig, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float64
    ):
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        self.n_households, self.n_goods = cfg.shape
        self.n_firms = cfg.firms_per_good if cfg.formulation == "market" else 1
        self.idio: MarkovChain = persistent_chain(cfg.tfp_values, cfg.tfp_persistence).to(self.device, dtype)
        self.agg: MarkovChain = persistent_chain(cfg.agg_tfp_values, cfg.agg_tfp_persistence).to(self.device, dtype)
        self.k_ss = steady_state_capital(cfg)
        self.market = self._make_market()
        self.spec = self._make_spec()
        self.groups = decision_groups(cfg)
        self.information = parse_information(cfg.information, self.groups)
        self.default_group = "households"

    # ------------------------------------------------------------------ setup
    def _make_market(self) -> WalrasianMarket | PostedPriceMarket | BilateralMarket | None:
        cfg = self.cfg
        if cfg.formulation == "planner":
            return None
        if cfg.market == "walrasian":
            return WalrasianMarket()
        if cfg.market == "posted":
            return PostedPriceMarket()
        graph = make_network(
            cfg.network,
            self.n_households,
            self.n_goods,
            self.n_firms,
            p=cfg.network_p,
            rng=np.random.default_rng(cfg.network_seed),
        )
        self.graph = graph
        network = network_from_graph(graph, self.n_households, self.n_goods, self.n_firms)
        # neighbours of good j: the households that can buy j from a common seller (oneself included), row-normalised
        acc = network.access.to(self.dtype).permute(1, 0, 2)  # [J, H, M]
        near = ((acc @ acc.transpose(1, 2)) > 0) | torch.eye(self.n_households, dtype=torch.bool)
        near = near.to(self.dtype)
        self.neighbour_mean = (near / near.sum(-1, keepdim=True)).to(self.device)  # [J, H, H]
        return BilateralMarket(network, cfg.bargaining_power)

    def _make_spec(self) -> EconomySpec:
        cfg = self.cfg
        act = "spending shares s_ij" if cfg.action == "shares" else "investment quantities I_ij"
        hh = AgentGroup(
            name="households",
            count=self.n_households,
            action=f"[{self.n_goods}] {act}",
            observes=cfg.household_obs,
            reward="u(C_i)" + (" - penalty * overshoot" if cfg.budget == "penalty" else ""),
        )
        if cfg.formulation == "planner":
            goods = tuple(
                Good(f"capital_{j}", producer="pool", buyer="households", market="pool") for j in range(self.n_goods)
            )
            return EconomySpec(
                id=self.env_id,
                groups=(hh,),
                goods=goods,
                markets=("pool",),
                shocks=("idiosyncratic_tfp", "aggregate_tfp"),
                history=ENV_HISTORY,
                logged=LOGGED,
            )
        firms = AgentGroup(
            name="firms",
            count=self.n_goods * self.n_firms,
            action="rule p = phi * I" if cfg.firms == "competitive" else "[2] (posted price, capacity)",
            observes=tuple(FIRM_BLOCK_DOCS),
            reward="p * sold - phi/2 * produced^2",
        )
        goods = tuple(
            Good(f"capital_{j}", producer="firms", buyer="households", market=cfg.market) for j in range(self.n_goods)
        )
        return EconomySpec(
            id=self.env_id,
            groups=(hh, firms),
            goods=goods,
            markets=(cfg.market,),
            shocks=("idiosyncratic_tfp", "aggregate_tfp"),
            history=ENV_HISTORY,
            logged=LOGGED,
            observation_blocks=(*OBSERVATION_BLOCKS, "own_price", "own_demand", "good_capital"),
        )

    @property
    def env_id(self) -> str:
        return "InvestmentPlanner-v1" if self.cfg.formulation == "planner" else "InvestmentMarket-v1"

    @property
    def deciding_firms(self) -> bool:
        return self.cfg.formulation == "market" and self.cfg.firms == "decision"

    # ------------------------------------------------------------------ state
    def initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> InvestmentState:
        """Draw ``batch_size`` initial states: capital around ``k_init`` (or the steady state), shocks
        from their stationary distributions."""
        cfg = self.cfg
        h, j, m = self.n_households, self.n_goods, self.n_firms
        kw = {"device": self.device, "dtype": self.dtype}
        u = torch.rand((batch_size, h * j + h + 1), generator=generator, **kw)
        k0 = cfg.k_init if cfg.k_init is not None else self.k_ss
        spread = (2.0 * u[:, : h * j] - 1.0).reshape(batch_size, h, j) * cfg.k_init_spread
        capital = k0 * (1.0 + spread)
        z_idx = _draw(self.idio.stationary(), u[:, h * j : h * j + h])
        agg_idx = _draw(self.agg.stationary(), u[:, -1])
        # steady-state flows for the posted-price rule: each firm sold (N^h delta K)/M at p = phi * that
        q_firm = h * cfg.delta * self.k_ss / m
        last_spending = torch.full((batch_size, j, m), cfg.phi * q_firm * q_firm, **kw)
        last_price = torch.full((batch_size, j), cfg.phi * q_firm, **kw)
        t = torch.zeros(batch_size, dtype=torch.long, device=self.device)
        return InvestmentState(capital, z_idx, agg_idx, t, last_spending, last_price)

    def tfp(self, state: InvestmentState) -> Tensor:
        """``Z_i = z_i * A`` ``[B, H]``."""
        return self.idio.values[state.z_idx] * self.agg.values[state.agg_idx].unsqueeze(-1)

    # ------------------------------------------------------------------- step
    def draw_noise(self, batch_size: int, generator: torch.Generator | None) -> Tensor:
        """All uniform draws one period needs, ``[B, H + H*J + H + 1]`` (one generator call)."""
        h, j = self.n_households, self.n_goods
        return torch.rand((batch_size, h + h * j + h + 1), generator=generator, device=self.device, dtype=self.dtype)

    def step(
        self,
        state: InvestmentState,
        actions: Mapping[str, Tensor],
        generator: torch.Generator | None = None,
        *,
        noise: Tensor | None = None,
        arrival: Tensor | None = None,
    ) -> tuple[InvestmentState, Outcome]:
        """Advance every economy one period.

        Args:
            state: Current state.
            actions: ``{"households": [B, H, J]}`` and, with deciding firms, ``{"firms": [B, J, M, 2]}``.
            generator: Source of this period's randomness (ignored when ``noise`` is given).
            noise: Pre-drawn uniforms from :meth:`draw_noise` (for replaying a period exactly).
            arrival: Optional buyer arrival keys ``[B, H]`` overriding the random order in
                the posted-price market (the Mesa front end passes its activation order).

        Returns:
            ``(next_state, outcome)``.
        """
        cfg = self.cfg
        bsz = state.batch_size
        h, j = self.n_households, self.n_goods
        if "households" not in actions:
            raise KeyError("actions must contain 'households'")
        a = actions["households"].to(self.dtype)
        if a.shape != (bsz, h, j):
            raise ValueError(f"households' actions have shape {tuple(a.shape)}; expected {(bsz, h, j)}")
        u = self.draw_noise(bsz, generator) if noise is None else noise
        u_arrival = u[:, :h] if arrival is None else arrival.to(self.dtype)
        u_match = u[:, h : h + h * j].reshape(bsz, h, j)
        u_z = u[:, h + h * j : h + h * j + h]
        u_agg = u[:, -1]

        tfp = self.tfp(state)
        y = output(state.capital, tfp, cfg.alpha)
        if cfg.externality_high != 1.0:
            ext = externality(state.capital, cfg.externality_high, cfg.externality_threshold, cfg.externality_width)
            y = y * ext.unsqueeze(-1)

        if cfg.formulation == "planner":
            spending, investment, overshoot = self._planner_flows(a, y)
            invest_total = investment.sum(-2)
            price = (cfg.phi * invest_total).clamp_min(PRICE_FLOOR)
            firm_price = price.unsqueeze(-1)
            sold = produced = invest_total.unsqueeze(-1)
            profit = torch.zeros_like(sold)
            last_spending = spending.sum(-2).unsqueeze(-1)
        else:
            orders, plan_total = self._market_orders(a, y)
            offers = self._offers(state, actions)
            trade = self.market.clear(orders, offers, MarketNoise(arrival=u_arrival, match=u_match))
            spending, investment = trade.paid, trade.bought
            price = trade.good_price()
            firm_price, sold, produced = trade.price, trade.sold, trade.produced
            profit = trade.profit(cfg.phi)
            if cfg.action == "quantities":
                plan_total = (orders.quantity * price.unsqueeze(-2)).sum(-1)
            overshoot = torch.relu(plan_total / y - 1.0)
            # what buyers wanted to spend on each good at last period's price (rationed demand included),
            # split evenly across its firms: the demand signal of rule firms in the posted-price market
            # (spending orders carry an infinite quantity cap: kept out of the product, whose derivative would be
            # 0 * inf = NaN wherever the price enters a gradient, e.g. through the firms' demand observation)
            uncapped = torch.isinf(orders.quantity)
            cap = torch.where(uncapped, 0.0, orders.quantity) * state.last_price.unsqueeze(-2)
            desired = torch.where(uncapped, orders.budget, torch.minimum(orders.budget, cap)).sum(-2)
            last_spending = (desired / self.n_firms).unsqueeze(-1).expand(bsz, j, self.n_firms).contiguous()

        consumption = (y - spending.sum(-1)).clamp_min(0.0)
        utility = crra_utility(consumption, cfg.crra, cfg.c_floor)
        penalty = cfg.budget_penalty * overshoot if cfg.budget == "penalty" else torch.zeros_like(overshoot)
        reward_h = utility - penalty
        capital = accumulate(state.capital, investment, cfg.delta).clamp_min(1e-12)
        nxt = InvestmentState(
            capital=capital,
            z_idx=self.idio.step(state.z_idx, u_z),
            agg_idx=self.agg.step(state.agg_idx, u_agg),
            t=state.t + 1,
            last_spending=last_spending,
            last_price=price,
        )
        out = Outcome(
            tfp=tfp,
            output=y,
            consumption=consumption,
            spending=spending,
            investment=investment,
            price=price,
            firm_price=firm_price,
            sold=sold,
            produced=produced,
            profit=profit,
            overshoot=overshoot,
            utility=utility,
            reward_households=reward_h,
            reward_planner=reward_h.sum(-1),
            reward_firms=profit,
        )
        return nxt, out

    # --------------------------------------------------------------- helpers
    def _planner_flows(self, a: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        phi = self.cfg.phi
        if self.cfg.action == "shares":
            s = a.clamp(0.0, 1.0)
            total = s.sum(-1)
            overshoot = torch.relu(total - 1.0)
            s = s / total.clamp_min(1.0).unsqueeze(-1)
            spending = s * y.unsqueeze(-1)
        else:
            req = a.clamp_min(0.0)
            cost = 0.5 * phi * (req * req.sum(-2, keepdim=True)).sum(-1)  # [B, H]
            overshoot = torch.relu(cost / y - 1.0)
            scale = torch.where(cost > y, y / cost.clamp_min(1e-300), 1.0)
            req = req * scale.unsqueeze(-1)
            spending = 0.5 * phi * req * req.sum(-2, keepdim=True)
        investment, _ = pooled_investment(spending, phi)
        return spending, investment, overshoot

    def _market_orders(self, a: Tensor, y: Tensor) -> tuple[Orders, Tensor]:
        if self.cfg.action == "shares":
            s = a.clamp(0.0, 1.0)
            total = s.sum(-1)
            s = s / total.clamp_min(1.0).unsqueeze(-1)
            budget = s * y.unsqueeze(-1)
            return Orders(budget=budget, quantity=torch.full_like(budget, float("inf"))), total * y
        req = a.clamp_min(0.0)
        tot = req.sum(-1, keepdim=True)
        weights = torch.where(tot > 0, req / tot.clamp_min(1e-300), 0.0)
        return Orders(budget=weights * y.unsqueeze(-1), quantity=req), torch.zeros_like(y)

    def _offers(self, state: InvestmentState, actions: Mapping[str, Tensor]) -> Offers:
        cfg = self.cfg
        m = self.n_firms
        if cfg.firms == "decision":
            if "firms" not in actions:
                raise KeyError("actions must contain 'firms' when firms = 'decision'")
            f = actions["firms"].to(self.dtype)
            expected = (state.batch_size, self.n_goods, m, 2)
            if f.shape == (state.batch_size, self.n_goods * m, 2):  # the protocol's [B, n, 2]
                f = f.reshape(expected)
            if f.shape != expected:
                raise ValueError(f"firms' actions have shape {tuple(f.shape)}; expected {expected}")
            return Offers(
                phi=cfg.phi, price=f[..., 0].clamp_min(PRICE_FLOOR), capacity=f[..., 1].clamp_min(0.0), n_sellers=m
            )
        if cfg.market == "posted":
            # rule: post the price at which marginal-cost supply meets last period's demand (orders)
            price = torch.sqrt(cfg.phi * state.last_spending).clamp_min(PRICE_FLOOR)
            return Offers(phi=cfg.phi, price=price, capacity=price / cfg.phi, n_sellers=m)
        return Offers(phi=cfg.phi, n_sellers=m)

    # ----------------------------------------------------------- observation
    def observation_block(self, state: InvestmentState, group: str, block: str) -> Tensor:
        """One observation block for every agent of ``group`` (``[B, H, d]`` households/planner, ``[B, N^c M, 1]``
        firms).

        Capital is reported relative to the deterministic steady state, TFP as levels, prices relative to the
        steady-state price, time as ``t / horizon``; firms see their good's price and their demand signal
        relative to the steady state (:func:`firm_scales`), their good's mean capital and mean TFP.
        """
        bsz, h = state.batch_size, self.n_households
        if group == "firms":
            _, p_ss, s_ss = firm_scales(self.cfg)
            j, m = self.n_goods, self.n_firms
            if block == "own_price":
                x = (state.last_price / p_ss).unsqueeze(-1).expand(bsz, j, m)
            elif block == "own_demand":
                x = state.last_spending / s_ss
            elif block == "good_capital":
                x = (state.capital / self.k_ss).mean(1).unsqueeze(-1).expand(bsz, j, m)
            elif block == "agg_tfp":
                x = self.tfp(state).mean(1).reshape(bsz, 1, 1).expand(bsz, j, m)
            else:
                raise ValueError(f"unknown firm observation block {block!r}")
            return x.reshape(bsz, j * m, 1)
        if block in ("own_capital", "agg_capital", "all_capital", "nbr_capital"):
            k = state.capital / self.k_ss
            if block == "own_capital":
                return k
            if block == "nbr_capital":
                if self.cfg.market != "bilateral" or self.cfg.formulation != "market":
                    raise ValueError("observation block 'nbr_capital' needs the bilateral market's network")
                return torch.einsum("jhk,bkj->bhj", self.neighbour_mean.to(k.dtype), k)
            if block == "agg_capital":
                return k.mean(1, keepdim=True).expand(bsz, h, self.n_goods)
            return k.reshape(bsz, 1, -1).expand(bsz, h, h * self.n_goods)
        if block in ("own_tfp", "agg_tfp", "all_tfp"):
            z = self.tfp(state)
            if block == "own_tfp":
                return z.unsqueeze(-1)
            if block == "agg_tfp":
                return z.mean(1, keepdim=True).expand(bsz, h).unsqueeze(-1)
            return z.unsqueeze(1).expand(bsz, h, h)
        if block == "prices":
            p_ss = self.cfg.phi * h * self.cfg.delta * self.k_ss / self.n_firms
            return (state.last_price / p_ss).unsqueeze(1).expand(bsz, h, self.n_goods)
        if block == "time":
            return (state.t.to(self.dtype) / self.cfg.horizon).reshape(bsz, 1, 1).expand(bsz, h, 1)
        raise ValueError(f"unknown observation block {block!r}")

    def observation_size(self, group: str = "households") -> int:
        """Observation size ``D`` of one slot of ``group``."""
        return self.obs_dim(group)

    # --------------------------------------------------------------- protocol
    def decode(
        self, group: str, raw: Tensor, state: InvestmentState, *, center: str = "reference", shift: float = 0.0
    ) -> Tensor:
        """Policy parametrisation: unbounded ``u [B, n, raw_dim]`` to actions in economy units.

        Households and planner, shares: logits ``[u + c, 0]`` through :func:`shares_from_logits` (softmax
        with the consumption share last), ``c`` the logit of the steady-state share per good when
        ``center = "reference"`` (``u = 0`` plays the deterministic steady-state rule) or 0 (``"none"``: half of
        output); quantities: ``I = I_ss exp(u + shift)`` (``I_ss = delta K_ss``) or ``exp(u + shift)``. ``shift``
        moves the centre in log/logit units. Firms: ``(p_ss e^u0, q_ss e^u1)``, the competitive steady-state
        price and quantity of one firm.
        """
        bsz = raw.shape[0]
        if group == "firms":
            q_ss, p_ss, _ = firm_scales(self.cfg)
            return torch.stack(
                [p_ss * torch.exp(raw[..., 0].clamp(-10, 10)), q_ss * torch.exp(raw[..., 1].clamp(-10, 10))], -1
            )
        if group == "planner":
            raw = raw.reshape(bsz, self.n_households, self.n_goods)
        cfg, j = self.cfg, self.n_goods
        if center not in ("reference", "none"):
            raise ValueError(f"center = {center!r}; valid: reference, none")
        if cfg.action == "shares":
            c = shift
            if center == "reference":
                s = steady_state_spending_share(cfg)
                c = math.log((s / j) / (1.0 - s)) + shift
            z = raw + c
            return shares_from_logits(torch.cat([z, torch.zeros_like(z[..., :1])], dim=-1))
        scale = cfg.delta * self.k_ss if center == "reference" else 1.0
        return scale * torch.exp((raw + shift).clamp(-20.0, 20.0))

    def rewards(self, outcome: Outcome) -> dict[str, Tensor]:
        """``households [B, H]``, ``planner [B, 1]``, ``firms [B, N^c M]``."""
        return {
            "households": outcome.reward_households,
            "planner": outcome.reward_planner.unsqueeze(-1),
            "firms": outcome.reward_firms.reshape(outcome.reward_firms.shape[0], -1),
        }

    def logged(self, state: InvestmentState, outcome: Outcome) -> dict[str, Tensor]:
        """The variables of :data:`LOGGED` (flows of the period, ``capital`` carried into the next)."""
        return {
            "capital": state.capital.sum(-1),
            "tfp": outcome.tfp,
            "output": outcome.output,
            "consumption": outcome.consumption,
            "investment": outcome.investment.sum(-1),
            "spending": outcome.spending.sum(-1),
            "utility": outcome.utility,
            "price": outcome.price,
            "sold": outcome.sold.sum(-1),
            "produced": outcome.produced.sum(-1),
            "profit": outcome.profit.sum(-1),
            "welfare": outcome.utility.sum(-1),
        }

    def training_state(
        self, batch_size: int, generator: torch.Generator | None, spread: float = 0.0, common: float = 0.0
    ) -> InvestmentState:
        """Initial states with capital drawn uniformly in ``K_0 * [1 - spread, 1 + spread]`` (``K_0`` the config's
        ``k_init``, or the deterministic steady state ``K_ss`` when it is unset), household by household, times
        ``1 + common (2v - 1)`` with ``v`` uniform and shared by all households and goods of an economy
        (``common > 0`` only: aggregate capital then varies across training economies as much as one household's
        does, which a critic needs to learn the value of aggregate capital when ``N^h`` is large)."""
        s = self.initial_state(batch_size, generator)
        u = torch.rand(s.capital.shape, generator=generator, device=self.device, dtype=s.capital.dtype)
        centre = self.k_ss if self.cfg.k_init is None else self.cfg.k_init
        capital = centre * (1.0 + spread * (2.0 * u - 1.0))
        if common > 0.0:
            v = torch.rand((batch_size, 1, 1), generator=generator, device=self.device, dtype=s.capital.dtype)
            capital = capital * (1.0 + common * (2.0 * v - 1.0))
        return replace(s, capital=capital)

    def agent_names(self, group: str) -> list[str]:
        """``household_i``; ``firm_j_m`` (seller ``m`` of good ``j``)."""
        if group == "firms":
            return [f"firm_{j}_{m}" for j in range(self.n_goods) for m in range(self.n_firms)]
        return [f"household_{i}" for i in range(self.group(group).count)]

    def global_state(self, state: InvestmentState) -> Tensor:
        """Everything, flat ``[B, H*J + H + J + 1]`` (for centralised critics and planners)."""
        bsz = state.batch_size
        p_ss = self.cfg.phi * self.n_households * self.cfg.delta * self.k_ss / self.n_firms
        return torch.cat(
            [
                (state.capital / self.k_ss).reshape(bsz, -1),
                self.tfp(state),
                state.last_price / p_ss,
                (state.t.to(self.dtype) / self.cfg.horizon).unsqueeze(-1),
            ],
            dim=-1,
        )

    def with_config(self, **changes: object) -> InvestmentEconomy:
        return InvestmentEconomy(replace(self.cfg, **changes), device=self.device, dtype=self.dtype)


def _draw(probs: Tensor, uniform: Tensor) -> Tensor:
    cdf = torch.cumsum(probs, 0)
    return (uniform.unsqueeze(-1) >= cdf).sum(-1).clamp_max(probs.shape[0] - 1)


@register_economy("InvestmentPlanner-v1")
def _planner(cfg: InvestmentConfig | None, **kw: object) -> InvestmentEconomy:
    return InvestmentEconomy(replace(cfg or InvestmentConfig(), formulation="planner"), **kw)  # type: ignore[arg-type]


@register_economy("InvestmentMarket-v1")
def _market(cfg: InvestmentConfig | None, **kw: object) -> InvestmentEconomy:
    cfg = cfg or InvestmentConfig(formulation="market", n_households=4)
    return InvestmentEconomy(replace(cfg, formulation="market"), **kw)  # type: ignore[arg-type]
