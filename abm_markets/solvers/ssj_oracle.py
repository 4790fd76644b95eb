"""Outside oracle for the Krusell-Smith impulse responses: the sequence-space Jacobian package.

Auclert, Bardóczy, Rognlie and Straub (2021), "Using the Sequence-Space Jacobian
to Solve and Estimate Heterogeneous-Agent Models", Econometrica 89(5);
``sequence-jacobian`` 1.0.0 (a ``dev`` extra). Kept apart from
:mod:`abm_markets.solvers.transition`, whose answers it checks: it shares no
code with the project's household solver, only the calibration and grids.
"""

from __future__ import annotations

import torch

from abm_markets.errors import UserError
from abm_markets.solvers.aiyagari import DTYPE, make_grids
from abm_markets.solvers.transition import TransitionConfig

__all__ = ["ssj_impulse_responses"]


def ssj_impulse_responses(
    cfg: TransitionConfig,
    eps_nonlinear: tuple[float, ...] = (),
) -> tuple[dict[str, float], dict[str, torch.Tensor], dict[float, dict[str, torch.Tensor]]]:
    """The same economy solved by ``sequence-jacobian`` 1.0.0 (Auclert et al. 2021).

    SSJ's standard-incomplete-markets household (``hetblocks.hh_sim.hh``: EGM on the
    marginal value, Young's lottery) receives the project's efficiency grid and
    transition matrix, asset grid and parameters; SSJ solves its own steady state
    (Brent's method on ``K`` for ``A - K = 0``) and its own Jacobians (fake-news algorithm).

    SSJ's ``K_t`` is end-of-period capital (its firm rents ``K_{t-1}``); the responses
    returned here are shifted to this module's start-of-period ``K_t``.

    Args:
        cfg: Calibration and horizon ``T``.
        eps_nonlinear: Shocks for which SSJ's own nonlinear (Newton) transition is also solved.

    Returns:
        ``(steady, linear, nonlinear)``: steady-state aggregates ``K, r, w, Y, C`` and
        ``asset_mkt`` (SSJ's residual); first-order responses per unit ``eps`` (each ``(T,)``);
        for each ``eps`` in ``eps_nonlinear``, ``(X(eps) - X_ss) / eps``.
    """
    try:
        import numpy as np
        import sequence_jacobian as sj
    except ImportError as exc:  # pragma: no cover - exercised only without the dev extra
        raise UserError("ssj_impulse_responses needs the dev extra: pip install sequence-jacobian==1.0.0") from exc

    @sj.simple
    def firm_block(K, L, Z, alpha, delta):
        r = alpha * Z * (K(-1) / L) ** (alpha - 1) - delta
        w = (1 - alpha) * Z * (K(-1) / L) ** alpha
        Y = Z * K(-1) ** alpha * L ** (1 - alpha)
        return r, w, Y

    @sj.simple
    def markets(K, A):
        asset_mkt = A - K
        return asset_mkt

    def income(w, e_grid):
        y = w * e_grid
        return y

    household = sj.hetblocks.hh_sim.hh.add_hetinputs([income])
    model = sj.create_model([household, firm_block, markets], name="Krusell-Smith (project calibration)")
    a_grid, e, P_e, _ = make_grids(cfg.stationary())
    calibration = {
        "e_grid": e.numpy(),
        "Pi": P_e.numpy(),
        "a_grid": a_grid.numpy(),
        "beta": cfg.beta,
        "eis": 1.0 / cfg.sigma,
        "alpha": cfg.alpha,
        "delta": cfg.delta,
        "L": 1.0,
        "Z": 1.0,
    }
    # bracket: r from just below 1/beta - 1 (savings explode above) down to r = 0
    K_of_r = lambda r: (cfg.alpha / (r + cfg.delta)) ** (1.0 / (1.0 - cfg.alpha))  # noqa: E731
    bracket = (K_of_r(1.0 / cfg.beta - 1.0 - 2e-3), K_of_r(0.0))
    ss = model.solve_steady_state(calibration, {"K": bracket}, {"asset_mkt": 0.0}, solver="brentq")
    steady = {k: float(ss[k]) for k in ("K", "r", "w", "Y", "C", "asset_mkt")}
    T = cfg.T
    outputs = ["K", "C", "Y", "r", "w"]
    G = model.solve_jacobian(ss, ["K"], ["asset_mkt"], ["Z"], outputs=outputs, T=T)
    dZ = cfg.rho_z ** np.arange(T)  # d log Z = d Z at Z = 1

    def to_project(path: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        res = {k: torch.as_tensor(np.asarray(path[k]), dtype=DTYPE) for k in outputs}
        res["K"] = torch.cat([torch.zeros(1, dtype=DTYPE), res["K"][:-1]])  # start-of-period capital
        return res

    linear = to_project({k: G[k]["Z"] @ dZ for k in outputs})
    nonlinear = {}
    for eps in eps_nonlinear:
        Z_path = np.exp(eps * dZ) - 1.0
        td = model.solve_impulse_nonlinear(ss, ["K"], ["asset_mkt"], {"Z": Z_path}, outputs=outputs, verbose=False)
        nonlinear[eps] = {k: v / eps for k, v in to_project({k: td[k] for k in outputs}).items()}
    return steady, linear, nonlinear
