"""Outside oracle for the HANK impulse responses: the project's HANK built in ``sequence-jacobian``.

Auclert, Bardóczy, Rognlie and Straub (2021), "Using the Sequence-Space Jacobian
to Solve and Estimate Heterogeneous-Agent Models", Econometrica 89(5);
``sequence-jacobian`` 1.0.0 (a ``dev`` extra). The economy is the one of
:mod:`abm_markets.srl.hank` (one-asset HANK, GHH households, Rotemberg firms,
Taylor rule on the real rate, constant real debt), written as SSJ blocks:

* ``household`` — a het block of this module's own (EGM on the marginal value of
  the GHH composite ``k = c - chi n^(1+1/nu)/(1+1/nu)``, borrowing limit 0) with a
  hetinput ``income(w, d, tau, e_grid, chi, frisch) -> y, h``:
  ``y(e) = w e n(e) / (1+nu) + e (d - tau)``, ``h(e) = nu/(1+nu) w e n(e)``,
  ``n(e) = (w e / chi)^nu``; outputs bonds ``A = int a' dG`` and consumption
  ``C = int (k + h) dG``.
* ``firm(w, Pi, chi, frisch, S, theta) -> N, Y, d``: ``N = (w/chi)^nu S``, ``Y = N``,
  ``d = Y (1 - w - theta/2 Pi^2)``.
* ``taylor(Pi, m, R_ss, phi_pi) -> R``: ``R = R_ss (1 + Pi)^phi e^m``.
* ``fiscal(R, B) -> tau``: ``tau = (R - 1) B``.
* ``nkpc(Pi, w, Y, R, epsilon, theta) -> nkpc_res``: the Rotemberg first-order condition
  ``Pi (1+Pi) - eps/theta (w - (eps-1)/eps) - Y'/(Y R') Pi' (1+Pi')``.
* ``markets(A, B, C, Y, Pi, theta) -> asset_mkt, goods_mkt``.

Timing as in the project: ``R_t`` is paid in period ``t`` on the bonds chosen in
``t - 1`` and is set by the Taylor rule on ``Pi_t``. The grids (bonds, efficiency
states and their transition matrix) are the project's; SSJ solves its own steady
state (``beta`` and ``w`` for ``asset_mkt = nkpc_res = 0`` at ``R_ss``, ``Pi = 0``), its
own household problem and its own Jacobians. Nothing of the SRL code is reused.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from abm_markets.errors import UserError
from abm_markets.srl import grids
from abm_markets.srl.hank import HANKEconomyConfig

__all__ = ["VARIABLES", "HANKSSJResult", "hank_ssj", "shock_chain"]

VARIABLES = ("R", "Pi", "Y", "C", "w")
"""Variables compared with the SRL responses."""


@dataclasses.dataclass(frozen=True)
class HANKSSJResult:
    """SSJ's answer for one calibration.

    Attributes:
        steady: steady-state values ``beta, R, w, Y, C, N, A, d, tau`` and SSJ's residuals
            ``asset_mkt, goods_mkt, nkpc_res``.
        m_top: the monetary shock's top Rouwenhorst state (the impulse of ``hank-srl``).
        rho_m: the AR(1) coefficient of the project's shock chain, ``E[m' | m] = rho_m m``.
        linear: first-order responses to ``m_t = rho_m^t`` (per unit ``m_0``), each ``(T,)``.
        nonlinear: for each requested ``m_0``, SSJ's own nonlinear (Newton) responses to
            ``m_t = rho_m^t m_0``, divided by ``m_0``.
    """

    steady: dict[str, float]
    m_top: float
    rho_m: float
    linear: dict[str, np.ndarray]
    nonlinear: dict[float, dict[str, np.ndarray]]


def shock_chain(cfg: HANKEconomyConfig) -> tuple[float, float]:
    """``(m_top, rho)`` of the project's monetary-shock chain.

    ``rho`` is the least-squares slope of ``E[m' | m]`` on ``m`` over the chain's states;
    the Rouwenhorst chain makes it exact, ``E[m' | m] = rho_m m`` for every state
    (checked: the fit's residual must vanish).
    """
    m, Pm = grids.rouwenhorst(cfg.n_m, cfg.rho_m, cfg.sd_m)
    m, Pm = m.double(), Pm.double()
    cond = Pm @ m
    rho = float((cond @ m) / (m @ m))
    if float((cond - rho * m).abs().max()) > 1e-12 * float(m.abs().max()):
        raise UserError("the monetary-shock chain is not linear in m; its impulse is not an AR(1) path")
    return float(m[-1]), rho


def hank_ssj(
    cfg: HANKEconomyConfig,
    *,
    T: int = 300,
    nonlinear_shocks: tuple[float, ...] = (),
) -> HANKSSJResult:
    """Steady state and monetary-shock responses of ``cfg``'s HANK by ``sequence-jacobian``.

    Args:
        cfg: the project's calibration (``beta`` is ignored: SSJ calibrates its own).
        T: truncation horizon of the sequence space.
        nonlinear_shocks: impact sizes ``m_0`` for SSJ's nonlinear transition.

    Returns:
        :class:`HANKSSJResult`.
    """
    try:
        import sequence_jacobian as sj
        from sequence_jacobian import interpolate
        from sequence_jacobian.blocks.het_block import het
    except ImportError as exc:  # pragma: no cover - exercised only without the dev extra
        raise UserError("hank_ssj needs the dev extra: pip install sequence-jacobian==1.0.0") from exc

    # SSJ reads each block's output names from its last ``return`` line: keep them plain names
    def hh_init(a_grid, y, R, sigma):
        coh = R * a_grid[np.newaxis, :] + y[:, np.newaxis]
        Va = R * (0.1 * coh) ** (-sigma)
        return Va

    @het(exogenous="Pe", policy="a", backward="Va", backward_init=hh_init)
    def household(Va_p, a_grid, y, h, R, beta, sigma):
        """One EGM step on the GHH composite ``k``: ``u'(k) = beta E[V_a']``, ``k + a' = R a + y``."""
        k_next = (beta * Va_p) ** (-1.0 / sigma)
        coh = R * a_grid[np.newaxis, :] + y[:, np.newaxis]
        a = interpolate.interpolate_y(k_next + a_grid, coh, a_grid)
        a = np.maximum(a, a_grid[0])
        k = coh - a
        Va = R * k ** (-sigma)
        c = k + h[:, np.newaxis]
        return Va, a, c

    def income(w, d, tau, e_grid, chi, frisch):
        n = (w * e_grid / chi) ** frisch
        y = w * e_grid * n / (1 + frisch) + e_grid * (d - tau)
        h = frisch / (1 + frisch) * w * e_grid * n
        return y, h

    @sj.simple
    def firm(w, Pi, chi, frisch, S, theta):
        N = (w / chi) ** frisch * S
        Y = N
        d = Y * (1 - w - theta / 2 * Pi**2)
        return N, Y, d

    @sj.simple
    def taylor(Pi, m, R_ss, phi_pi):
        R = R_ss * (1 + Pi) ** phi_pi * np.e**m  # e**m, not np.exp: SSJ differentiates by operator overloading
        return R

    @sj.simple
    def fiscal(R, B):
        tau = (R - 1) * B
        return tau

    @sj.simple
    def nkpc(Pi, w, Y, R, epsilon, theta):
        nkpc_res = (
            Pi * (1 + Pi) - epsilon / theta * (w - (epsilon - 1) / epsilon) - Y(+1) / Y / R(+1) * Pi(+1) * (1 + Pi(+1))
        )
        return nkpc_res

    @sj.simple
    def markets(A, B, C, Y, Pi, theta):
        asset_mkt = A - B
        goods_mkt = C - Y * (1 - theta / 2 * Pi**2)
        return asset_mkt, goods_mkt

    hh = household.add_hetinputs([income])
    model = sj.create_model([hh, firm, taylor, fiscal, nkpc, markets], name="HANK (project calibration)")

    # the project's grids and income process
    loge, Pe = grids.rouwenhorst(cfg.n_e, cfg.rho_e, cfg.sd_e)
    e = torch.exp(loge.double())
    pi_e = grids.stationary_distribution(Pe.double())
    e = e / (pi_e @ e)
    nu = cfg.frisch
    S = float(pi_e @ e ** (1 + nu))
    m_star = (cfg.epsilon - 1) / cfg.epsilon
    chi = m_star * S ** (1 / nu)  # N^s(m*) = 1
    b = grids.asset_grid(0.0, cfg.b_max, cfg.n_b, power=cfg.grid_power).double()
    calibration = {
        "a_grid": b.numpy(), "e_grid": e.numpy(), "Pe": Pe.double().numpy(), "sigma": cfg.sigma, "frisch": nu,
        "chi": chi, "S": S, "theta": cfg.theta, "epsilon": cfg.epsilon, "phi_pi": cfg.phi_pi, "R_ss": cfg.R_ss,
        "B": cfg.bond_supply, "Pi": 0.0, "m": 0.0, "beta": 0.97, "w": 0.95,
    }  # fmt: skip
    ss = model.solve_steady_state(
        calibration, {"beta": 0.97, "w": 0.95}, {"asset_mkt": 0.0, "nkpc_res": 0.0}, solver="hybr", ttol=1e-12
    )
    keys = ("beta", "R", "w", "Y", "C", "N", "A", "d", "tau", "asset_mkt", "goods_mkt", "nkpc_res")
    steady = {k: float(ss[k]) for k in keys}

    m_top, rho = shock_chain(cfg)
    outputs = [*VARIABLES, "A", "N"]
    unknowns, targets = ["w", "Pi"], ["asset_mkt", "nkpc_res"]
    G = model.solve_jacobian(ss, unknowns, targets, ["m"], outputs=outputs, T=T)
    dm = rho ** np.arange(T)
    linear = {k: np.asarray(G[k]["m"] @ dm) for k in outputs}
    nonlinear = {}
    for m0 in nonlinear_shocks:
        td = model.solve_impulse_nonlinear(
            ss, unknowns, targets, {"m": m0 * dm}, outputs=outputs, tol=1e-12, verbose=False
        )
        nonlinear[m0] = {k: np.asarray(td[k]) / m0 for k in outputs}
    return HANKSSJResult(steady=steady, m_top=m_top, rho_m=rho, linear=linear, nonlinear=nonlinear)
