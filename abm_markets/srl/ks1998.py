"""Krusell and Smith (1998), the paper's benchmark economy, for the structural-RL solver.

The economy is the one of :mod:`abm_markets.solvers.ks1998` (two aggregate
states, employment correlated with them through one joint Markov chain, log
utility, quarterly calibration). As in :mod:`abm_markets.srl.ks`, households
see prices, not the distribution: for a given aggregate state the capital grid
is a grid of prices ``(r(K, z), w(K, z))``, and the policy is a table of saving
shares over ``(z, K, k, eps)``::

    a' = sigmoid(theta[z, K, k, eps]) * x,     x = (1 + r) k + w l_bar eps

Each period ``K_t`` and employment are read off the given (detached) distribution, the share is
interpolated along the price axis, and the distribution is pushed forward by
Young's lottery and the employment transition conditional on ``(z_t, z_{t+1})``.
An unemployed household with no capital has no cash and consumes nothing;
utility is evaluated at ``max(c, 1e-10)`` there (its share has no effect on
anything, so the floor changes no gradient).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
from torch import Tensor

from abm_markets.solvers import ks1998
from abm_markets.srl import grids
from abm_markets.srl.solver import PeriodInput, PeriodOutput, interp_axis1, take_agg

__all__ = ["KS98Model"]

C_FLOOR = 1e-10


class KS98Model:
    """Krusell and Smith (1998) implementing :class:`~abm_markets.srl.solver.SRLModel`.

    Args:
        cal: Economy and grids (:class:`~abm_markets.solvers.ks1998.KS98Calibration`).
        dist0: ``(n_a, 2)`` distribution for ``fixed`` starts (e.g. the Krusell-Smith
            algorithm's last-period distribution on the same grid).

    Table ``savings_logit``: ``(2, n_K, n_a, 2)`` (aggregate state, capital, own capital, employment).
    """

    def __init__(
        self,
        cal: ks1998.KS98Calibration,
        *,
        dist0: Tensor,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ):
        self.cal = cal
        self.beta = cal.beta
        self.device = torch.device(device)
        self.dtype = dtype
        self.a64, self.K64, self.eps64 = ks1998._grids(cal)
        Pz, P = ks1998.transition(cal)
        kw = {"device": self.device, "dtype": dtype}
        self.a, self.K_grid, self.eps = self.a64.to(**kw), self.K64.to(**kw), self.eps64.to(**kw)
        self.agg_transition = Pz.to(**kw)
        self.cond = (P / Pz[:, None, :, None]).to(**kw)  # P(eps' | eps, z, z'), (z, eps, z', eps')
        self.z = torch.tensor([cal.z_bad, cal.z_good], **kw)
        self.L = torch.tensor([cal.l_bar * (1 - cal.u_bad), cal.l_bar * (1 - cal.u_good)], **kw)
        self.dist0 = (dist0 / dist0.sum()).to(**kw)
        self.a_max = float(self.a64[-1])

    # ------------------------------------------------------------------ economics blocks
    def firm(self, K: Tensor, z_index: Tensor, L: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """``(r, w, Y)``: marginal products of ``Y = z K^alpha L^(1 - alpha)`` (``L`` defaults to ``L(z)``)."""
        z = self.z[z_index]
        L = self.L[z_index] if L is None else L
        Y = z * K.pow(self.cal.alpha) * L.pow(1.0 - self.cal.alpha)
        return self.cal.alpha * Y / K - self.cal.delta, (1.0 - self.cal.alpha) * Y / L, Y

    def utility(self, c: Tensor) -> Tensor:
        """CRRA utility (log at ``sigma = 1``) at ``max(c, 1e-10)``."""
        c = c.clamp(min=C_FLOOR)
        s = self.cal.sigma
        return torch.log(c) if s == 1.0 else c.pow(1.0 - s) / (1.0 - s)

    def _grid_cash(self) -> Tensor:
        """Cash on hand at every table cell, ``(2, n_K, n_a, 2)``."""
        zi = torch.arange(2, device=self.device)
        r, w, _ = self.firm(self.K_grid[None, :], zi[:, None])  # (2, n_K)
        return (1.0 + r)[..., None, None] * self.a[:, None] + w[..., None, None] * self.cal.l_bar * self.eps

    # ------------------------------------------------------------------ protocol
    def init_params(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        """Start from "keep capital" ``a' = a`` (share clipped to [0.05, 0.95])."""
        x = self._grid_cash().double()
        share = (self.a64.to(x.device)[:, None] / x.clamp(min=1e-12)).clamp(0.05, 0.95)
        return {"savings_logit": torch.logit(share).to(device=device, dtype=dtype)}

    def param_groups(self) -> dict[str, tuple[str, ...]]:
        return {"household": ("savings_logit",)}

    def initial_distribution(
        self, n: int, kind: str, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """``fixed``: ``dist0``. ``random``: per path a gamma-shaped wealth density (shape in
        [1, 3]) with mean uniform in the capital grid's range; employment at its mean rate."""
        if kind == "fixed":
            return self.dist0.to(device=device, dtype=dtype).expand(n, -1, -1).clone()
        a = self.a.to(device=device, dtype=dtype)
        dens = grids.random_wealth(a, n, float(self.K64[0]), float(self.K64[-1]), generator)
        u_mean = 0.5 * (self.cal.u_bad + self.cal.u_good)
        emp = torch.tensor([u_mean, 1 - u_mean], device=device, dtype=dtype)
        return dens[:, :, None] * emp[None, None, :]

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
            L = self.cal.l_bar * g[:, :, 1].sum(1)  # = L(z) once employment has its rate (random starts differ)
            j, wK = grids.interp_weights(K, self.K_grid)
        r, w, Y = self.firm(K, inp.z, L)
        share = interp_axis1(take_agg(inp.prepared["share"], inp.z), j, wK)  # (N, n_a, 2)
        x = (1.0 + r)[:, None, None] * self.a[:, None] + (w * self.cal.l_bar)[:, None, None] * self.eps
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
                "z": self.z[inp.z],
                "K_off_grid": ((self.K_grid[0] > K) | (self.K_grid[-1] < K)).to(K.dtype),
                "resid_goods": C + K_next - Y - (1.0 - self.cal.delta) * K,
            }
        jn, wn = grids.lottery(a_next, self.a, power=self.cal.grid_power)
        P = self.cond[inp.z, :, inp.z_next, :]  # (N, 2, 2)
        return PeriodOutput(dist_next=grids.push_forward(inp.dist, jn, wn, P), reward={"household": reward}, log=log)

    def policy_values(self, params: Mapping[str, Tensor]) -> Tensor:
        """Savings ``a'`` at every table cell."""
        return torch.clamp(torch.sigmoid(params["savings_logit"]) * self._grid_cash(), max=self.a_max)

    # ------------------------------------------------------------------ evaluation helpers
    def savings_fn(self, params: Mapping[str, Tensor]):
        """``fn(K: float, z_index: int) -> ndarray (n_a, 2)`` float64 savings, the share table interpolated
        along ``K`` (clamped to the grid), as :func:`abm_markets.solvers.ks1998.simulate` takes it."""
        tab = torch.sigmoid(params["savings_logit"].detach().double().cpu()).numpy()
        a64, eps64, Kg = self.a64.numpy(), self.eps64.numpy(), self.K64.numpy()
        n, cal = Kg.shape[0], self.cal

        def fn(K: float, zi: int) -> np.ndarray:
            Kc = min(max(K, Kg[0]), Kg[-1])
            j = min(max(int(np.searchsorted(Kg, Kc)), 1), n - 1)
            s = (Kc - Kg[j - 1]) / (Kg[j] - Kg[j - 1])
            share = (1 - s) * tab[zi, j - 1] + s * tab[zi, j]
            r, wage, _ = (float(v) for v in ks1998.prices(K, zi, cal))
            x = (1.0 + r) * a64[:, None] + wage * cal.l_bar * eps64[None, :]
            return np.minimum(share * x, self.a_max)

        return fn
