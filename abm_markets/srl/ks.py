"""Krusell-Smith (1998) economy for the structural-RL solver.

Households hold capital ``a >= 0`` and draw labour efficiency ``e`` (AR(1) in
logs, Rouwenhorst, normalised to ``E[e] = 1`` so ``L = 1``); TFP ``z`` is an
AR(1) in logs on a Rouwenhorst chain::

    c_t + a_{t+1} = (1 + r_t) a_t + w_t e_t,      a_{t+1} >= 0,
    max E_0 sum_t beta^t c_t^(1 - sigma) / (1 - sigma),
    K_t = int a dG_t,   r_t = alpha z_t K_t^(alpha - 1) - delta,   w_t = (1 - alpha) z_t K_t^alpha.

Prices are the firm's marginal products at the aggregate capital the
households bring into the period, so the capital market clears exactly; what
households must learn is how ``(r_t, w_t)`` move. The SRL policy is a table
over ``(z, K, a, e)``: for a given ``z`` the capital grid is a grid of prices
``(r(K, z), w(K, z))``, so the policy is a function of the individual state,
the shock and current prices only (Yang, Wang, Schaab and Moll's Assumption 2),
never of the distribution. Each period ``K_t`` is computed from the given
(detached) distribution, the policy is interpolated linearly along the price
axis, and the distribution is pushed forward with Young's lottery.

Policy parameterisation (as for Huggett): a logit per table cell, saving share
``s = sigmoid(theta)`` of cash on hand ``x = (1 + r) a + w e``; ``a' = min(s x,
a_max)``, ``c = x - a' > 0``.

Calibration (defaults, the SRL paper's Krusell-Smith): ``beta = 0.95``,
``sigma = 3``, ``alpha = 0.36``, ``delta = 0.08``, efficiency ``rho = 0.6``,
``sd = 0.2`` on 3 states, TFP ``rho = 0.9``, ``sd = 0.03`` (3 Rouwenhorst
states here; the paper does not state its TFP discretisation), borrowing limit
0, 200 asset points up to 50, 12 capital points on ``K_ss (1 +- 0.4)``.

The references (same grids and chains) are in
:mod:`abm_markets.solvers.aiyagari` (no aggregate risk) and
:mod:`abm_markets.solvers.krusell_smith` (Krusell-Smith algorithm).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor

from abm_markets.solvers.krusell_smith import KSCalibration
from abm_markets.srl import grids
from abm_markets.srl.solver import PeriodInput, PeriodOutput, interp_axis1, take_agg

__all__ = ["KSEconomyConfig", "KSModel"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class KSEconomyConfig(KSCalibration):
    """Economy and grids of the Krusell-Smith model (defaults: the SRL paper's calibration).

    The same fields as the Krusell-Smith algorithm's calibration, so both solve one economy.
    """


class KSModel:
    """Krusell-Smith economy implementing :class:`~abm_markets.srl.solver.SRLModel`.

    Args:
        cfg: Economy.
        K_ss: Stationary capital (no aggregate risk) that centres the capital grid
            and is the ``fixed`` initial distribution's mean.
        dist_ss: ``(n_a, n_e)`` stationary distribution used as the ``fixed`` start
            (e.g. from :func:`abm_markets.solvers.aiyagari.solve_stationary` on the same grid).

    Table ``savings_logit``: ``(n_z, n_K, n_a, n_e)``.
    """

    def __init__(
        self,
        cfg: KSEconomyConfig,
        *,
        K_ss: float,
        dist_ss: Tensor,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.cfg = cfg
        self.beta = cfg.beta
        self.device = torch.device(device)
        self.dtype = dtype
        loge, Pe = grids.rouwenhorst(cfg.n_e, cfg.rho_e, cfg.sd_e)
        e = torch.exp(loge)
        pi_e = grids.stationary_distribution(Pe)
        e = e / (pi_e @ e)
        logz, Pz = grids.rouwenhorst(cfg.n_z, cfg.rho_z, cfg.sd_z)
        self.a64 = grids.asset_grid(0.0, cfg.a_max, cfg.n_a, power=cfg.grid_power)
        self.K64 = torch.linspace(K_ss * (1 - cfg.K_width), K_ss * (1 + cfg.K_width), cfg.n_K, dtype=torch.float64)
        self.e64, self.Pe64, self.pi_e64, self.z64, self.Pz64 = e, Pe, pi_e, torch.exp(logz), Pz
        kw = {"device": self.device, "dtype": dtype}
        self.a, self.K_grid, self.e, self.Pe = self.a64.to(**kw), self.K64.to(**kw), e.to(**kw), Pe.to(**kw)
        self.z = self.z64.to(**kw)
        self.agg_transition = Pz.to(**kw)
        self.K_ss = K_ss
        self.dist_ss = (dist_ss / dist_ss.sum()).to(**kw)
        self.a_max = float(self.a64[-1])

    # ------------------------------------------------------------------ economics blocks
    def firm(self, K: Tensor, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(r, w, Y)``: marginal products of ``Y = z K^alpha`` (L = 1)."""
        Y = z * K.pow(self.cfg.alpha)
        return self.cfg.alpha * Y / K - self.cfg.delta, (1.0 - self.cfg.alpha) * Y, Y

    def utility(self, c: Tensor) -> Tensor:
        """CRRA utility."""
        s = self.cfg.sigma
        return torch.log(c) if s == 1.0 else c.pow(1.0 - s) / (1.0 - s)

    def _grid_cash(self) -> Tensor:
        """Cash on hand at every table cell, ``(n_z, n_K, n_a, n_e)``."""
        r, w, _ = self.firm(self.K_grid[None, :], self.z[:, None])  # (n_z, n_K)
        return (1.0 + r)[..., None, None] * self.a[:, None] + w[..., None, None] * self.e

    def savings_table(self, params: Mapping[str, Tensor]) -> Tensor:
        """``a'`` at every table cell ``(n_z, n_K, n_a, n_e)``."""
        return torch.clamp(torch.sigmoid(params["savings_logit"]) * self._grid_cash(), max=self.a_max)

    # ------------------------------------------------------------------ protocol
    def init_params(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        """Start from "keep assets" ``a' = a`` (share clipped to [0.05, 0.95])."""
        x = self._grid_cash().double()
        share = (self.a64[:, None] / x).clamp(0.05, 0.95)
        return {"savings_logit": torch.logit(share).to(device=device, dtype=dtype)}

    def param_groups(self) -> dict[str, tuple[str, ...]]:
        return {"household": ("savings_logit",)}

    def initial_distribution(
        self, n: int, kind: str, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """``fixed``: the stationary distribution. ``random``: per path a gamma-shaped
        wealth density (shape in [1, 3]) with mean uniform in the capital grid's range.

        The efficiency marginal is always the stationary ``pi_e``, so labour supply
        ``L = sum g e = 1`` in every period (it is a population fact, not a choice).
        """
        if kind == "fixed":
            return self.dist_ss.to(device=device, dtype=dtype).expand(n, -1, -1).clone()
        a = self.a.to(device=device, dtype=dtype)
        dens = grids.random_wealth(a, n, float(self.K64[0]), float(self.K64[-1]), generator)
        return dens[:, :, None] * self.pi_e64.to(device=device, dtype=dtype)[None, None, :]

    def initial_carry(self, n: int, z0: Tensor, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        return {}

    def prepare(self, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Saving shares ``sigmoid(theta)`` once per rollout (with gradient)."""
        return {"share": torch.sigmoid(params["savings_logit"])}

    def period(self, inp: PeriodInput) -> PeriodOutput:
        """Prices from the given capital, consume and save, push the distribution forward."""
        g = inp.given_dist
        with torch.no_grad():  # price taking
            K = (g.sum(2) * self.a).sum(1)
            j, wK = grids.interp_weights(K, self.K_grid)
        z = self.z.index_select(0, inp.z)
        r, w, Y = self.firm(K, z)
        share = interp_axis1(take_agg(inp.prepared["share"], inp.z), j, wK)  # (N, n_a, n_e)
        x = (1.0 + r)[:, None, None] * self.a[:, None] + w[:, None, None] * self.e
        a_next = torch.clamp(share * x, max=self.a_max)
        c = x - a_next
        reward = (inp.dist * self.utility(c)).sum(dim=(1, 2))
        with torch.no_grad():
            C = (c.detach() * g).sum(dim=(1, 2))
            K_next = (a_next.detach() * g).sum(dim=(1, 2))
            log = {
                "K": K,
                "C": C,
                "Y": Y,
                "r": r,
                "w": w,
                "z": z,
                "K_off_grid": ((self.K_grid[0] > K) | (self.K_grid[-1] < K)).to(K.dtype),
                # goods market: C + K' = Y + (1 - delta) K (exact up to rounding; a' is kept inside the grid)
                "resid_goods": C + K_next - Y - (1.0 - self.cfg.delta) * K,
            }
        jn, wn = grids.lottery(a_next, self.a, power=self.cfg.grid_power)
        return PeriodOutput(
            dist_next=grids.push_forward(inp.dist, jn, wn, self.Pe), reward={"household": reward}, log=log
        )

    def policy_values(self, params: Mapping[str, Tensor]) -> Tensor:
        """Savings ``a'`` at every table cell."""
        return self.savings_table(params)

    # ------------------------------------------------------------------ evaluation helpers
    def savings_fn(self, params: Mapping[str, Tensor]):
        """``fn(K, z_index) -> a' (n_a, n_e)`` float64, interpolating the table along K (clamped)."""
        tab = self.savings_logit_to_policy(params)

        def fn(K, zi: int) -> Tensor:
            Kt = torch.as_tensor(K, dtype=torch.float64).reshape(1)
            j, w = grids.interp_weights(Kt, self.K64)
            share = interp_axis1(tab[zi][None], j, w)[0]
            r, wage, _ = self.firm(Kt.to(torch.float64), self.z64[zi])
            x = (1.0 + r) * self.a64[:, None] + wage * self.e64
            return torch.clamp(share * x, max=self.a_max)

        return fn

    def savings_batch(self, params: Mapping[str, Tensor]):
        """``fn(K (B,), z_index (B,)) -> a' (B, n_a, n_e)`` float64: :meth:`savings_fn` for many economies at once."""
        tab = self.savings_logit_to_policy(params)

        def fn(K: Tensor, zi: Tensor) -> Tensor:
            K = K.to(torch.float64)
            j, w = grids.interp_weights(K, self.K64)
            share = interp_axis1(tab.index_select(0, zi), j, w)
            r, wage, _ = self.firm(K, self.z64[zi])
            x = (1.0 + r)[:, None, None] * self.a64[:, None] + wage[:, None, None] * self.e64
            return torch.clamp(share * x, max=self.a_max)

        return fn

    def savings_logit_to_policy(self, params: Mapping[str, Tensor]) -> Tensor:
        """Saving shares as a float64 CPU table ``(n_z, n_K, n_a, n_e)``."""
        return torch.sigmoid(params["savings_logit"].detach().double().cpu())
