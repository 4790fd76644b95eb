"""Huggett (1993) economies for structural RL: partial equilibrium, aggregate risk, lagged prices.

Households ``i`` hold bonds ``b`` and receive idiosyncratic income ``y``
(AR(1) in logs, Rouwenhorst, normalised to mean 1) times aggregate TFP ``Z``
(AR(1) in logs). Budget and constraint (timing of Yang, Wang, Schaab and Moll):

    c_t + b_{t+1} = R_t b_t + y_t Z_t,        b_{t+1} >= b_lim,
    max E_0 sum_t beta^t c_t^(1 - sigma) / (1 - sigma).

* ``equilibrium="general"``: ``R_t`` clears the bond market,
  ``int b_{t+1} dG_t = B`` (``B = 0``: zero net supply), each period, on a
  grid of ``n_prices`` gross rates ``1 + r``, ``r`` in ``[r_min, r_max]``. The
  policy is a table over ``(Z, [R_{t-1}], R_t, b, y)``.
* ``equilibrium="partial"``: ``r_t`` is an exogenous Markov chain
  (Rouwenhorst, ``n_r`` points, mean ``r_mean``, persistence ``r_rho``,
  unconditional sd ``r_sd``); the policy is a table over ``(r, Z, b, y)``
  and there is nothing to clear.

Policy parameterisation: a logit ``theta`` per table cell; the saving share of
cash on hand above the borrowing limit is ``s = sigmoid(theta)``,

    x = R b + y Z,   b' = b_lim + s (x - b_lim),   c = (1 - s)(x - b_lim) > 0,

so the borrowing limit and ``c > 0`` hold by construction. ``b'`` above the
top of the grid is clipped there (the consumption absorbs the difference).

Calibration (defaults): the SRL paper's Huggett with aggregate shocks —
``beta = 0.96``, ``sigma = 2``, income ``rho = 0.6``, ``sd = 0.2`` on 3 states,
TFP ``rho = 0.9``, ``sd = 0.02``, ``b_lim = -1``, 200 asset points up to 50,
20 interest-rate points in ``[0.01, 0.06]``. The TFP chain has ``n_tfp``
Rouwenhorst points (the paper's table dimension for ``Z`` is not stated; 5 here).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.srl import grids
from abm_markets.srl.solver import PeriodInput, PeriodOutput

__all__ = [
    "HuggettConfig",
    "HuggettModel",
    "RateLaw",
    "burn_in",
    "compare_with_egm",
    "egm_given_rate_law",
    "egm_policy",
    "euler_errors",
    "fit_rate_law",
    "perceived_law_reference",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class HuggettConfig(Config):
    """Economy of a Huggett model (defaults: the SRL paper's Huggett with aggregate shocks)."""

    equilibrium: str = param(
        "general", "general: R clears bonds; partial: r exogenous Markov.", choices=("general", "partial")
    )
    beta: float = param(0.96, "Discount factor per period.", gt=0.0, lt=1.0)
    sigma: float = param(2.0, "Relative risk aversion (CRRA; 1 = log).", gt=0.0)
    income_rho: float = param(0.6, "Persistence of log idiosyncratic income.", ge=0.0, lt=1.0)
    income_sd: float = param(0.2, "Innovation sd of log idiosyncratic income.", ge=0.0)
    n_income: int = param(3, "Rouwenhorst states of idiosyncratic income.", ge=1)
    tfp_rho: float = param(0.9, "Persistence of log aggregate TFP Z.", ge=0.0, lt=1.0)
    tfp_sd: float = param(0.02, "Innovation sd of log aggregate TFP Z (0: no aggregate risk).", ge=0.0)
    n_tfp: int = param(5, "Rouwenhorst states of aggregate TFP (1: no aggregate risk).", ge=1)
    borrowing_limit: float = param(-1.0, "Borrowing limit b_lim (bonds >= b_lim).")
    asset_max: float = param(50.0, "Top of the asset grid.")
    n_assets: int = param(200, "Asset grid points.", ge=3)
    grid_power: float = param(
        1.0,
        "Asset grid spacing b_lim + (max - b_lim) u^power; 1 = evenly spaced (a denser grid near b_lim makes the"
        " learned table noisy there: cells with little mass and nearly flat objective)",
        ge=1.0,
    )
    bond_supply: float = param(0.0, "Net bond supply B (general equilibrium).")
    r_min: float = param(0.01, "Lowest net rate of the price grid (general equilibrium).")
    r_max: float = param(0.06, "Highest net rate of the price grid (general equilibrium).")
    n_prices: int = param(20, "Points of the interest-rate grid (general equilibrium).", ge=2)
    n_lags: int = param(0, "Lagged interest rates in the policy's state (general equilibrium).", ge=0, le=2)
    r_mean: float = param(0.03, "Mean net rate of the exogenous r chain (partial equilibrium).")
    r_rho: float = param(0.9, "Persistence of the exogenous r chain (partial equilibrium).", ge=0.0, lt=1.0)
    r_sd: float = param(0.01, "Unconditional sd of the exogenous r chain (partial equilibrium).", ge=0.0)
    n_r: int = param(7, "Rouwenhorst points of the exogenous r chain (partial equilibrium).", ge=1)
    init_price_slope: float = param(
        3.0, "Initial policy: logit slope across the price grid (makes initial bond supply increase in R).", ge=0.0
    )

    def validate(self) -> None:
        if self.asset_max <= self.borrowing_limit:
            raise ConfigError(f"HuggettConfig.asset_max = {self.asset_max} is invalid; expected > borrowing_limit")
        if self.r_max <= self.r_min:
            raise ConfigError(f"HuggettConfig.r_max = {self.r_max} is invalid; expected > r_min = {self.r_min}")
        if self.equilibrium == "partial" and self.n_lags:
            raise ConfigError("HuggettConfig.n_lags is invalid with equilibrium='partial'; expected 0")
        r_hi = (
            self.r_max if self.equilibrium == "general" else self.r_mean + math.sqrt(max(self.n_r - 1, 0)) * self.r_sd
        )
        logy, Py = grids.rouwenhorst(self.n_income, self.income_rho, self.income_sd)
        y = torch.exp(logy)
        y_min = float(y[0] / (grids.stationary_distribution(Py) @ y))
        z_min = math.exp(-math.sqrt(max(self.n_tfp - 1, 0)) * self.tfp_sd / math.sqrt(1 - self.tfp_rho**2))
        if self.borrowing_limit * r_hi + y_min * z_min <= 0:
            raise ConfigError(
                f"HuggettConfig.borrowing_limit = {self.borrowing_limit} is invalid: at the highest rate and lowest"
                " income cash on hand falls below the limit; expected a looser limit"
            )


class HuggettModel:
    """Huggett economy implementing the :class:`~abm_markets.srl.solver.SRLModel` protocol.

    Shapes: ``nb`` assets, ``ny`` income states, ``nz`` aggregate states
    (``n_r * n_tfp`` in partial equilibrium, ``n_tfp`` in general), ``nP``
    price points, ``L`` lags. Table ``savings_logit``:
    ``(nz, nP, ..., nP, nb, ny)`` with ``L + 1`` price axes (general) or
    ``(nz, nb, ny)`` (partial).
    """

    def __init__(self, cfg: HuggettConfig, *, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        self.cfg = cfg
        self.beta = cfg.beta
        self.device = torch.device(device)
        self.dtype = dtype
        f64 = torch.float64
        logy, Py = grids.rouwenhorst(cfg.n_income, cfg.income_rho, cfg.income_sd)
        y = torch.exp(logy)
        pi_y = grids.stationary_distribution(Py)
        y = y / (pi_y @ y)
        logz, Pz = grids.rouwenhorst(cfg.n_tfp, cfg.tfp_rho, cfg.tfp_sd)
        Z = torch.exp(logz)
        self.partial = cfg.equilibrium == "partial"
        if self.partial:
            r, Pr = grids.rouwenhorst(cfg.n_r, cfg.r_rho, cfg.r_sd * math.sqrt(1.0 - cfg.r_rho**2), cfg.r_mean)
            R_agg = (1.0 + r).repeat_interleave(cfg.n_tfp)  # state k = i_r * n_tfp + i_z
            Z_agg = Z.repeat(cfg.n_r)
            P_agg = torch.kron(Pr, Pz)
            self.price_grid64 = 1.0 + r
        else:
            R_agg = torch.ones(cfg.n_tfp, dtype=f64)
            Z_agg = Z
            P_agg = Pz
            self.price_grid64 = 1.0 + torch.linspace(cfg.r_min, cfg.r_max, cfg.n_prices, dtype=f64)
        self.b64 = grids.asset_grid(cfg.borrowing_limit, cfg.asset_max, cfg.n_assets, power=cfg.grid_power)
        self.y64, self.Py64, self.pi_y64 = y, Py, pi_y
        self.Z64, self.R_agg64, self.P_agg64 = Z_agg, R_agg, P_agg
        kw = {"device": self.device, "dtype": dtype}
        self.b = self.b64.to(**kw)
        self.y = y.to(**kw)
        self.Py = Py.to(**kw)
        self.pi_y = pi_y.to(**kw)
        self.Z = Z_agg.to(**kw)
        self.R_agg = R_agg.to(**kw)
        self.agg_transition = P_agg.to(**kw)
        self.price_grid = self.price_grid64.to(**kw)
        self.b_lim = cfg.borrowing_limit
        self.b_max = float(self.b64[-1])

    # ------------------------------------------------------------------ economics blocks
    def utility(self, c: Tensor) -> Tensor:
        """CRRA ``u(c) = c^(1 - sigma) / (1 - sigma)`` (log for sigma = 1)."""
        s = self.cfg.sigma
        if s == 1.0:
            return torch.log(c)
        if s == 2.0:
            return -torch.reciprocal(c)
        return c.pow(1.0 - s) / (1.0 - s)

    def savings(self, logit: Tensor, cash: Tensor) -> Tensor:
        """``b' = min(b_lim + sigmoid(logit) (x - b_lim), b_max)``."""
        return torch.clamp(self.b_lim + torch.sigmoid(logit) * (cash - self.b_lim), max=self.b_max)

    def _cash(self, R: Tensor, income: Tensor) -> Tensor:
        """Cash on hand ``R b + y Z``; ``R`` ``(..., 1, 1)``, ``income`` ``(..., 1, ny)`` -> ``(..., nb, ny)``."""
        return R * self.b[:, None] + income

    def _table_shape(self) -> tuple[int, ...]:
        nz, nb, ny = self.agg_transition.shape[0], self.b.shape[0], self.y.shape[0]
        if self.partial:
            return (nz, nb, ny)
        nP = self.price_grid.shape[0]
        return (nz, *([nP] * (self.cfg.n_lags + 1)), nb, ny)

    def _grid_prices(self) -> Tensor:
        """Gross rate of every table cell before the ``(nb, ny)`` axes, broadcastable to the table."""
        shape = self._table_shape()
        if self.partial:
            return self.R_agg.view(-1, 1, 1)
        return self.price_grid.view(1, *([1] * self.cfg.n_lags), -1, 1, 1).expand(*shape[:-2], 1, 1)

    def _grid_income(self) -> Tensor:
        shape = self._table_shape()
        inc = self.Z[:, None] * self.y[None, :]  # (nz, ny)
        return inc.view(shape[0], *([1] * (len(shape) - 3)), 1, shape[-1])

    # ------------------------------------------------------------------ protocol
    def init_params(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        """Start from "keep assets" ``b' = b`` (share clipped to [0.05, 0.95]) plus a slope in R."""
        R = self._grid_prices().double().cpu()
        shape = self._table_shape()
        inc = (self.Z64[:, None] * self.y64[None, :]).view(shape[0], *([1] * (len(shape) - 3)), 1, shape[-1])
        x = R * self.b64[:, None] + inc
        share = ((self.b64[:, None] - self.b_lim) / (x - self.b_lim)).clamp(0.05, 0.95)
        logit = torch.logit(share).expand(shape).clone()
        if not self.partial:
            lo, hi = float(self.price_grid64[0]), float(self.price_grid64[-1])
            logit = logit + self.cfg.init_price_slope * ((R - (lo + hi) / 2) / (hi - lo))
        return {"savings_logit": logit.to(device=device, dtype=dtype)}

    def param_groups(self) -> dict[str, tuple[str, ...]]:
        return {"household": ("savings_logit",)}

    def initial_distribution(
        self, n: int, kind: str, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """``fixed``: everyone at ``b = B`` with the stationary income distribution.

        ``random``: per path, a Laplace-shaped density around a uniform centre
        in ``[b_lim, B + 2]`` with a uniform scale in ``[0.2, 2]``, times
        Dirichlet(1) income weights.
        """
        b = self.b.to(device=device, dtype=dtype)
        if kind == "fixed":
            j, w = grids.lottery(torch.full((1,), self.cfg.bond_supply, device=device, dtype=dtype), b)
            mass = torch.zeros(b.shape[0], device=device, dtype=dtype)
            mass[j] += 1 - w
            mass[j + 1] += w
            g = mass[:, None] * self.pi_y.to(device=device, dtype=dtype)[None, :]
            return g.expand(n, -1, -1).clone()
        u = torch.rand(n, 3, generator=generator, device=device, dtype=dtype)
        centre = self.b_lim + u[:, :1] * (self.cfg.bond_supply + 2.0 - self.b_lim)
        scale = 0.2 + 1.8 * u[:, 1:2]
        dens = torch.exp(-(b[None, :] - centre).abs() / scale)  # (n, nb)
        dens = dens * torch.diff(b, prepend=b[:1] - (b[1] - b[0]))[None, :]
        e = -torch.log(torch.rand(n, self.y.shape[0], generator=generator, device=device, dtype=dtype))
        iw = e / e.sum(1, keepdim=True)
        g = dens[:, :, None] * iw[:, None, :]
        return g / g.sum(dim=(1, 2), keepdim=True)

    def initial_carry(self, n: int, z0: Tensor, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        """Lagged rates start at the middle of the price grid."""
        if self.partial or self.cfg.n_lags == 0:
            return {}
        mid = float(self.price_grid64[self.price_grid64.shape[0] // 2])
        return {"price_lags": torch.full((n, self.cfg.n_lags), mid, device=device, dtype=dtype)}

    def prepare(self, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Once per rollout (general equilibrium): the detached savings at every grid price, ``(rows, nP, nb * ny)``
        with ``rows = nz * nP^L``, for clearing."""
        if self.partial:
            return {}
        nb, ny, nP = self.b.shape[0], self.y.shape[0], self.price_grid.shape[0]
        with torch.no_grad():
            b_grid = self.policy_values(params)
        return {"b_grid": b_grid.reshape(-1, nP, nb * ny)}

    def _corners(self, z: Tensor, lags: Tensor | None) -> list[tuple[Tensor, Tensor]]:
        """Rows of the (z, lag...) table and their multilinear weights for each path: ``[(row (N,), weight (N,))]``."""
        nP = self.price_grid.shape[0]
        corners = [(z, torch.ones(z.shape[0], dtype=self.dtype, device=z.device))]
        for k in range(self.cfg.n_lags):
            j, w = grids.interp_weights(lags[:, k], self.price_grid)
            corners = [(r * nP + j + d, cw * (w if d else 1 - w)) for r, cw in corners for d in (0, 1)]
        return corners

    def decide(self, inp: PeriodInput) -> tuple[Tensor, Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """The period's rate and every household cell's saving share.

        General equilibrium: clear the bond market from ``inp.given_dist`` and
        the detached policy (price taking), then interpolate the shares at the
        clearing rate (differentiable through ``inp.gather``). Partial: read the
        rate of the exogenous state.

        Returns:
            ``(R (N,), share (N, nb, ny), log, carry)``; ``log`` holds ``bracketed``
            and ``carry`` the next lagged rates (general equilibrium).
        """
        log: dict[str, Tensor] = {}
        carry: dict[str, Tensor] = {}
        if self.partial:
            return self.R_agg.index_select(0, inp.z), torch.sigmoid(inp.gather("savings_logit", inp.z, 2)), log, carry
        g = inp.given_dist
        N = g.shape[0]
        nP = self.price_grid.shape[0]
        lags = inp.carry.get("price_lags")
        corners = self._corners(inp.z, lags)
        with torch.no_grad():  # price taking: supply curve from the given distribution and policy
            gv = g.reshape(N, 1, -1)
            supply = sum(
                cw[:, None] * (inp.prepared["b_grid"].index_select(0, row) * gv).sum(dim=2) for row, cw in corners
            )
            clr = grids.clear_on_grid(supply - self.cfg.bond_supply, self.price_grid)
        R = clr.price
        # one gather for all corners and both price brackets: rows (C, 2, N)
        base = torch.stack([row * nP + clr.j for row, _ in corners])
        rows = torch.stack([base, base + 1], dim=1)
        cw = torch.stack([w for _, w in corners])  # (C, N)
        pw = torch.stack([1 - clr.w, clr.w])  # (2, N)
        weight = (cw[:, None, :] * pw[None, :, :]).reshape(-1, N, 1, 1)
        s_rows = torch.sigmoid(inp.gather("savings_logit", rows.reshape(-1), 2)).reshape(-1, N, *g.shape[1:])
        share = (weight * s_rows).sum(dim=0)
        log["bracketed"] = clr.bracketed.to(R.dtype)
        if self.cfg.n_lags:
            carry["price_lags"] = torch.cat([R[:, None], lags[:, :-1]], dim=1)
        return R, share, log, carry

    def period(self, inp: PeriodInput) -> PeriodOutput:
        """Clear the bond market (general) or read r (partial), consume, save, push the distribution forward."""
        income = (self.Z.index_select(0, inp.z)[:, None] * self.y[None, :])[:, None, :]  # (N, 1, ny)
        g = inp.given_dist
        R, share, log, carry = self.decide(inp)
        x = self._cash(R.view(-1, 1, 1), income)  # (N, nb, ny)
        b_next = torch.clamp(self.b_lim + share * (x - self.b_lim), max=self.b_max)
        c = x - b_next
        reward = (inp.dist * self.utility(c)).sum(dim=(1, 2))
        with torch.no_grad():
            bond_demand = (b_next.detach() * g).sum(dim=(1, 2))
            log["r"] = R - 1.0
            log["Z"] = self.Z.index_select(0, inp.z)
            log["C"] = (c.detach() * g).sum(dim=(1, 2))
            log["B_next"] = bond_demand
            if not self.partial:
                log["resid_bond"] = bond_demand - self.cfg.bond_supply
        j, w = grids.lottery(b_next, self.b, power=self.cfg.grid_power)
        dist_next = grids.push_forward(inp.dist, j, w, self.Py)
        return PeriodOutput(dist_next=dist_next, reward={"household": reward}, carry=carry, log=log)

    def policy_values(self, params: Mapping[str, Tensor]) -> Tensor:
        """Savings ``b'`` at every table cell, at the cell's grid price."""
        x = self._grid_prices() * self.b[:, None] + self._grid_income()
        return self.savings(params["savings_logit"], x)

    # ------------------------------------------------------------------ conversions
    def params_from_savings(self, b_next: Tensor) -> dict[str, Tensor]:
        """Logit table that reproduces a savings policy ``b'`` given on the table's cells."""
        x = (self._grid_prices() * self.b[:, None] + self._grid_income()).double()
        share = ((b_next.double() - self.b_lim) / (x - self.b_lim)).clamp(1e-6, 1 - 1e-6)
        return {"savings_logit": torch.logit(share).to(self.dtype).expand(self._table_shape()).clone()}


def egm_policy(model: HuggettModel) -> Tensor:
    """The EGM savings policy of the partial-equilibrium model on its table, ``(nz, nb, ny)`` float64.

    The exogenous state is ``s = (k, y)`` with ``k`` the aggregate state (r and Z)
    and transition ``P_agg ⊗ P_y``; income ``Z_k y``, return ``R_k``.
    """
    from abm_markets.solvers.household import egm

    if not model.partial:
        raise ValueError("egm_policy needs equilibrium='partial' (prices exogenous)")
    nz, ny = model.P_agg64.shape[0], model.y64.shape[0]
    income = (model.Z64[:, None] * model.y64[None, :]).reshape(-1)
    R = model.R_agg64.repeat_interleave(ny)
    P = torch.kron(model.P_agg64, model.Py64)
    sol = egm(model.b64, income, R, P, beta=model.cfg.beta, sigma=model.cfg.sigma, b_lim=model.b_lim)
    b_next = torch.clamp(sol.b_next, max=model.b_max)
    return b_next.reshape(nz, ny, -1).transpose(1, 2).contiguous()


def compare_with_egm(
    model: HuggettModel,
    params: Mapping[str, Tensor],
    *,
    n_paths: int,
    periods: int,
    burn_in: int,
    generator: torch.Generator,
) -> dict:
    """Accuracy of an SRL policy of the partial-equilibrium model against EGM on the same grids.

    Both policies are simulated from the same initial distribution (the EGM
    policy's after ``burn_in`` periods from the fixed start, i.e. close to its
    ergodic distribution) on the same aggregate shock paths (lottery dynamics).

    Returns:
        A dict with ``welfare_srl``, ``welfare_egm`` (discounted utility over
        ``periods``, mean over paths), ``welfare_diff`` (SRL - EGM),
        ``welfare_ce_pct`` (permanent consumption change making EGM's value equal
        SRL's, percent), ``policy_diff_mean`` (mean ``|b'_SRL - b'_EGM|`` under
        the ergodic distribution), ``policy_diff_q99`` and ``policy_diff_max``
        (over cells with ergodic mass > 1e-5), ``consumption_rel_diff_mean``,
        ``egm_s``; plus tensors ``b_next_srl``, ``b_next_egm``, ``mass``
        ``(nz, nb, ny)`` and the two evaluation rollouts.
    """
    import time

    from abm_markets.srl.solver import simulate, simulate_markov

    t0 = time.perf_counter()
    ref = egm_policy(model)
    egm_s = time.perf_counter() - t0
    with torch.no_grad():
        srl_b = model.policy_values(params).double().cpu()
    egm_params = model.params_from_savings(ref.to(model.device))
    # both policies start from the same distribution (the EGM policy's, after burn_in periods) and face the same shocks
    z0 = torch.zeros(n_paths, dtype=torch.long, device=model.device) + model.agg_transition.shape[0] // 2
    burn = simulate(model, egm_params, n_paths=n_paths, periods=max(burn_in, 1), generator=generator, z0=z0)
    z_path = simulate_markov(model.agg_transition, burn.z[:, -1], periods, generator)
    rolls = [
        simulate(model, p, n_paths=n_paths, periods=periods, generator=generator, dist0=burn.dist, z_path=z_path)
        for p in (params, egm_params)
    ]
    r_srl, r_egm = rolls
    mass = torch.zeros_like(ref)
    mass.index_add_(0, r_egm.z[:, -1].cpu(), r_egm.dist.double().cpu())
    mass = mass / mass.sum()
    diff = (srl_b - ref).abs()
    support = mass > 1e-5
    x = (model._grid_prices() * model.b[:, None] + model._grid_income()).double().cpu()
    c_ref, c_srl = x - ref, x - srl_b
    v_s, v_e = float(r_srl.objective["household"].mean()), float(r_egm.objective["household"].mean())
    s = model.cfg.sigma
    # permanent consumption scaling: v((1 + l) c) = (1 + l)^(1 - sigma) v(c); log: v + log(1 + l) / (1 - beta)
    ce = math.exp((v_s - v_e) * (1 - model.beta)) - 1.0 if s == 1.0 else (v_s / v_e) ** (1.0 / (1.0 - s)) - 1.0
    return {
        "welfare_srl": v_s,
        "welfare_egm": v_e,
        "welfare_diff": v_s - v_e,
        "welfare_ce_pct": 100.0 * ce,
        "policy_diff_mean": float((diff * mass).sum()),
        "policy_diff_q99": float(diff[support].quantile(0.99)),
        "policy_diff_max": float(diff[support].max()),
        "consumption_rel_diff_mean": float(((c_srl - c_ref).abs() / c_ref * mass).sum()),
        "ergodic_mean_assets": float((mass * model.b64[:, None]).sum()),
        "egm_s": egm_s,
        "b_next_srl": srl_b,
        "b_next_egm": ref,
        "mass": mass,
        "rollout_srl": r_srl,
        "rollout_egm": r_egm,
    }


# ---------------------------------------------------------------------------------------------- accuracy (general eq.)
def burn_in(model: HuggettModel, params: Mapping[str, Tensor], z_burn: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """Distribution and carry after the periods of ``z_burn`` ``(N, T + 1)`` from the fixed initial distribution.

    Deterministic given the shock path (the fixed start draws nothing), so two
    policies burned in on the same ``z_burn`` face the same shocks.
    """
    from abm_markets.srl.solver import rollout

    N = z_burn.shape[0]
    some = next(iter(params.values()))
    with torch.no_grad():
        dist = model.initial_distribution(N, "fixed", torch.Generator(), some.device, some.dtype)
        carry = model.initial_carry(N, z_burn[:, 0], some.device, some.dtype)
        if z_burn.shape[1] < 2:
            return dist, carry
        out = rollout(model, params, z_burn, dist, carry)
    return out.dist, out.carry


def euler_errors(
    model: HuggettModel,
    params: Mapping[str, Tensor],
    *,
    z_path: Tensor,
    dist0: Tensor,
    carry0: Mapping[str, Tensor] | None = None,
    constraint_tol: float = 1e-4,
) -> dict[str, Any]:
    """Euler-equation errors of a general-equilibrium policy along simulated paths, with exact expectations.

    The paths are simulated under the policy from ``dist0`` along ``z_path``
    ``(N, T + 1)`` (``T`` periods, market clearing as in :meth:`HuggettModel.period`).
    In period ``t`` tomorrow's distribution ``g_{t+1}`` is today's savings pushed
    forward, so tomorrow's clearing rate ``R_{t+1}(z')`` and policy follow for
    every next aggregate state ``z'``, and the expectation over ``(z', y')`` is a
    finite sum::

        err = | 1 - (beta sum_{z', y'} P(z'|z) P(y'|y) R_{t+1}(z') c_{t+1}(b', y', z')^(-sigma))^(-1/sigma) / c_t |

    with ``c_{t+1}`` linear in ``b'`` between asset grid points (float64 after
    the policy's own dtype). Cells count when unconstrained,
    ``b_lim + constraint_tol < b' < b_max``, and their mass exceeds 1e-8;
    weights are the cell masses summed over periods and paths.

    Returns:
        ``euler_mean_log10`` (mass-weighted mean of ``log10 err``),
        ``euler_p99_log10`` (its mass-weighted 99th percentile),
        ``euler_max_log10``, ``euler_constrained_share`` (share of the mass at
        the borrowing limit), and ``occupation``: ``(nz, nP, nb, ny)`` float64
        mass of the table cells the paths use (the clearing rate's bracket
        weights times the distribution, summed over periods; no-lag tables only,
        else ``None``); ``by_asset_mean_log10`` and ``by_asset_max_log10``
        ``(nb,)``: the same per asset grid point ``b`` (NaN where no cell counts).
    """
    if model.partial:
        raise ValueError("euler_errors needs equilibrium='general' (prices clear the bond market)")
    f64 = torch.float64
    beta, sigma = model.beta, model.cfg.sigma
    nz, nb, ny = model.agg_transition.shape[0], model.b.shape[0], model.y.shape[0]
    nP = model.price_grid.shape[0]
    N, T = z_path.shape[0], z_path.shape[1] - 1
    b, Z, y = model.b.to(f64), model.Z.to(f64), model.y.to(f64)
    Pz, Py = model.agg_transition.to(f64), model.Py.to(f64)
    prepared = model.prepare(params)
    carry = dict(carry0) if carry0 is not None else model.initial_carry(N, z_path[:, 0], b.device, model.dtype)
    every = torch.arange(nz, device=z_path.device).repeat(N)  # path n's copy for z' = k is row n * nz + k
    rows = torch.arange(N, device=z_path.device)
    occupation = torch.zeros(nz * nP, nb, ny, dtype=f64) if model.cfg.n_lags == 0 else None
    logs, weights = [], []
    mass_total = mass_constrained = 0.0
    by_num = torch.zeros(nb, dtype=f64)
    by_den = torch.zeros(nb, dtype=f64)
    by_max = torch.full((nb,), float("-inf"), dtype=f64)

    def budget(R: Tensor, share: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        x = R.to(f64).view(-1, 1, 1) * b[:, None] + Z.index_select(0, z)[:, None, None] * y
        b_next = torch.clamp(model.b_lim + share.to(f64) * (x - model.b_lim), max=model.b_max)
        return b_next, x - b_next

    with torch.no_grad():
        dist = dist0
        z = z_path[:, 0]
        R, share, _, carry = model.decide(PeriodInput(0, z, z, dist, carry, params, prepared))
        for t in range(T):
            z = z_path[:, t]
            g = dist.to(f64)
            b_next, c = budget(R, share, z)
            if occupation is not None:
                jp, wp = grids.interp_weights(R, model.price_grid)
                occupation.index_add_(0, z * nP + jp, (1 - wp).to(f64)[:, None, None] * g)
                occupation.index_add_(0, z * nP + jp + 1, wp.to(f64)[:, None, None] * g)
            j, w = grids.lottery(b_next.to(model.dtype), model.b, power=model.cfg.grid_power)
            dist = grids.push_forward(dist, j, w, model.Py)
            # tomorrow for every z': clearing rate and policy from the pushed-forward distribution
            rep = {k: v.repeat_interleave(nz, 0) for k, v in carry.items()}
            Rn, share_n, _, carry_n = model.decide(
                PeriodInput(t + 1, every, every, dist.repeat_interleave(nz, 0), rep, params, prepared)
            )
            _, cn = budget(Rn, share_n, every)
            cn = cn.view(N, nz, nb, ny)  # (path, z', b, y')
            idx = j.reshape(N, 1, nb * ny, 1).expand(N, nz, nb * ny, ny)
            wq = w.to(f64).reshape(N, 1, nb * ny, 1)
            c_at = (1 - wq) * cn.gather(2, idx) + wq * cn.gather(2, idx + 1)  # (path, z', (b, y), y')
            mu = Rn.to(f64).view(N, nz, 1, 1) * c_at.clamp_min(1e-12).pow(-sigma)
            mu = (mu.view(N, nz, nb, ny, ny) * Py).sum(-1)  # E over y' given y: (path, z', b, y)
            emu = (Pz.index_select(0, z).view(N, nz, 1, 1) * mu).sum(1)
            err = (1.0 - (beta * emu).pow(-1.0 / sigma) / c).abs().clamp_min(1e-16)
            unconstrained = (b_next > model.b_lim + constraint_tol) & (b_next < model.b_max)
            keep = unconstrained & (g > 1e-8)
            lg = torch.log10(err)
            wk = torch.where(keep, g, torch.zeros_like(g))
            logs.append(lg[keep])
            weights.append(g[keep])
            by_num += (lg * wk).sum(dim=(0, 2))
            by_den += wk.sum(dim=(0, 2))
            by_max = torch.maximum(by_max, torch.where(keep, lg, -torch.inf).amax(dim=(0, 2)))
            mass_total += float(g.sum())
            mass_constrained += float(g[b_next <= model.b_lim + constraint_tol].sum())
            zn = z_path[:, t + 1]
            R = Rn.view(N, nz)[rows, zn]
            share = share_n.view(N, nz, nb, ny)[rows, zn]
            carry = {k: v.view(N, nz, *v.shape[1:])[rows, zn] for k, v in carry_n.items()}
    lg, wgt = torch.cat(logs), torch.cat(weights)
    order = torch.argsort(lg)
    cw = torch.cumsum(wgt[order], 0) / wgt.sum()
    k = int(torch.searchsorted(cw, torch.tensor(0.99, dtype=f64)).clamp(max=lg.shape[0] - 1))
    return {
        "euler_mean_log10": float((lg * wgt).sum() / wgt.sum()),
        "euler_p99_log10": float(lg[order][k]),
        "euler_max_log10": float(lg.max()),
        "euler_constrained_share": mass_constrained / mass_total,
        "occupation": None if occupation is None else occupation.view(nz, nP, nb, ny),
        "by_asset_mean_log10": torch.where(by_den > 0, by_num / by_den.clamp_min(1e-300), torch.nan),
        "by_asset_max_log10": torch.where(by_den > 0, by_max, torch.nan),
    }


class RateLaw(NamedTuple):
    """A perceived law of motion of the interest rate (Krusell-Smith style, with the rate as the aggregate state).

    Attributes:
        next_r: ``(nz, nP, nz)`` forecast net rate ``r'`` for today's TFP state,
            today's rate at each price-grid point and tomorrow's TFP state,
            clamped to the price grid.
        r2: Share of the variance of ``r'`` on the fitting paths the law explains.
        resid_sd: Standard deviation of the forecast error on the fitting paths.
    """

    next_r: Tensor
    r2: float
    resid_sd: float


def fit_rate_law(model: HuggettModel, r: Tensor, z: Tensor, *, min_obs: int = 20) -> RateLaw:
    """Fit ``r_{t+1} = a(z_t, z_{t+1}) + b(z_t, z_{t+1}) (r_t - m(z_t, z_{t+1}))`` by least squares.

    One line per pair of TFP states with at least ``min_obs`` transitions;
    rarer pairs use the line of their ``z_{t+1}`` pooled over ``z_t`` (a
    ``z_{t+1}`` never seen: the mean rate, no slope). The slope is ridge-damped
    (1e-12) so that a pair whose ``r_t`` does not vary (a rate stuck at a grid
    end) gets slope 0.

    Args:
        model: The general-equilibrium model (its TFP chain and price grid).
        r: ``(N, T)`` net rates along simulated paths.
        z: ``(N, T + 1)`` the TFP state paths (``r[:, t]`` was set in ``z[:, t]``).
        min_obs: Transitions needed for a pair's own line.
    """
    f64 = torch.float64
    nz = model.agg_transition.shape[0]
    T = r.shape[1]
    x, yv = r[:, :-1].reshape(-1).to(f64).cpu(), r[:, 1:].reshape(-1).to(f64).cpu()
    zt, zn = z[:, : T - 1].reshape(-1).cpu(), z[:, 1:T].reshape(-1).cpu()

    def line(m: Tensor) -> tuple[float, float, float]:
        xm, ym = x[m], yv[m]
        xc = xm - xm.mean()
        return float(ym.mean()), float((xc * (ym - ym.mean())).sum() / ((xc**2).sum() + 1e-12)), float(xm.mean())

    overall = (float(yv.mean()), 0.0, 0.0) if yv.numel() else (float(model.price_grid64.mean()) - 1.0, 0.0, 0.0)
    pooled = [line(zn == k) if int((zn == k).sum()) >= 2 else overall for k in range(nz)]
    coef = torch.empty(nz, nz, 3, dtype=f64)
    for k in range(nz):
        for kn in range(nz):
            m = (zt == k) & (zn == kn)
            coef[k, kn] = torch.tensor(line(m) if int(m.sum()) >= min_obs else pooled[kn], dtype=f64)
    r_lo, r_hi = float(model.price_grid64[0]) - 1.0, float(model.price_grid64[-1]) - 1.0

    def predict(k: Tensor, rt: Tensor, kn: Tensor) -> Tensor:
        c = coef[k, kn]
        return (c[..., 0] + c[..., 1] * (rt - c[..., 2])).clamp(r_lo, r_hi)

    kk, jj, nn = torch.meshgrid(
        torch.arange(nz), torch.arange(model.price_grid64.shape[0]), torch.arange(nz), indexing="ij"
    )
    next_r = predict(kk, model.price_grid64[jj] - 1.0, nn)
    if yv.numel() < 2:
        return RateLaw(next_r=next_r, r2=float("nan"), resid_sd=float("nan"))
    resid = yv - predict(zt, x, zn)
    var = float(yv.var())
    return RateLaw(
        next_r=next_r, r2=1.0 - float(resid.var()) / var if var > 0 else float("nan"), resid_sd=float(resid.std())
    )


def egm_given_rate_law(model: HuggettModel, law: RateLaw) -> Tensor:
    """The households' EGM savings policy when they forecast the rate by ``law``, ``(nz, nP, nb, ny)`` float64.

    The household's exogenous state is ``(z, r_j, y)`` with ``r_j`` on the
    price grid; tomorrow's forecast rate ``law.next_r[z, j, z']`` is split
    between its two grid neighbours (a lottery on the rate grid), so the state
    is a Markov chain with ``nz nP ny`` states and :func:`~abm_markets.solvers.household.egm`
    solves it. The policy lives on the same cells as the SRL table.
    """
    from abm_markets.solvers.household import egm

    f64 = torch.float64
    nz, nP, nb, ny = model.agg_transition.shape[0], model.price_grid64.shape[0], model.b64.shape[0], model.y64.shape[0]
    j, w = grids.interp_weights(1.0 + law.next_r, model.price_grid64)  # (nz, nP, nz)
    lot = torch.zeros(nz, nP, nz, nP, dtype=f64)
    lot.scatter_add_(3, j[..., None], (1 - w)[..., None]).scatter_add_(3, (j + 1)[..., None], w[..., None])
    agg = (model.P_agg64.to(f64)[:, None, :, None] * lot).reshape(nz * nP, nz * nP)
    P = torch.kron(agg, model.Py64.to(f64))
    income = (model.Z64[:, None, None] * model.y64[None, None, :]).expand(nz, nP, ny).reshape(-1)
    R = model.price_grid64[None, :, None].expand(nz, nP, ny).reshape(-1)
    sol = egm(model.b64, income, R, P, beta=model.cfg.beta, sigma=model.cfg.sigma, b_lim=model.b_lim)
    return torch.clamp(sol.b_next, max=model.b_max).reshape(nz, nP, ny, nb).transpose(2, 3).contiguous()


def perceived_law_reference(
    model: HuggettModel,
    r_path: Tensor,
    *,
    z_burn: Tensor,
    z_path: Tensor,
    damping: float = 0.25,
    tol: float = 1e-4,
    max_iter: int = 25,
) -> dict[str, Any]:
    """Krusell-Smith solution with the rate as the aggregate state, started from the law an SRL solution implies.

    Iteration: fit a :class:`RateLaw` to simulated rates (first: ``r_path``,
    the SRL policy's); solve the households' problem under it by EGM
    (:func:`egm_given_rate_law`); simulate that policy with the bond market
    clearing each period (:meth:`HuggettModel.period`: burn-in along
    ``z_burn`` from the fixed start, then ``z_path``); refit; move the law's
    table ``damping`` of the way to the refit. Stops when the refit's forecasts
    at the simulated ``(z_t, r_t, z_{t+1})`` differ from the current law's by
    less than ``tol`` on average (mean absolute difference, rate units) or
    after ``max_iter`` iterations. With ``damping = 0.5`` the iteration
    cycles on the default calibration (a law that expects high rates makes
    households save, which lowers the rates); 0.25 converges.

    The first EGM policy is the households' best response to the SRL
    solution's own price dynamics (as the law summarises them).

    Returns:
        ``b_next`` ``(nz, nP, nb, ny)`` (the last EGM policy), ``params`` (its
        logit table), ``best_response`` (the first EGM policy), ``law``
        (the last :class:`RateLaw` fitted to the reference's own rates),
        ``law_srl`` (fitted to ``r_path``), ``rollout`` (the reference policy on
        ``z_path``), ``dist0``/``carry0`` (its distribution after burn-in),
        ``iterations``, ``converged``, ``law_change`` (last mean forecast change).
    """
    if model.partial or model.cfg.n_lags:
        raise ValueError("perceived_law_reference needs equilibrium='general' and n_lags=0")
    from abm_markets.srl.solver import rollout

    law_srl = fit_rate_law(model, r_path, z_path)
    next_r = law_srl.next_r
    T = z_path.shape[1] - 1
    zt, zn = z_path[:, : T - 1].reshape(-1).cpu(), z_path[:, 1:T].reshape(-1).cpu()
    best = b_next = params = law = roll = dist0 = carry0 = None
    change, converged, it = float("inf"), False, 0
    for it in range(1, max_iter + 1):  # noqa: B007 - the count is returned
        b_next = egm_given_rate_law(model, RateLaw(next_r, float("nan"), float("nan")))
        best = b_next if best is None else best
        params = model.params_from_savings(b_next.to(device=model.device))
        dist0, carry0 = burn_in(model, params, z_burn)
        with torch.no_grad():
            roll = rollout(model, params, z_path, dist0, carry0)
        law = fit_rate_law(model, roll.logs["r"], z_path)
        r_now = roll.logs["r"][:, :-1].reshape(-1).to(torch.float64).cpu()
        change = float(
            (_forecast(model, law.next_r, zt, r_now, zn) - _forecast(model, next_r, zt, r_now, zn)).abs().mean()
        )
        next_r = next_r + damping * (law.next_r - next_r)
        if change < tol:
            converged = True
            break
    return {
        "b_next": b_next,
        "params": params,
        "best_response": best,
        "law": law,
        "law_srl": law_srl,
        "rollout": roll,
        "dist0": dist0,
        "carry0": carry0,
        "iterations": it,
        "converged": converged,
        "law_change": change,
    }


def _forecast(model: HuggettModel, next_r: Tensor, z: Tensor, r: Tensor, zn: Tensor) -> Tensor:
    """A law's table read at rates ``r`` between grid points (linear), for TFP pairs ``(z, zn)``."""
    j, w = grids.interp_weights(1.0 + r, model.price_grid64)
    return (1 - w) * next_r[z, j, zn] + w * next_r[z, j + 1, zn]
