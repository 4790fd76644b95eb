"""One-asset HANK with a forward-looking (Rotemberg) Phillips curve for the structural-RL solver.

Households learn savings, firms learn prices, simultaneously, by policy
gradient (Yang, Wang, Schaab and Moll, seed 002: "solve firm price-setting
problem using policy gradient", "symmetric treatment of firms and households").

Economy (one period; ``m`` is the monetary shock, TFP is 1)
------------------------------------------------------------
Households ``(b, e)``: bonds ``b >= 0`` and labour efficiency ``e`` (AR(1) in logs,
Rouwenhorst, ``E[e] = 1``), GHH preferences so that hours follow from the wage
alone (no wealth effect on labour supply)::

    max E sum_t beta^t u(c_t - chi n_t^(1+1/nu) / (1+1/nu)),   u CRRA(sigma)
    chi n^(1/nu) = w e   =>  n(e) = (w e / chi)^nu,   N^s(w) = sum_e pi_e e n(e)
    c + b' = R b + w e n(e) + e (d - tau),   b' >= 0

Firms: ``Y = N`` (TFP 1), real marginal cost ``mc = w``, demand elasticity
``epsilon``, Rotemberg cost ``theta/2 Pi^2 Y``; dividends ``d = Y - w N - theta/2 Pi^2 Y``
(paid in proportion to ``e``). Government: constant real debt ``B``, interest
paid by a tax ``tau = (R - 1) B`` (in proportion to ``e``). Central bank: a
Taylor rule on the real rate paid on bonds, ``R = R_ss (1 + Pi)^phi exp(m)``.
Markets: bonds ``int b' dG = B``; labour ``N = N^s(w)``; goods
``C = Y (1 - theta/2 Pi^2)`` (implied by the other two, reported as a check).

Prices and clearing
-------------------
Prices ``p = (R, w)`` live on a 2-D grid. Policies: households' saving share
``s(m, R, w, b, e)`` and firms' inflation ``Pi(m, R, w)``. Each period, for
every grid wage ``w_j`` the Taylor rule is cleared along ``R`` (the rate
``R*(w_j)`` at which ``R = R_ss (1 + Pi(m, R, w_j))^phi e^m``), then the bond
market along the curve ``(R*(w_j), w_j)``: excess bond supply is evaluated at
every grid price from the given (detached) distribution and the detached
policy, bracketed and interpolated (:func:`abm_markets.srl.grids.clear_on_grid`).
The policies are then evaluated at the cleared prices by interpolation between
the four grid corners (weights detached: price taking). With
``policy_interpolation = "savings"`` (default) the households' ``b'`` is
interpolated (each corner's ``b' = s x`` at that corner's prices), which is the
supply curve the clearing used, so the bond market clears exactly (and goods
by Walras' law); with ``"share"`` the saving share is interpolated and applied
to cash at the cleared prices, which leaves a residual of second order in the
grid spacing (max 1.2e-3 goods, 1.4e-3 bonds on the default grid, about half
of output's impact response; docs/irf_ssj.md, HANK).

Firms' objective
----------------
A firm's own log relative price is ``x_t = log(1 + Pi_own,t) - log(1 + Pi_t)``
(``Pi_own`` from the table, with gradient; ``Pi_t`` the aggregate, detached;
``x = 0`` numerically in the symmetric equilibrium, only its derivative
matters). Its period payoff, discounted by ``D_t = prod_{s<=t} 1/R_s``::

    D_t [ (e^x_t - mc_t) e^(-epsilon x_t) Y_t - theta/2 ((1 + Pi_t) e^(x_t - x_{t-1}) - 1)^2 Y_t ].

Its derivative in ``x_t`` at ``x = 0`` is the Rotemberg first-order condition
``(1 - eps) + eps mc_t - theta Pi_t (1 + Pi_t) + E[D_{t+1}/D_t (Y_{t+1}/Y_t) theta
Pi_{t+1} (1 + Pi_{t+1})] = 0``, i.e. the slide's Phillips curve
``Pi ~ eps/theta (w/z - m*) + E[R'^-1 Y'/Y Pi']``: gradient ascent on this payoff
learns the forward-looking Phillips curve without parameterising expectations.

Adapter note: the generic solver detaches ``carry`` between periods, but
``x_{t-1}`` must keep its gradient for one period. :class:`HANKModel` keeps it
in ``self._x_prev`` between consecutive ``period`` calls of one rollout (reset
by ``prepare``, used only when the period index is consecutive). A solver
option to keep the gradient of selected carry entries would remove this.

Calibration (defaults): the SRL paper's HANK values where the issue gives them
(Rotemberg ``theta = 100``, ``epsilon = 10``, Taylor ``phi = 1.5``, ``R_ss =
1.025``, ``B = 5``); the rest are this project's choices, documented in
``docs/srl_ks_hank.md``: ``sigma = 2``, Frisch ``nu = 1``, efficiency as in
Krusell-Smith, monetary shock AR(1) ``rho = 0.6``, innovation sd 0.0025 on 3
Rouwenhorst states, ``chi`` such that ``N = 1`` at ``w = m* = (eps-1)/eps``,
and ``beta`` calibrated (EGM + bisection) so that bond demand equals ``B`` at
``R_ss`` in the steady state.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import torch
from torch import Tensor

from abm_markets.config import Config, param
from abm_markets.errors import ConfigError
from abm_markets.srl import grids
from abm_markets.srl.solver import PeriodInput, PeriodOutput

__all__ = ["HANKEconomyConfig", "HANKModel", "calibrate_beta", "simulate_path"]


@dataclasses.dataclass(frozen=True, kw_only=True)
class HANKEconomyConfig(Config):
    """Economy and grids of the one-asset HANK model."""

    beta: float | None = param(None, "Discount factor (None: calibrated so that bond demand = B at R_ss).", gt=0, lt=1)
    sigma: float = param(2.0, "CRRA of the GHH composite.", gt=0.0)
    frisch: float = param(1.0, "Frisch elasticity nu of labour supply.", gt=0.0)
    rho_e: float = param(0.6, "Persistence of log labour efficiency.", ge=0.0, lt=1.0)
    sd_e: float = param(0.2, "Innovation sd of log labour efficiency.", ge=0.0)
    n_e: int = param(3, "Rouwenhorst states of labour efficiency.", ge=1)
    theta: float = param(100.0, "Rotemberg price-adjustment cost.", gt=0.0)
    epsilon: float = param(10.0, "Elasticity of substitution between goods.", gt=1.0)
    phi_pi: float = param(1.5, "Taylor-rule coefficient on inflation.", ge=0.0)
    R_ss: float = param(1.025, "Steady-state gross real rate.", gt=1.0)
    bond_supply: float = param(5.0, "Real government debt B.", gt=0.0)
    rho_m: float = param(0.6, "Persistence of the monetary shock.", ge=0.0, lt=1.0)
    sd_m: float = param(0.0025, "Innovation sd of the monetary shock (log points of R).", ge=0.0)
    n_m: int = param(3, "Rouwenhorst states of the monetary shock.", ge=2)
    b_max: float = param(50.0, "Top of the bond grid (borrowing limit 0).", gt=0.0)
    n_b: int = param(100, "Bond grid points.", ge=10)
    grid_power: float = param(2.0, "Bond grid curvature.", ge=1.0)
    R_min: float = param(1.005, "Lowest gross rate of the price grid.", gt=0.0)
    R_max: float = param(1.045, "Highest gross rate of the price grid.", gt=0.0)
    n_R: int = param(9, "Rate points of the price grid.", ge=2)
    w_min: float = param(0.80, "Lowest wage of the price grid.", gt=0.0)
    w_max: float = param(1.00, "Highest wage of the price grid.", gt=0.0)
    n_w: int = param(9, "Wage points of the price grid.", ge=2)
    firm_scale: float = param(0.01, "Inflation per unit of the firms' table (Pi = firm_scale * theta_f).", gt=0.0)
    init_price_slope: float = param(3.0, "Initial households' logit slope across the rate grid.", ge=0.0)
    policy_interpolation: str = param(
        "savings",
        "What is interpolated between the four price-grid corners: savings b' (the bond market then clears exactly"
        " on the interpolated supply curve) or the saving share (b' = share x at the cleared prices; leaves a"
        " residual of second order in the grid spacing).",
        choices=("savings", "share"),
    )

    def validate(self) -> None:
        if self.R_max <= self.R_min or self.w_max <= self.w_min:
            raise ConfigError("HANKEconomyConfig price grid is invalid; expected R_max > R_min and w_max > w_min")
        if not self.R_min < self.R_ss < self.R_max:
            raise ConfigError(f"HANKEconomyConfig.R_ss = {self.R_ss} is invalid; expected inside [R_min, R_max]")
        m_star = (self.epsilon - 1) / self.epsilon
        if not self.w_min < m_star < self.w_max:
            raise ConfigError(
                f"HANKEconomyConfig wage grid [{self.w_min}, {self.w_max}] is invalid; expected it to contain"
                f" the steady-state wage (epsilon-1)/epsilon = {m_star:.4f}"
            )


def _income_parts(cfg: HANKEconomyConfig, e: Tensor, pi_e: Tensor):
    """``chi`` and ``S = sum pi e^(1+nu)`` with ``N^s(m*) = 1``."""
    nu = cfg.frisch
    S = float(pi_e @ e ** (1 + nu))
    m_star = (cfg.epsilon - 1) / cfg.epsilon
    chi = m_star * S ** (1 / nu)
    return chi, S


def calibrate_beta(cfg: HANKEconomyConfig, tol: float = 1e-7) -> tuple[float, Tensor, Tensor]:
    """Discount factor with stationary bond demand ``= B`` at ``R_ss`` (EGM + Young + bisection).

    Returns:
        ``(beta, dist (n_b, n_e), b_next (n_b, n_e))`` of the steady state.
    """
    from abm_markets.solvers.aiyagari import egm_policy, stationary_distribution

    loge, Pe = grids.rouwenhorst(cfg.n_e, cfg.rho_e, cfg.sd_e)
    e = torch.exp(loge)
    pi_e = grids.stationary_distribution(Pe)
    e = e / (pi_e @ e)
    b = grids.asset_grid(0.0, cfg.b_max, cfg.n_b, power=cfg.grid_power)
    y = steady_income(cfg, e, pi_e)
    lo, hi = 0.5, 1.0 / cfg.R_ss - 1e-6
    c = None
    while hi - lo > tol:
        beta = 0.5 * (lo + hi)
        b_next, c, _ = egm_policy(b, y, Pe, cfg.R_ss - 1.0, 1.0, beta, cfg.sigma, tol=1e-10, c_init=c)
        g, _ = stationary_distribution(b, b_next, Pe)
        if float((g * b[:, None]).sum()) > cfg.bond_supply:
            hi = beta
        else:
            lo = beta
    beta = 0.5 * (lo + hi)
    b_next, _, _ = egm_policy(b, y, Pe, cfg.R_ss - 1.0, 1.0, beta, cfg.sigma, tol=1e-10, c_init=c)
    g, _ = stationary_distribution(b, b_next, Pe)
    return beta, g, b_next


def steady_income(cfg: HANKEconomyConfig, e: Tensor, pi_e: Tensor) -> Tensor:
    """Non-asset income of the GHH composite at the steady state (Pi = 0, w = m*, N = 1), ``(n_e,)``."""
    chi, _ = _income_parts(cfg, e, pi_e)
    w = (cfg.epsilon - 1) / cfg.epsilon
    nu = cfg.frisch
    n = (w * e / chi) ** nu
    d = 1.0 - w
    tau = (cfg.R_ss - 1.0) * cfg.bond_supply
    return w * e * n / (1 + nu) + e * (d - tau)


class HANKModel:
    """HANK economy implementing :class:`~abm_markets.srl.solver.SRLModel` with two policy groups.

    Tables: ``savings_logit`` ``(n_m, n_R, n_w, n_b, n_e)`` (households) and
    ``inflation`` ``(n_m, n_R, n_w)`` (firms; ``Pi = firm_scale * table``).
    """

    def __init__(self, cfg: HANKEconomyConfig, *, device: torch.device | str = "cpu", dtype=torch.float32):
        self.cfg = cfg
        self.device = torch.device(device)
        self.dtype = dtype
        if cfg.beta is None:
            beta, dist_ss, b_next_ss = calibrate_beta(cfg)
        else:
            from abm_markets.solvers.aiyagari import egm_policy, stationary_distribution

            beta = cfg.beta
            loge, Pe = grids.rouwenhorst(cfg.n_e, cfg.rho_e, cfg.sd_e)
            e0 = torch.exp(loge)
            pi0 = grids.stationary_distribution(Pe)
            e0 = e0 / (pi0 @ e0)
            b = grids.asset_grid(0.0, cfg.b_max, cfg.n_b, power=cfg.grid_power)
            b_next_ss, _, _ = egm_policy(b, steady_income(cfg, e0, pi0), Pe, cfg.R_ss - 1, 1.0, beta, cfg.sigma)
            dist_ss, _ = stationary_distribution(b, b_next_ss, Pe)
        self.beta = float(beta)
        loge, Pe = grids.rouwenhorst(cfg.n_e, cfg.rho_e, cfg.sd_e)
        e = torch.exp(loge)
        pi_e = grids.stationary_distribution(Pe)
        e = e / (pi_e @ e)
        self.chi, self.S = _income_parts(cfg, e, pi_e)
        m, Pm = grids.rouwenhorst(cfg.n_m, cfg.rho_m, cfg.sd_m)
        kw = {"device": self.device, "dtype": dtype}
        self.b64 = grids.asset_grid(0.0, cfg.b_max, cfg.n_b, power=cfg.grid_power)
        self.e64, self.Pe64, self.pi_e64, self.m64, self.Pm64 = e, Pe, pi_e, m, Pm
        self.b, self.e, self.Pe, self.pi_e, self.m = (t.to(**kw) for t in (self.b64, e, Pe, pi_e, m))
        self.agg_transition = Pm.to(**kw)
        self.R_grid = torch.linspace(cfg.R_min, cfg.R_max, cfg.n_R, **kw)
        self.w_grid = torch.linspace(cfg.w_min, cfg.w_max, cfg.n_w, **kw)
        self.dist_ss = dist_ss.to(**kw)
        self.b_next_ss = b_next_ss.to(**kw)
        self.m_star = (cfg.epsilon - 1) / cfg.epsilon
        self._x_prev: tuple[int, Tensor] | None = None

    # ------------------------------------------------------------------ economics blocks
    def labour(self, w: Tensor) -> tuple[Tensor, Tensor]:
        """``(n(e) (..., n_e), N^s(w) (...))``: GHH hours per efficiency state and aggregate efficiency hours."""
        nu = self.cfg.frisch
        n = (w[..., None] * self.e / self.chi) ** nu
        return n, (w / self.chi) ** nu * self.S

    def income(self, R: Tensor, w: Tensor, Pi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Non-asset income of the GHH composite per efficiency state ``(..., n_e)``, plus ``(Y, n)``.

        ``y(e) = w e n(e) / (1 + nu) + e (d - tau)``, ``d = Y (1 - w - theta/2 Pi^2)``,
        ``tau = (R - 1) B``, ``Y = N^s(w)``.
        """
        n, N = self.labour(w)
        Y = N
        d = Y * (1.0 - w - 0.5 * self.cfg.theta * Pi**2)
        tau = (R - 1.0) * self.cfg.bond_supply
        y = w[..., None] * self.e * n / (1 + self.cfg.frisch) + self.e * (d - tau)[..., None]
        return y, Y, n

    def taylor(self, Pi: Tensor, m: Tensor) -> Tensor:
        """``R_ss (1 + Pi)^phi exp(m)``."""
        return self.cfg.R_ss * (1.0 + Pi) ** self.cfg.phi_pi * torch.exp(m)

    def utility(self, k: Tensor) -> Tensor:
        s = self.cfg.sigma
        k = k.clamp_min(1e-8)
        return torch.log(k) if s == 1.0 else k.pow(1.0 - s) / (1.0 - s)

    def _grid_cash(self, Pi_tab: Tensor) -> Tensor:
        """Cash ``R b + y(e)`` at every household table cell ``(n_m, n_R, n_w, n_b, n_e)``."""
        R = self.R_grid.view(1, -1, 1)
        w = self.w_grid.view(1, 1, -1)
        y, _, _ = self.income(R.expand_as(Pi_tab), w.expand_as(Pi_tab), Pi_tab)  # (n_m, n_R, n_w, n_e)
        x = R[..., None, None] * self.b[:, None] + y[..., None, :]
        return x.clamp_min(1e-6)

    # ------------------------------------------------------------------ protocol
    def init_params(self, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        """Households: the steady-state EGM saving share at every price plus a slope in R; firms: Pi = 0."""
        shape = (self.cfg.n_m, self.cfg.n_R, self.cfg.n_w)
        Pi0 = torch.zeros(shape, dtype=self.dtype, device=self.device)
        x = self._grid_cash(Pi0).double().cpu()
        b_ss = self.b_next_ss.double().cpu()
        y = steady_income(self.cfg, self.e64, self.pi_e64)
        x_ss = self.cfg.R_ss * self.b64[:, None] + y
        share = (b_ss / x_ss).clamp(1e-4, 1 - 1e-4)
        logit = torch.logit(share).expand(*shape, -1, -1).clone()
        R = self.R_grid.double().cpu().view(1, -1, 1, 1, 1)
        lo, hi = self.cfg.R_min, self.cfg.R_max
        logit = logit + self.cfg.init_price_slope * (R - (lo + hi) / 2) / (hi - lo)
        del x
        return {
            "savings_logit": logit.to(device=device, dtype=dtype),
            "inflation": torch.zeros(shape, device=device, dtype=dtype),
        }

    def param_groups(self) -> dict[str, tuple[str, ...]]:
        return {"household": ("savings_logit",), "firm": ("inflation",)}

    def initial_distribution(
        self, n: int, kind: str, generator: torch.Generator, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """``fixed``: the steady state. ``random``: gamma-shaped bond densities with mean uniform in
        ``[0.6 B, 1.4 B]``; the efficiency marginal is always the stationary one."""
        if kind == "fixed":
            return self.dist_ss.to(device=device, dtype=dtype).expand(n, -1, -1).clone()
        b = self.b.to(device=device, dtype=dtype)
        u = torch.rand(n, 2, generator=generator, device=device, dtype=dtype)
        B = self.cfg.bond_supply
        mean = B * (0.6 + 0.8 * u[:, :1])
        shape = 0.5 + 1.5 * u[:, 1:2]
        dens = torch.exp((shape - 1) * torch.log(b[None, :] + 1e-3) - b[None, :] * shape / mean)
        dens = dens * torch.diff(b, prepend=b[:1] - (b[1] - b[0]))[None, :]
        dens = dens / dens.sum(1, keepdim=True)
        return dens[:, :, None] * self.pi_e.to(device=device, dtype=dtype)[None, None, :]

    def initial_carry(self, n: int, z0: Tensor, device: torch.device, dtype: torch.dtype) -> dict[str, Tensor]:
        return {"disc": torch.ones(n, device=device, dtype=dtype)}

    def prepare(self, params: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """Per rollout: shares and inflation (with gradient); detached bond supply and Taylor tables."""
        self._x_prev = None
        share = torch.sigmoid(params["savings_logit"])
        Pi_tab = self.cfg.firm_scale * params["inflation"]
        with torch.no_grad():
            x = self._grid_cash(Pi_tab.detach())
            b_grid = torch.clamp(share.detach() * x, max=float(self.b64[-1]))
            nm, nR, nw = Pi_tab.shape
            taylor_gap = self.R_grid.view(1, -1, 1) - self.taylor(Pi_tab.detach(), self.m.view(-1, 1, 1))
        return {
            "share": share,
            "Pi": Pi_tab,
            "cash_grid": x,
            "b_grid": b_grid.reshape(nm, nR * nw, -1),
            "taylor_gap": taylor_gap,
        }

    def clear(self, g: Tensor, mi: Tensor, prepared: Mapping[str, Tensor]):
        """Cleared prices and the four interpolation corners for distributions ``g (N, n_b, n_e)``.

        Returns:
            ``(R, w, corners, bracketed)`` with ``corners = [(i_R (N,), j_w (N,), weight (N,)), ...]``.
        """
        N = g.shape[0]
        nR, nw = self.cfg.n_R, self.cfg.n_w
        with torch.no_grad():
            gap = prepared["taylor_gap"].index_select(0, mi)  # (N, nR, nw)
            tc = grids.clear_on_grid(gap.transpose(1, 2).reshape(N * nw, nR), self.R_grid)
            iR, aR = tc.j.view(N, nw), tc.w.view(N, nw)
            Rstar = tc.price.view(N, nw)
            supply = torch.bmm(prepared["b_grid"].index_select(0, mi), g.reshape(N, -1, 1)).view(N, nR, nw)
            s0 = supply.gather(1, iR[:, None]).squeeze(1)
            s1 = supply.gather(1, (iR + 1)[:, None]).squeeze(1)
            s_curve = s0 + aR * (s1 - s0)  # (N, nw)
            bc = grids.clear_on_grid(s_curve - self.cfg.bond_supply, self.w_grid)
            jw, om = bc.j, bc.w
            w = bc.price
            ar = torch.arange(N, device=g.device)
            R = (1 - om) * Rstar[ar, jw] + om * Rstar[ar, jw + 1]
            corners = []
            for dj, wj in ((0, 1 - om), (1, om)):
                i = iR[ar, jw + dj]
                a = aR[ar, jw + dj]
                corners += [(i, jw + dj, wj * (1 - a)), (i + 1, jw + dj, wj * a)]
            tb = tc.bracketed.view(N, nw)
            used = tb[ar, jw] & tb[ar, jw + 1]
        return R, w, corners, bc.bracketed & used

    def period(self, inp: PeriodInput) -> PeriodOutput:
        """Clear Taylor rule and bond market on the price grid, then households and firms act."""
        cfg = self.cfg
        g = inp.given_dist
        mi = inp.z
        R, w, corners, bracketed = self.clear(g, mi, inp.prepared)
        share_tab, Pi_tab = inp.prepared["share"], inp.prepared["Pi"]
        nR, nw = cfg.n_R, cfg.n_w
        flat_share = share_tab.reshape(-1, *share_tab.shape[3:])
        flat_cash = inp.prepared["cash_grid"].reshape(flat_share.shape)
        flat_Pi = Pi_tab.reshape(-1)
        b_max = float(self.b64[-1])
        savings = cfg.policy_interpolation == "savings"
        policy = 0.0  # interpolated b' (savings) or saving share
        Pi_own = 0.0
        for i, j, wt in corners:
            row = (mi * nR + i) * nw + j
            corner = flat_share.index_select(0, row)
            if savings:  # b' at the corner's prices, exactly as in the clearing's supply curve
                corner = torch.clamp(corner * flat_cash.index_select(0, row), max=b_max)
            policy = policy + wt.view(-1, 1, 1) * corner
            Pi_own = Pi_own + wt * flat_Pi.index_select(0, row)
        Pi = Pi_own.detach()
        y, Y, n = self.income(R, w, Pi)
        x = (R.view(-1, 1, 1) * self.b[:, None] + y[:, None, :]).clamp_min(1e-6)
        b_next = torch.minimum(policy, x - 1e-6) if savings else torch.clamp(policy * x, max=b_max)
        k = x - b_next
        hh_reward = (inp.dist * self.utility(k)).sum(dim=(1, 2))
        # firms: own relative price with gradient, aggregate detached; stochastic discount D_t
        disc = torch.ones_like(R) if inp.t == 0 else inp.carry["disc"] / R
        xr = torch.log1p(Pi_own) - torch.log1p(Pi)
        prev = self._x_prev
        x_prev = prev[1] if prev is not None and prev[0] == inp.t - 1 and prev[1].shape == xr.shape else 0.0
        self._x_prev = (inp.t, xr)
        p_rel = torch.exp(xr)
        profit = (p_rel - w) * torch.exp(-cfg.epsilon * xr) * Y
        cost = 0.5 * cfg.theta * ((1 + Pi) * torch.exp(xr - x_prev) - 1.0) ** 2 * Y
        firm_reward = disc / self.beta**inp.t * (profit - cost)
        with torch.no_grad():
            m = self.m.index_select(0, mi)
            h = cfg.frisch / (1 + cfg.frisch) * w[:, None] * self.e * n  # disutility in goods, (N, n_e)
            C = (k.detach() * g).sum(dim=(1, 2)) + (g.sum(1) * h).sum(1)
            B_next = (b_next.detach() * g).sum(dim=(1, 2))
            log = {
                "R": R,
                "w": w,
                "Pi": Pi,
                "Y": Y,
                "C": C,
                "m": m,
                "B_next": B_next,
                "bracketed": bracketed.to(R.dtype),
                "resid_bond": B_next - cfg.bond_supply,
                "resid_goods": C - Y * (1 - 0.5 * cfg.theta * Pi**2),
                "resid_taylor": R - self.taylor(Pi, m),
            }
        jn, wn = grids.lottery(b_next, self.b, power=cfg.grid_power)
        return PeriodOutput(
            dist_next=grids.push_forward(inp.dist, jn, wn, self.Pe),
            reward={"household": hh_reward, "firm": firm_reward},
            carry={"disc": disc},
            log=log,
        )

    def policy_values(self, params: Mapping[str, Tensor]) -> Tensor:
        """Households' ``b'`` at every cell and firms' inflation in percent (100 Pi),
        concatenated: the convergence criterion covers both policies."""
        Pi_tab = self.cfg.firm_scale * params["inflation"]
        b = torch.clamp(torch.sigmoid(params["savings_logit"]) * self._grid_cash(Pi_tab), max=float(self.b64[-1]))
        return torch.cat([b.reshape(-1), 100.0 * Pi_tab.reshape(-1)])

    # ------------------------------------------------------------------ diagnostics
    def phillips_residual(self, params: Mapping[str, Tensor], dists: Tensor, m_path: Tensor) -> Tensor:
        """Rotemberg Phillips-curve residual along a path, with the exact expectation over ``m'``.

        ``Pi(1+Pi) - eps/theta (w - m*) - sum_m' P(m, m') (Y'/Y) / R' Pi'(1+Pi')``, where
        tomorrow's prices clear the markets with tomorrow's (known) distribution for each ``m'``.

        Args:
            dists: ``(T + 1, n_b, n_e)`` distributions at the start of periods ``0..T``.
            m_path: ``(T,)`` monetary-shock states.

        Returns:
            ``(T,)`` residuals (inflation units).
        """
        cfg = self.cfg
        with torch.no_grad():
            prep = self.prepare(params)
            T = m_path.shape[0]
            nm = cfg.n_m

            def outcome(g: Tensor, mi: Tensor):
                R, w, corners, _ = self.clear(g, mi, prep)
                Pi = sum(wt * prep["Pi"].reshape(-1).index_select(0, (mi * cfg.n_R + i) * cfg.n_w + j)
                         for i, j, wt in corners)  # fmt: skip
                _, Y = self.labour(w)
                return R, w, Pi, Y

            _, w, Pi, Y = outcome(dists[:T], m_path)
            gn = dists[1 : T + 1].repeat_interleave(nm, 0)
            mn = torch.arange(nm, device=m_path.device).repeat(T)
            Rn, _, Pin, Yn = outcome(gn, mn)
            fut = ((Yn / Y.repeat_interleave(nm)) / Rn * Pin * (1 + Pin)).view(T, nm)
            E = (self.agg_transition.index_select(0, m_path) * fut).sum(1)
            self._x_prev = None
            return Pi * (1 + Pi) - cfg.epsilon / cfg.theta * (w - self.m_star) - E


def simulate_path(model: HANKModel, params: Mapping[str, Tensor], m_path: Tensor, dist0: Tensor):
    """Simulate paths without gradient and keep every period's distribution.

    Args:
        m_path: ``(N, T + 1)`` monetary-shock states.
        dist0: ``(N, n_b, n_e)``.

    Returns:
        ``(logs, dists)``: name -> ``(N, T)`` and ``(N, T + 1, n_b, n_e)``.
    """
    with torch.no_grad():
        prep = model.prepare(params)
        dist = dist0
        carry = model.initial_carry(dist0.shape[0], m_path[:, 0], dist0.device, dist0.dtype)
        logs: dict[str, list[Tensor]] = {}
        dists = [dist]
        for t in range(m_path.shape[1] - 1):
            out = model.period(PeriodInput(t, m_path[:, t], m_path[:, t + 1], dist, carry, params, prep))
            for k, v in out.log.items():
                logs.setdefault(k, []).append(v)
            dist, carry = out.dist_next, dict(out.carry)
            dists.append(dist)
        model._x_prev = None
    return {k: torch.stack(v, 1) for k, v in logs.items()}, torch.stack(dists, 1)
