"""Impulse responses of the Krusell-Smith economy: perfect-foresight transitions and the KS algorithm's GIRF.

Economy (as in :mod:`abm_markets.solvers.krusell_smith`)::

    c_t + a_{t+1} = (1 + r_t) a_t + w_t e_t,   a_{t+1} >= 0
    r_t = alpha z_t K_t^(alpha-1) - delta,   w_t = (1-alpha) z_t K_t^alpha,   Y_t = z_t K_t^alpha   (L = 1)
    K_{t+1} = A_t = int a'_t(a, e) dG_t(a, e)                            (asset market)

``K_t`` is capital at the start of period ``t`` (what the firm rents); ``A_t`` is
households' end-of-period savings.

**Perfect-foresight transition ("MIT shock").** The economy sits in its stationary
equilibrium (:func:`abm_markets.solvers.aiyagari.solve_stationary` on the KS asset
grid) when an unexpected, deterministic TFP path ``z_t = exp(rho_z^t eps)`` is
announced at ``t = 0``. With ``K_0 = K_ss`` and ``K_t = K_ss`` for ``t >= T``, the
unknowns ``K_1 .. K_{T-1}`` solve the ``T - 1`` market-clearing conditions::

    H_t(K) = A_t(K) - K_{t+1} = 0,   t = 0 .. T-2,

where ``A_t`` comes from the project's own household code: the endogenous grid
method (:func:`~abm_markets.solvers.aiyagari.egm_step`) run backward from the
stationary consumption policy at ``T`` along the price path, then Young's lottery
(:func:`~abm_markets.solvers.aiyagari.push_forward`) run forward from the stationary
distribution. The equations are solved by quasi-Newton iteration
``K <- K - J^{-1} H(K)`` with ``J = dH/dK`` at the steady state, built by one-sided
finite differences of the same code (all ``T - 1`` columns in one batched pass).
The Jacobian only steers the iteration; the solution is whatever zeroes ``H``.

**Generalized impulse response of the KS-algorithm solution.** For a solved
:class:`~abm_markets.solvers.krusell_smith.KSSolution`,
``GIRF_t(X) = E[X_t | z_0 = z_high] - E[X_t | z_0 = z_mid]`` from the stationary
distribution, by non-stochastic simulation of the distribution on many TFP paths
(common random numbers in the two branches, regression control variates on the
TFP draws). Rouwenhorst's chain keeps the AR(1)'s
conditional mean, ``E[log z_t | z_0] = rho_z^t log z_0``, so ``GIRF / log z_high`` is
comparable with a linear impulse response per unit ``eps``.

**Outside oracle.** :func:`abm_markets.solvers.ssj_oracle.ssj_impulse_responses` builds the same economy in the
sequence-space Jacobian package (Auclert, Bardóczy, Rognlie and Straub 2021,
"Using the Sequence-Space Jacobian to Solve and Estimate Heterogeneous-Agent
Models", Econometrica 89(5); ``sequence-jacobian`` 1.0.0, a ``dev`` extra) with the
project's grids and parameters, lets it solve its own steady state and returns its
first-order (and optionally nonlinear) impulse responses, shifted to this module's
timing. See ``docs/irf_ssj.md``.

Arrays are float64 torch tensors; paths have shape ``(T,)``.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import NamedTuple

import torch

from abm_markets.config import param
from abm_markets.errors import ConfigError, UserError
from abm_markets.solvers.aiyagari import (
    DTYPE,
    AiyagariConfig,
    HouseholdCalibration,
    egm_policy,
    egm_step,
    firm,
    lottery,
    make_grids,
    push_forward,
    solve_stationary,
    stationary_distribution,
)
from abm_markets.solvers.krusell_smith import KSCalibration, KSSolution, interp_policy_K

__all__ = [
    "VARIABLES",
    "Girf",
    "Steady",
    "Transition",
    "TransitionConfig",
    "impulse_response",
    "irf_gap_pct",
    "ks_girf",
    "solve_transition",
    "steady_state",
    "transition_jacobian",
]

VARIABLES = ("K", "C", "Y", "r", "w")
"""The aggregates every impulse response here reports, in this order."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class TransitionConfig(KSCalibration):
    """Perfect-foresight transition of the Krusell-Smith economy.

    The household calibration and asset grid are :class:`KSCalibration`'s; its
    aggregate-risk fields other than ``rho_z`` (``sd_z``, ``n_z``, ``n_K``,
    ``K_width``) play no part in a deterministic transition.
    """

    T: int = param(300, "Transition horizon: K_t = K_ss for t >= T.", ge=20)
    tol: float = param(1e-11, "Stop when max |A_t - K_{t+1}| is below this.", gt=0.0)
    max_iter: int = param(50, "Maximum quasi-Newton iterations.", ge=1)
    fd_step: float = param(1e-6, "Finite-difference step of the Jacobian, relative to K_ss.", gt=0.0, lt=0.1)
    jac_chunk: int = param(64, "Jacobian columns computed per batched pass (memory ~ chunk * T * n_a * n_e).", ge=1)
    tol_r: float = param(1e-12, "Bisection tolerance on r of the stationary equilibrium.", gt=0.0)

    def stationary(self) -> AiyagariConfig:
        """The stationary economy on the same households and asset grid."""
        shared = {f.name: getattr(self, f.name) for f in dataclasses.fields(HouseholdCalibration)}
        return AiyagariConfig(**shared, a_max=self.a_max, tol_r=self.tol_r)


class Steady(NamedTuple):
    """Stationary point a transition starts from and returns to.

    Attributes:
        K, r, w, Y, C: Aggregates (``r``, ``w`` are the firm's prices at ``K``).
        a_grid: ``(n_a,)``; e: ``(n_e,)``; P_e: ``(n_e, n_e)``.
        c, a_next: Stationary policies at ``(r, w)``, ``(n_a, n_e)``.
        dist: Stationary distribution, ``(n_a, n_e)``.
        excess: ``A - K`` at the stationary point.
    """

    K: float
    r: float
    w: float
    Y: float
    C: float
    a_grid: torch.Tensor
    e: torch.Tensor
    P_e: torch.Tensor
    c: torch.Tensor
    a_next: torch.Tensor
    dist: torch.Tensor
    excess: float


class Transition(NamedTuple):
    """Result of :func:`solve_transition`; paths are ``(T,)``.

    Attributes:
        K: Start-of-period capital (``K_0 = K_ss``).
        A: End-of-period household savings (``= K_{t+1}`` in equilibrium).
        C, Y, r, w, z: Consumption, output, prices, TFP.
        residual: ``A_t - K_{t+1}``, ``t = 0 .. T-2``, shape ``(T-1,)``.
        terminal_gap: ``A_{T-1} - K_ss``: how far the economy still is from the steady state at the
            horizon (truncation; shrinks as ``T`` grows).
        iterations: Quasi-Newton iterations.
        converged: ``max |residual| < tol``.
    """

    K: torch.Tensor
    A: torch.Tensor
    C: torch.Tensor
    Y: torch.Tensor
    r: torch.Tensor
    w: torch.Tensor
    z: torch.Tensor
    residual: torch.Tensor
    terminal_gap: float
    iterations: int
    converged: bool


class Girf(NamedTuple):
    """Result of :func:`ks_girf`: ``mean[X]`` and ``se[X]`` are ``(horizon,)`` for X in :data:`VARIABLES`.

    Attributes:
        mean: ``E[X_t | z_0 = high] - E[X_t | z_0 = mid]``.
        se: Monte Carlo standard error of ``mean``.
        log_z_shock: ``log z_high - log z_mid`` (the impulse in log TFP).
        n_paths: TFP paths per branch.
    """

    mean: dict[str, torch.Tensor]
    se: dict[str, torch.Tensor]
    log_z_shock: float
    n_paths: int


# ------------------------------------------------------------------ household block along a path

# egm_step over a leading batch of price paths (grids and preferences shared)
_egm_batch = torch.vmap(egm_step, in_dims=(0, None, None, None, 0, 0, 0, None, None))


def steady_state(cfg: TransitionConfig, *, tol: float = 1e-12, max_iter: int = 20) -> Steady:
    """Stationary point of the transition's own equations: ``A(K) = K`` to ``tol``.

    Starts from :func:`~abm_markets.solvers.aiyagari.solve_stationary` and polishes ``K`` by
    secant steps on ``A(K) - K``, with the policy at the firm's prices at ``K`` solved to
    1e-13 and the distribution by one dense solve, so that a zero shock leaves every
    period's residual at rounding level.
    """
    sol = solve_stationary(cfg.stationary())
    a_grid, e, P_e, _ = make_grids(cfg.stationary())
    c_init, dist_init = sol.c, sol.dist

    def excess(K: float):
        r, w, Y = firm(K, 1.0, cfg.alpha, cfg.delta)
        a_next, c, _ = egm_policy(a_grid, e, P_e, float(r), float(w), cfg.beta, cfg.sigma, tol=1e-13, c_init=c_init)
        dist, _ = stationary_distribution(a_grid, a_next, P_e, tol=1e-14, dist_init=dist_init)
        return float((dist * a_next).sum()) - K, (r, w, Y, a_next, c, dist)

    K0, K1 = sol.K, sol.K * (1.0 + 1e-7)
    f0, _ = excess(K0)
    f1, parts = excess(K1)
    for _ in range(max_iter):
        if abs(f1) < tol or f1 == f0:
            break
        K0, K1, f0 = K1, K1 - f1 * (K1 - K0) / (f1 - f0), f1
        f1, parts = excess(K1)
        c_init, dist_init = parts[4], parts[5]
    r, w, Y, a_next, c, dist = parts
    return Steady(
        K=K1,
        r=float(r),
        w=float(w),
        Y=float(Y),
        C=float((dist * c).sum()),
        a_grid=a_grid,
        e=e,
        P_e=P_e,
        c=c,
        a_next=a_next,
        dist=dist,
        excess=f1,
    )


def _household_paths(
    cfg: TransitionConfig, ss: Steady, K: torch.Tensor, z: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Aggregate savings and consumption along capital paths.

    Args:
        K: Start-of-period capital, ``(B, T)``.
        z: TFP, ``(T,)`` or ``(B, T)``.

    Returns:
        ``(A, C, prices)``: ``A`` and ``C`` of shape ``(B, T)``; ``prices`` holds ``r, w, Y`` ``(B, T)``.
    """
    B, T = K.shape
    r, w, Y = firm(K, z.expand(B, T), cfg.alpha, cfg.delta)
    R = 1.0 + r
    R_after = torch.full((B,), 1.0 + ss.r, dtype=DTYPE)
    c_next = ss.c.expand(B, -1, -1)
    a_path = torch.empty(T, B, *ss.c.shape, dtype=DTYPE)
    c_path = torch.empty_like(a_path)
    with warnings.catch_warnings():
        # under vmap searchsorted sees a batched view and copies it, which is all we need
        warnings.filterwarnings("ignore", message=r"torch.searchsorted\(\): input value tensor is non-contiguous")
        for t in range(T - 1, -1, -1):
            R_next = R[:, t + 1] if t + 1 < T else R_after
            prices = (R_next, R[:, t], w[:, t])
            a_path[t], c_path[t] = _egm_batch(c_next, ss.a_grid, ss.e, ss.P_e, *prices, cfg.beta, cfg.sigma)
            c_next = c_path[t]
    g = ss.dist.expand(B, -1, -1)
    A = torch.empty(B, T, dtype=DTYPE)
    C = torch.empty(B, T, dtype=DTYPE)
    for t in range(T):
        A[:, t] = (g * a_path[t]).sum((-2, -1))
        C[:, t] = (g * c_path[t]).sum((-2, -1))
        i, wt = lottery(ss.a_grid, a_path[t])
        g = push_forward(g, i, wt, ss.P_e)
    return A, C, {"r": r, "w": w, "Y": Y}


def _residual(K_next: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """``A_t - K_{t+1}`` for ``t = 0 .. T-2`` given the unknowns ``K_next = (K_1 .. K_{T-1})``, batched ``(B, T-1)``."""
    return A[:, :-1] - K_next


def _full_path(K_next: torch.Tensor, K_ss: float) -> torch.Tensor:
    """``(K_0, K_1, .., K_{T-1})`` with ``K_0 = K_ss``, from the unknowns ``(B, T-1)``."""
    return torch.cat([torch.full((K_next.shape[0], 1), K_ss, dtype=DTYPE), K_next], 1)


def transition_jacobian(cfg: TransitionConfig, ss: Steady) -> torch.Tensor:
    """``J[t, s] = dH_t / dK_{s+1}`` at the steady state by one-sided finite differences, ``(T-1, T-1)``.

    Each column perturbs one ``K_{s+1}`` by ``fd_step * K_ss``; columns are computed
    ``jac_chunk`` at a time as one batch of price paths.
    """
    n = cfg.T - 1
    h = cfg.fd_step * ss.K
    z = torch.ones(cfg.T, dtype=DTYPE)
    base = torch.full((1, n), ss.K, dtype=DTYPE)
    A0, _, _ = _household_paths(cfg, ss, _full_path(base, ss.K), z)
    H0 = _residual(base, A0)
    J = torch.empty(n, n, dtype=DTYPE)
    for lo in range(0, n, cfg.jac_chunk):
        cols = torch.arange(lo, min(lo + cfg.jac_chunk, n))
        K_next = base.expand(cols.numel(), n).clone()
        K_next[torch.arange(cols.numel()), cols] += h
        A, _, _ = _household_paths(cfg, ss, _full_path(K_next, ss.K), z)
        J[:, cols] = ((_residual(K_next, A) - H0) / h).T
    return J


def solve_transition(
    cfg: TransitionConfig,
    eps: float,
    *,
    ss: Steady | None = None,
    jacobian: torch.Tensor | None = None,
) -> Transition:
    """Nonlinear perfect-foresight transition after the TFP path ``z_t = exp(rho_z^t eps)``.

    Args:
        cfg: Calibration, grids and solver settings.
        eps: Log TFP at ``t = 0``.
        ss: Stationary point (computed when None).
        jacobian: ``dH/dK`` at the steady state from :func:`transition_jacobian` (computed when None);
            pass it to reuse it across shocks.

    Returns:
        A :class:`Transition`. ``converged`` is False when ``max_iter`` ran out.
    """
    ss = ss if ss is not None else steady_state(cfg)
    J = jacobian if jacobian is not None else transition_jacobian(cfg, ss)
    if J.shape != (cfg.T - 1, cfg.T - 1):
        raise UserError(f"jacobian has shape {tuple(J.shape)}, expected ({cfg.T - 1}, {cfg.T - 1}) for T = {cfg.T}")
    LU, piv = torch.linalg.lu_factor(J)
    z = torch.exp(cfg.rho_z ** torch.arange(cfg.T, dtype=DTYPE) * eps)
    K_next = torch.full((1, cfg.T - 1), ss.K, dtype=DTYPE)
    converged = False
    for it in range(1, cfg.max_iter + 1):  # noqa: B007 -- the count is returned
        K = _full_path(K_next, ss.K)
        A, C, prices = _household_paths(cfg, ss, K, z)
        H = _residual(K_next, A)
        if float(H.abs().max()) < cfg.tol:
            converged = True
            break
        K_next = K_next - torch.linalg.lu_solve(LU, piv, H.T).T
    return Transition(
        K=K[0],
        A=A[0],
        C=C[0],
        Y=prices["Y"][0],
        r=prices["r"][0],
        w=prices["w"][0],
        z=z,
        residual=H[0],
        terminal_gap=float(A[0, -1] - ss.K),
        iterations=it,
        converged=converged,
    )


def impulse_response(
    cfg: TransitionConfig,
    eps: float,
    *,
    ss: Steady | None = None,
    jacobian: torch.Tensor | None = None,
    central: bool = False,
) -> dict[str, torch.Tensor]:
    """Nonlinear response per unit of ``eps`` for X in :data:`VARIABLES`, each ``(T,)``.

    ``(X(eps) - X(0)) / eps``; with ``central``, ``(X(eps) - X(-eps)) / (2 eps)``, which
    cancels the second-order term and so estimates the first-order response to
    ``O(eps^2)``. Differencing against a solved transition (rather than the steady
    state) removes what little drift the steady state's tolerance leaves.

    Raises:
        ConfigError: ``eps`` is zero.
        UserError: A transition does not converge.
    """
    if eps == 0.0:
        raise ConfigError("impulse_response: eps = 0.0, expected a nonzero shock")
    ss = ss if ss is not None else steady_state(cfg)
    J = jacobian if jacobian is not None else transition_jacobian(cfg, ss)
    shocks = (eps, -eps) if central else (eps, 0.0)
    paths = [solve_transition(cfg, x, ss=ss, jacobian=J) for x in shocks]
    for x, tr in zip(shocks, paths, strict=True):
        if not tr.converged:
            raise UserError(
                f"transition for eps = {x} did not converge in {cfg.max_iter} iterations "
                f"(max residual {float(tr.residual.abs().max()):.2e}); raise max_iter"
            )
    return {k: (getattr(paths[0], k) - getattr(paths[1], k)) / (shocks[0] - shocks[1]) for k in VARIABLES}


# ------------------------------------------------------------------ KS algorithm: generalized impulse response


def _tfp_paths(P_z: torch.Tensor, start: int, u: torch.Tensor) -> torch.Tensor:
    """Markov chain state paths ``(N, H)`` from ``start`` driven by uniforms ``u`` ``(N, H)`` (column 0 unused)."""
    N, H = u.shape
    cum = P_z.cumsum(1)
    idx = torch.empty(N, H, dtype=torch.long)
    idx[:, 0] = start
    for t in range(1, H):
        idx[:, t] = (u[:, t, None] > cum[idx[:, t - 1]]).sum(1).clamp(max=P_z.shape[0] - 1)
    return idx


def _control_variate_mean(d: torch.Tensor, x: torch.Tensor, mu: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of ``d`` ``(N,)`` with regression control variates ``x`` ``(N, m)`` of known mean ``mu`` ``(m,)``.

    ``mean(d) - b' (mean(x) - mu)`` with ``b`` the least-squares slope of ``d`` on ``x``;
    unbiased as ``N`` grows. Returns ``(mean, standard error)`` (the error from the residual).
    """
    n = d.shape[0]
    if x.shape[1] == 0:
        return d.mean(), d.std() / n**0.5
    xc = x - x.mean(0)
    b = torch.linalg.lstsq(xc, (d - d.mean())[:, None]).solution[:, 0]
    resid = d - d.mean() - xc @ b
    return d.mean() - (x.mean(0) - mu) @ b, resid.std() / (n - x.shape[1] - 1) ** 0.5


def ks_girf(
    sol: KSSolution,
    cfg: KSCalibration,
    *,
    horizon: int = 40,
    n_paths: int = 2000,
    generator: torch.Generator,
    control_variates: bool = True,
    policy=None,
) -> Girf:
    """Generalized impulse response of the KS-algorithm policy (or ``policy``) to TFP starting in its high state.

    Both branches start from the stationary distribution ``sol.dist0``; one at the
    highest TFP state, one at the middle state. They share the uniforms that draw
    later TFP states. The distribution is pushed forward by the lottery exactly as in
    :func:`~abm_markets.solvers.krusell_smith.simulate_distribution`, ``2 n_paths`` paths at once.

    With ``control_variates`` the sample mean at ``t`` is corrected by regression on
    both branches' ``log z_1 .. log z_t``, whose conditional means (``rho_z^s log z_0``)
    the Rouwenhorst chain matches exactly: the estimate stays unbiased and most of
    the noise from the TFP draws cancels.

    Args:
        sol: A solved Krusell-Smith economy.
        cfg: Its calibration (``alpha``, ``delta``, ``rho_z``).
        horizon: Periods ``t = 0 .. horizon-1``.
        n_paths: TFP paths per branch.
        generator: The one random generator.
        control_variates: Correct the means with the TFP paths (else plain sample means).
        policy: Optional savings policy ``policy(K (B,), z_index (B,)) -> a' (B, n_a, n_e)`` on ``sol``'s
            grids (e.g. the SRL solution's, :meth:`abm_markets.srl.ks.KSModel.savings_batch`); default the
            KS algorithm's table ``sol.a_next``.

    Returns:
        A :class:`Girf`.
    """
    if horizon < 2:
        raise ConfigError(f"ks_girf: horizon = {horizon}, expected >= 2")
    if n_paths < 4 * horizon:
        raise ConfigError(f"ks_girf: n_paths = {n_paths}, expected >= 4 * horizon = {4 * horizon}")
    n_z = sol.z.shape[0]
    u = torch.rand(n_paths, horizon, generator=generator, dtype=DTYPE)
    z_idx = torch.cat([_tfp_paths(sol.P_z, n_z - 1, u), _tfp_paths(sol.P_z, n_z // 2, u)])  # (2N, H)
    g = sol.dist0.expand(2 * n_paths, -1, -1)
    a_grid, e = sol.a_grid, sol.e
    out = {k: torch.empty(2 * n_paths, horizon, dtype=DTYPE) for k in VARIABLES}
    rows = torch.arange(2 * n_paths)
    for t in range(horizon):
        K = (g * a_grid[:, None]).sum((-2, -1))
        z = sol.z[z_idx[:, t]]
        r, w, Y = firm(K, z, cfg.alpha, cfg.delta)
        if policy is None:
            pol = interp_policy_K(sol.a_next, sol.K_grid, K)[:, :, rows, z_idx[:, t]]  # (n_a, n_e, 2N)
            pol = pol.permute(2, 0, 1).clamp(min=float(a_grid[0]))
        else:
            pol = policy(K, z_idx[:, t]).to(DTYPE).clamp(min=float(a_grid[0]))  # (2N, n_a, n_e)
        c = (1.0 + r)[:, None, None] * a_grid[:, None] + w[:, None, None] * e - pol
        for k, v in (("K", K), ("C", (g * c).sum((-2, -1))), ("Y", Y), ("r", r), ("w", w)):
            out[k][:, t] = v
        i, wt = lottery(a_grid, pol)
        g = push_forward(g, i, wt, sol.P_e)
    log_z = torch.log(sol.z)
    shock = float(log_z[-1] - log_z[n_z // 2])
    x = torch.cat([log_z[z_idx[:n_paths]], log_z[z_idx[n_paths:]]], 1)  # (N, 2H): high branch, then middle
    decay = cfg.rho_z ** torch.arange(horizon, dtype=DTYPE)
    mu = torch.cat([log_z[n_z // 2] + decay * shock, torch.full((horizon,), float(log_z[n_z // 2]), dtype=DTYPE)])
    mean, se = {}, {}
    for k, v in out.items():
        d = v[:n_paths] - v[n_paths:]
        mean[k], se[k] = torch.empty(horizon, dtype=DTYPE), torch.empty(horizon, dtype=DTYPE)
        for t in range(horizon):
            cols = torch.cat([torch.arange(1, t + 1), horizon + torch.arange(1, t + 1)]) if control_variates else []
            mean[k][t], se[k][t] = _control_variate_mean(d[:, t], x[:, cols], mu[cols])
    return Girf(mean=mean, se=se, log_z_shock=shock, n_paths=n_paths)


# ------------------------------------------------------------------ comparison


def irf_gap_pct(
    project: dict[str, torch.Tensor],
    oracle: dict[str, torch.Tensor],
    *,
    horizon: int = 20,
    variables: tuple[str, ...] = VARIABLES,
) -> dict[str, float]:
    """Per variable: ``100 max_{t < horizon} |project_t - oracle_t| / max_{t < horizon} |oracle_t|``.

    Returns:
        ``{variable: gap_pct}`` plus ``"max"`` over the variables.
    """
    gaps = {}
    for k in variables:
        p, o = project[k][:horizon].double(), oracle[k][:horizon].double()
        gaps[k] = float(100.0 * (p - o).abs().max() / o.abs().max())
    gaps["max"] = max(gaps[k] for k in variables)
    return gaps
