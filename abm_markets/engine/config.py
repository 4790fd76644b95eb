"""Configuration of the investment-under-uncertainty economy (seed 000, section 3)."""

from __future__ import annotations

import dataclasses
import math

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError, UserError


@dataclasses.dataclass(frozen=True, kw_only=True)
class InvestmentConfig(Config):
    """The investment-under-uncertainty economy.

    N^h households, each with Cobb-Douglas technology over N^c capital goods,
    ``Y_i = Z_i * prod_j K_ij^(alpha/N^c)``, consume ``C_i`` and invest; capital
    goods cost ``phi/2 * I^2`` units of the final good to produce; capital
    depreciates at rate ``delta``; utility is CRRA with coefficient ``crra``
    (1 = log). Defaults are the original MarketsAI calibration.
    """

    n_households: int = param(1, "Number of households N^h.", ge=1)
    n_capital_goods: int = param(1, "Number of capital goods N^c (one seller each).", ge=1)
    formulation: str = param(
        "planner",
        "planner: resources pooled per good, output shared by contribution; market: households buy from firms.",
        choices=("planner", "market"),
    )
    alpha: float = param(0.3, "Capital share: returns to the capital bundle (0 < alpha < 1).", gt=0.0, lt=1.0)
    beta: float = param(0.98, "Households' discount factor per period.", gt=0.0, lt=1.0)
    delta: float = param(0.04, "Depreciation rate of capital per period.", gt=0.0, le=1.0)
    phi: float = param(0.5, "Quadratic cost of producing capital goods: cost = phi/2 * I^2.", gt=0.0)
    crra: float = param(1.0, "Relative risk aversion sigma of CRRA utility (1 = log).", gt=0.0)
    tfp_values: tuple[float, ...] = param(
        (0.9, 1.1), "Idiosyncratic TFP states Z_i (Markov chain, one draw per household).", gt=0.0
    )
    tfp_persistence: float = param(
        0.9,
        "Probability that idiosyncratic TFP stays in its state; moves uniformly to another otherwise.",
        ge=0.0,
        le=1.0,
    )
    agg_tfp_values: tuple[float, ...] = param(
        (1.0,),
        "Aggregate TFP states multiplying every household's TFP; (1.0,) switches the aggregate shock off.",
        gt=0.0,
    )
    agg_tfp_persistence: float = param(0.95, "Probability that aggregate TFP stays in its state.", ge=0.0, le=1.0)
    action: str = param(
        "shares",
        "shares: agents choose spending shares s_ij of output; quantities: agents choose investment I_ij.",
        choices=("shares", "quantities"),
    )
    budget: str = param(
        "scale",
        "How a spending plan above output is made feasible: scale (project onto the budget) or penalty "
        "(scale, and subtract budget_penalty * overshoot from the reward).",
        choices=("scale", "penalty"),
    )
    budget_penalty: float = param(1.0, "Reward penalty per unit of budget overshoot (budget = penalty).", ge=0.0)
    market: str = param(
        "walrasian",
        "Market mechanism of the market formulation: walrasian, posted (posted price), bilateral (network).",
        choices=("walrasian", "posted", "bilateral"),
    )
    firms: str = param(
        "competitive",
        "Capital-good firms: competitive (supply p = phi * I) or decision (post price and capacity as actions).",
        choices=("competitive", "decision"),
    )
    firms_per_good: int = param(
        1, "Capital-good firms M selling each good (market formulation); competitive firms share demand.", ge=1
    )
    network: str = param(
        "complete",
        "Trading network of the bilateral market: complete, random (Erdos-Renyi bipartite), ring.",
        choices=("complete", "random", "ring"),
    )
    network_p: float = param(0.5, "Edge probability of the random bipartite network.", gt=0.0, le=1.0)
    bargaining_power: float = param(
        1.0,
        "Seller's bargaining power theta in the bilateral market: price = ((1+theta)/2) * phi * Q, "
        "between average cost (theta=0) and marginal cost (theta=1).",
        ge=0.0,
        le=1.0,
    )
    k_init: float | None = param(
        None, "Initial capital per household and good; None = deterministic steady state.", gt=0.0
    )
    k_init_spread: float = param(
        0.0, "Initial capital drawn uniformly in k_init * [1 - spread, 1 + spread].", ge=0.0, lt=1.0
    )
    household_obs: tuple[str, ...] = param(
        ("own_capital", "own_tfp", "agg_capital", "agg_tfp"),
        "Information structure: blocks each household observes (own_capital, own_tfp, agg_capital, agg_tfp, "
        "all_capital, all_tfp, prices, time; nbr_capital in the bilateral market: the mean capital of the "
        "households that share a seller with it on the network).",
    )
    information: tuple[str, ...] = param(
        (),
        "Information structure per group and subgroup, entries group[start:stop]=block+block (slice optional), "
        "e.g. households[:2]=own_capital+own_tfp+all_capital; overrides household_obs for the groups it names. "
        "Firms' blocks: own_price, own_demand, good_capital, agg_tfp.",
    )
    network_seed: int = param(0, "Seed of the random trading network (fixed across episodes).", ge=0)
    externality_high: float = param(
        1.0,
        "Aggregate production externality Y_i = Z_i A(Kbar) prod_j K_ij^(alpha/N^c), A(Kbar) = 1 + (A_H - 1) / "
        "(1 + exp(-(Kbar - K_thr) / w)) with Kbar the mean capital over households and goods, taken as given by "
        "each household: A_H (1 = no externality; market formulation only).",
        gt=0.0,
    )
    externality_threshold: float = param(8.0, "Externality threshold K_thr (capital per household and good).", gt=0.0)
    externality_width: float = param(0.3, "Externality width w of the logistic step.", gt=0.0)
    c_floor: float = param(1e-6, "Consumption floor inside the utility function (avoids log 0).", gt=0.0)
    horizon: int = param(200, "Episode length in periods (environments truncate here).", ge=1)

    def validate(self) -> None:
        from abm_markets.engine.economy import OBSERVATION_BLOCKS

        for block in self.household_obs:
            if block not in OBSERVATION_BLOCKS:
                raise ConfigError(
                    f"InvestmentConfig.household_obs contains {block!r}; "
                    f"expected blocks from {', '.join(OBSERVATION_BLOCKS)}"
                )
        if not self.household_obs:
            raise ConfigError("InvestmentConfig.household_obs = () is invalid; expected at least one block")
        if "nbr_capital" in self.household_obs and not (self.formulation == "market" and self.market == "bilateral"):
            raise ConfigError(
                "InvestmentConfig.household_obs contains 'nbr_capital', which only the bilateral market's network "
                "defines; expected formulation = 'market' and market = 'bilateral', or other blocks"
            )
        n = len(self.tfp_values)
        if n == 0:
            raise ConfigError("InvestmentConfig.tfp_values = () is invalid; expected at least one state")
        if self.formulation == "planner" and self.firms == "decision":
            raise ConfigError(
                "InvestmentConfig.firms = 'decision' is invalid with formulation = 'planner'; "
                "expected formulation = 'market' for deciding firms"
            )
        if self.externality_high != 1.0 and self.formulation != "market":
            raise ConfigError(
                f"InvestmentConfig.externality_high = {self.externality_high} needs formulation = 'market' "
                "(households who take mean capital as given); expected externality_high = 1 with the planner"
            )
        if self.information:
            from abm_markets.engine.investment_groups import decision_groups
            from abm_markets.engine.protocol import parse_information

            try:
                parse_information(self.information, decision_groups(self))
            except UserError as e:
                raise ConfigError(f"InvestmentConfig.information: {e}") from None
        if self.k_init is not None and not math.isfinite(self.k_init):
            raise ConfigError(f"InvestmentConfig.k_init = {self.k_init!r} is invalid; expected a finite number > 0")
        self._check_magnitudes()

    def _check_magnitudes(self) -> None:
        """Reject finite settings whose steady state over- or underflows float64 (squares included).

        The symmetric steady state with TFP ``z`` has ``K^(2-alpha) = z alpha beta / (N^c N^h phi delta
        (1 - beta (1 - delta)))``; output ``z K^alpha``, investment ``delta K`` and its cost ``phi/2 (delta K)^2``
        and CRRA utility must stay between 1e-150 and 1e150 in magnitude.
        """
        a, b, d, phi = self.alpha, self.beta, self.delta, self.phi
        nh, nc = self.shape
        lim = 150 * math.log(10)
        zs = [x * y for x in self.tfp_values for y in self.agg_tfp_values] or [1.0]
        log_a = math.log(a * b) - math.log(nc) - math.log(nh) - math.log(phi) - math.log(d) - math.log1p(-b * (1 - d))
        for z in (min(zs), max(zs)):
            log_k = (math.log(z) + log_a) / (2.0 - a)
            if self.k_init is not None:
                log_k = max(log_k, math.log(self.k_init), key=abs)
            log_y = math.log(z) + a * log_k
            log_cost = math.log(phi / 2) + 2 * (math.log(d) + log_k)
            log_u = (1.0 - self.crra) * log_y
            for what, v in (("capital", log_k), ("output", log_y), ("investment cost", log_cost), ("utility", log_u)):
                if abs(v) > lim:
                    e10 = v / math.log(10)
                    size = f"about 1e{e10:.0f}" if abs(e10) < 1e5 else f"far beyond 1e{'+' if e10 > 0 else '-'}308"
                    raise ConfigError(
                        f"InvestmentConfig: TFP {z:.3g} with alpha={a}, beta={b}, delta={d}, phi={phi}, "
                        f"crra={self.crra}"
                        f" gives a steady-state {what} of {size}, beyond float64; expected"
                        " settings whose steady state lies between 1e-150 and 1e150"
                    )

    def estimated_bytes(self) -> int:
        """Peak memory of the numerical steady state (Newton-Krylov on ``N^h N^c (+ N^c)`` unknowns)."""
        n = self.n_households * self.n_capital_goods + self.n_capital_goods
        return n * 8 * (min(n, 200) + 64)

    @property
    def shape(self) -> tuple[int, int]:
        """(N^h, N^c)."""
        return (self.n_households, self.n_capital_goods)
