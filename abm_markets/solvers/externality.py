"""Multiple steady states of the investment economy with an aggregate production externality, and the perfect-
foresight paths that reach them (issue: equilibrium selection in a dynamic macro model).

Market formulation, deterministic (``Z = 1``), symmetric households: each of the ``N^h`` households owns ``K`` of
each of the ``N^c`` capital goods and produces ``Y = A(Kbar) K^alpha`` with
``A(Kbar) = 1 + (A_H - 1) / (1 + exp(-(Kbar - K_thr) / w))``, ``Kbar`` the mean capital, which it takes as given.
Competitive firms (``M`` per good) sell at ``p = phi N^h I / M`` (``I`` the investment per household and good),
consumption is ``C = Y - N^c p I`` and ``K' = (1 - delta) K + I``. A household's marginal cost of a unit is
``q = p / f``: ``f = 1`` for a price taker, ``f = 1 - 1 / (2 N^h)`` for a household that takes its own price impact
under Walrasian clearing of spending orders into account (the buyer-side benchmark of
:func:`abm_markets.solvers.market_power.buyer_price_factor`). Euler equation (CRRA ``sigma``):

    q_t C_t^(-sigma) = beta C_{t+1}^(-sigma) [(alpha / N^c) A(K_{t+1}) K_{t+1}^(alpha - 1) + (1 - delta) q_{t+1}].

**Steady states** solve ``K^(2 - alpha) = f c alpha M A(K) / (N^c N^h phi delta)`` with
``c = beta / (1 - beta (1 - delta))`` (the competitive steady state of :mod:`abm_markets.solvers.market_power` times
``A(K)``). Because ``A`` is an S-shaped step, there can be three: found by a sign-change scan of
``(2 - alpha) log K - log A(K) - log(const)`` on a dense logarithmic grid and refined by Brent's method.

**Stability** of each: the Euler equation is a second-order difference equation in ``K``; its linearisation
``F_0 + F_1 lambda + F_2 lambda^2 = 0`` (derivatives in ``K_t, K_{t+1}, K_{t+2}`` by central differences) has two
roots. One inside the unit circle: a *saddle*, reached from nearby capital along one path (determinate); none: a
*source*, left by every path but the steady one; both: a *sink*, reached by a continuum of paths (indeterminate).

**Perfect-foresight paths**, two methods that share only the Euler residual:

* :func:`stable_manifold`: the set of ``(K_t, K_{t+1})`` from which the path converges to a saddle steady state,
  traced backwards from the linear stable direction (given ``K_{t+1}, K_{t+2}``, the Euler equation is monotone in
  ``K_t``, so one step back is one root search). Its projection on ``K`` is the set of initial capital from which
  rational expectations can lead to that steady state. Where the projections of two steady states' manifolds
  overlap, both are equilibrium outcomes from the same history: expectations decide (Krugman 1991, Matsuyama 1991);
  outside, history decides. An overlap needs the manifold to wind around the middle steady state (complex roots).
* :func:`shooting_path`: the stacked Euler equations of a ``T``-period path from ``K_0`` to the steady state,
  solved by Newton's method (``scipy.optimize.root``) from a geometric initial guess.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import optimize

from abm_markets.errors import ConfigError

__all__ = [
    "ExternalityModel",
    "PerfectForesight",
    "SteadyStateInfo",
    "default_config",
    "households_model",
    "perfect_foresight",
    "shooting_path",
    "stable_manifold",
    "steady_state_report",
    "steady_states",
]

# the calibration (market formulation, Walrasian clearing, one competitive firm per good)
DEFAULTS: dict[str, Any] = {
    "formulation": "market",
    "market": "walrasian",
    "n_households": 10,
    "n_capital_goods": 1,
    "firms_per_good": 1,
    "alpha": 0.3,
    "beta": 0.98,
    "delta": 0.04,
    "phi": 0.5,
    "tfp_values": (1.0,),
    "externality_high": 2.0,
    "externality_threshold": 8.0,
    "externality_width": 0.3,
}


def default_config(**overrides: Any) -> Any:
    """The issue's calibration as an ``InvestmentConfig`` (``overrides`` replace any field)."""
    from abm_markets.engine.config import InvestmentConfig

    return InvestmentConfig.from_overrides({**DEFAULTS, **overrides})


@dataclasses.dataclass(frozen=True)
class ExternalityModel:
    """The symmetric deterministic economy of ``cfg`` with marginal-cost factor ``f`` (1: price takers)."""

    cfg: Any
    factor: float = 1.0

    def __post_init__(self) -> None:
        cfg = self.cfg
        if cfg.formulation != "market" or cfg.firms != "competitive":
            raise ConfigError(
                "externality steady states need formulation = 'market' and firms = 'competitive'; "
                f"got formulation = {cfg.formulation!r}, firms = {cfg.firms!r}"
            )
        if not 0.0 < self.factor <= 1.0:
            raise ConfigError(f"marginal-cost factor f = {self.factor} is invalid; expected 0 < f <= 1")

    # ------------------------------------------------------------------ blocks
    def A(self, k: np.ndarray | float) -> np.ndarray:
        c = self.cfg
        x = (np.asarray(k, dtype=float) - c.externality_threshold) / c.externality_width
        return 1.0 + (c.externality_high - 1.0) * 0.5 * (1.0 + np.tanh(0.5 * x))

    @property
    def price_slope(self) -> float:
        """``p = a I``: ``a = phi N^h / M``."""
        return self.cfg.phi * self.cfg.n_households / self.cfg.firms_per_good

    def euler_residual(self, k0: np.ndarray, k1: np.ndarray, k2: np.ndarray) -> np.ndarray:
        """``log(q_t u'(C_t)) - log(beta u'(C_{t+1}) (MPK_{t+1} + (1 - delta) q_{t+1}))``; NaN where a period's
        investment or consumption is not positive."""
        c = self.cfg
        a, nc, sig = self.price_slope, c.n_capital_goods, c.crra
        i0 = k1 - (1.0 - c.delta) * k0
        i1 = k2 - (1.0 - c.delta) * k1
        c0 = self.A(k0) * k0**c.alpha - nc * a * i0 * i0
        c1 = self.A(k1) * k1**c.alpha - nc * a * i1 * i1
        ok = (i0 > 0) & (i1 > 0) & (c0 > 0) & (c1 > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            lhs = np.log(a * i0 / self.factor) - sig * np.log(c0)
            mpk = (c.alpha / nc) * self.A(k1) * k1 ** (c.alpha - 1.0)
            rhs = math.log(c.beta) - sig * np.log(c1) + np.log(mpk + (1.0 - c.delta) * a * i1 / self.factor)
        return np.where(ok, lhs - rhs, np.nan)

    # ----------------------------------------------------------- steady states
    def _constant(self) -> float:
        c = self.cfg
        cc = c.beta / (1.0 - c.beta * (1.0 - c.delta))
        return self.factor * cc * c.alpha * c.firms_per_good / (c.n_capital_goods * c.n_households * c.phi * c.delta)

    def steady_state_gap(self, k: np.ndarray | float) -> np.ndarray:
        """``(2 - alpha) log K - log A(K) - log(f c alpha M / (N^c N^h phi delta))``: zero at a steady state."""
        k = np.asarray(k, dtype=float)
        return (2.0 - self.cfg.alpha) * np.log(k) - np.log(self.A(k)) - math.log(self._constant())

    def roots(self, points: int = 20001) -> list[float]:
        """Every steady state, ascending (sign-change scan on a log grid between the no-externality roots with
        ``A = 1`` and ``A = A_H``, then Brent)."""
        lo_a, hi_a = sorted((1.0, self.cfg.externality_high))
        e = 1.0 / (2.0 - self.cfg.alpha)
        lo, hi = (lo_a * self._constant()) ** e * 0.999, (hi_a * self._constant()) ** e * 1.001
        grid = np.geomspace(lo, hi, points)
        g = self.steady_state_gap(grid)
        out = []
        for i in np.flatnonzero(np.sign(g[:-1]) != np.sign(g[1:])):
            out.append(float(optimize.brentq(self.steady_state_gap, grid[i], grid[i + 1], xtol=1e-14, rtol=1e-14)))
        return out

    def eigenvalues(self, k: float) -> np.ndarray:
        """Roots ``lambda`` of the linearised Euler equation at the steady state ``k`` (complex, by modulus)."""
        h = 1e-6 * k
        kk = np.array([k])
        d = []
        for pos in range(3):
            up = [kk, kk, kk]
            dn = [kk, kk, kk]
            up[pos] = kk + h
            dn[pos] = kk - h
            d.append(float((self.euler_residual(*up) - self.euler_residual(*dn))[0] / (2 * h)))
        lam = np.roots([d[2], d[1], d[0]]).astype(complex)
        return lam[np.argsort(np.abs(lam))]

    def steady_state_info(self) -> list[SteadyStateInfo]:
        out = []
        for k in self.roots():
            lam = self.eigenvalues(k)
            inside = int(np.sum(np.abs(lam) < 1.0))
            kind = {0: "source", 1: "saddle", 2: "sink"}[inside]
            stability = {"source": "unstable", "saddle": "stable (saddle path)", "sink": "stable (indeterminate)"}
            a = self.price_slope * self.cfg.delta * k
            out.append(
                SteadyStateInfo(
                    capital=k,
                    price=a,
                    externality=float(self.A(k)),
                    kind=kind,
                    stability=stability[kind],
                    eigenvalues=[(float(z.real), float(z.imag)) for z in lam],
                )
            )
        return out

    # ------------------------------------------------------------- paths
    def backward(self, k1: np.ndarray, k2: np.ndarray, iterations: int = 64) -> np.ndarray:
        """``K_t`` with ``Euler(K_t, k1, k2) = 0``, elementwise; NaN where there is none.

        The residual falls in ``K_t`` where it is defined (higher ``K_t``: less investment, a lower price, more
        consumption), tends to ``+inf`` as consumption falls to 0 (low ``K_t``) and to ``-inf`` as investment
        falls to 0 (``K_t`` up to ``K_{t+1} / (1 - delta)``), so a bisection in ``log K_t`` that reads an
        undefined residual by the side it lies on finds the one root.
        """
        c = self.cfg
        k1, k2 = np.asarray(k1, dtype=float), np.asarray(k2, dtype=float)
        top = k1 / (1.0 - c.delta) if c.delta < 1.0 else 10.0 * k1
        lo, hi = np.log(top * 1e-9), np.log(top)
        i1 = k2 - (1.0 - c.delta) * k1
        c1 = self.A(k1) * k1**c.alpha - c.n_capital_goods * self.price_slope * i1 * i1
        valid = (i1 > 0) & (c1 > 0)
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            k0 = np.exp(mid)
            r = self.euler_residual(k0, k1, k2)
            # undefined: investment <= 0 above the root's side (read -inf), consumption <= 0 below (read +inf)
            i0 = k1 - (1.0 - c.delta) * k0
            r = np.where(np.isfinite(r), r, np.where(i0 <= 0, -np.inf, np.inf))
            up = r > 0
            lo = np.where(up, mid, lo)
            hi = np.where(up, hi, mid)
        k0 = np.exp(0.5 * (lo + hi))
        r = self.euler_residual(k0, k1, k2)
        ok = valid & np.isfinite(r) & (np.abs(r) < 1e-8) & (k0 > top * 2e-9) & (k0 < top * (1 - 1e-12))
        return np.where(ok, k0, np.nan)


@dataclasses.dataclass(frozen=True)
class SteadyStateInfo:
    """A steady state: ``capital`` (per household and good), ``price``, ``externality`` A(K), ``kind`` (saddle,
    source, sink), ``stability`` and the linearised Euler equation's ``eigenvalues`` as (real, imaginary)."""

    capital: float
    price: float
    externality: float
    kind: str
    stability: str
    eigenvalues: list[tuple[float, float]]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def households_model(cfg: Any, strategic: bool = False) -> ExternalityModel:
    """The model of ``cfg`` for price-taking households, or (``strategic``) for households who take their own price
    impact under Walrasian clearing into account (``f = 1 - 1 / (2 N^h)``).

    Raises:
        ConfigError: ``strategic`` with a market that has no buyer-side benchmark (one line).
    """
    from abm_markets.solvers.market_power import buyer_price_factor

    f = buyer_price_factor(cfg) if strategic else 1.0
    if not math.isfinite(f):
        raise ConfigError(
            f"the buyer-side benchmark is derived for Walrasian clearing (market = {cfg.market!r}); "
            "expected market = 'walrasian' with strategic households"
        )
    return ExternalityModel(cfg, f)


def steady_states(cfg: Any, strategic: bool = False) -> list[SteadyStateInfo]:
    """Every steady state of ``cfg`` for price-taking or (``strategic``) price-impact-aware households."""
    return households_model(cfg, strategic).steady_state_info()


def stable_manifold(
    model: ExternalityModel, k_star: float, *, k_min: float, k_max: float, samples: int = 64, max_steps: int = 5000
) -> dict[str, np.ndarray]:
    """The stable manifold of the saddle steady state ``k_star``, traced backwards from its linear stable direction
    until capital leaves ``[k_min, k_max]`` or a step back has no solution.

    Returns:
        ``{"k": K_t, "k_next": K_{t+1}, "branch": +1 above / -1 below at the start}`` of every point, flattened over
        ``samples`` starting offsets that fill one fundamental domain of each branch.
    """
    lam = model.eigenvalues(k_star)
    stable = [z for z in lam if abs(z) < 1.0]
    if len(stable) != 1 or abs(stable[0].imag) > 1e-12:
        raise ConfigError(f"steady state K = {k_star:.6g} is not a saddle with a real stable root; no stable manifold")
    mu = float(stable[0].real)
    # offsets filling one fundamental domain [eps0, eps0 / |mu|) of each branch: their backward orbits cover it
    e = 1e-7 * k_star * np.abs(mu) ** (-np.linspace(0.0, 1.0, samples, endpoint=False))
    sign = np.concatenate([np.ones(samples), -np.ones(samples)])
    k1 = k_star + sign * np.tile(e, 2)
    k2 = k_star + sign * np.tile(e, 2) * mu
    ks, kn, br = [k1], [k2], [sign]
    alive = np.ones_like(k1, dtype=bool)
    for _ in range(max_steps):
        k0 = model.backward(k1, k2)
        # an orbit ends when it leaves the range, has no step back, or has stopped moving (backwards, it has
        # converged on a source: the manifold ends there)
        moving = np.abs(k0 - k1) > 1e-11 * k_star
        alive &= np.isfinite(k0) & (k0 >= k_min) & (k0 <= k_max) & moving
        if not alive.any():
            break
        ks.append(np.where(alive, k0, np.nan))
        kn.append(np.where(alive, k1, np.nan))
        br.append(sign)
        k1, k2 = np.where(alive, k0, k1), np.where(alive, k1, k2)
    ks_a, kn_a, br_a = np.concatenate(ks), np.concatenate(kn), np.concatenate(br)
    keep = np.isfinite(ks_a)
    return {"k": ks_a[keep], "k_next": kn_a[keep], "branch": br_a[keep]}


def shooting_path(
    model: ExternalityModel, k0: float, k_star: float, *, periods: int = 400, guess: np.ndarray | None = None
) -> np.ndarray | None:
    """A perfect-foresight path ``K_0 = k0, ..., K_T = k_star`` solving the stacked Euler equations by Newton's
    method, or None when the solver does not converge to a feasible path (residuals below 1e-10)."""
    t = np.arange(periods + 1)
    if guess is None:
        lam = model.eigenvalues(k_star)
        mu = float(min(abs(z) for z in lam)) if any(abs(z) < 1 for z in lam) else 0.9
        guess = k_star + (k0 - k_star) * mu**t
    x0 = np.log(guess[1:-1])

    def resid(x: np.ndarray) -> np.ndarray:
        k = np.concatenate([[k0], np.exp(x), [k_star]])
        r = model.euler_residual(k[:-2], k[1:-1], k[2:])
        return np.where(np.isfinite(r), r, 1e3)

    sol = optimize.root(resid, x0, method="hybr", options={"xtol": 1e-13, "maxfev": 200 * periods})
    r = resid(sol.x)
    if not np.all(np.abs(r) < 1e-10):
        return None
    return np.concatenate([[k0], np.exp(sol.x), [k_star]])


@dataclasses.dataclass(frozen=True)
class PerfectForesight:
    """Which saddle steady states rational-expectations paths reach from where: ``reach[name] = (K_lo, K_hi)``, the
    projection of each saddle's stable manifold on initial capital, and ``overlap`` (the interval where two saddles
    are both reachable: expectations decide) or None (history decides)."""

    steady_states: list[SteadyStateInfo]
    reach: dict[str, tuple[float, float]]
    overlap: tuple[float, float] | None
    manifolds: dict[str, dict[str, np.ndarray]]

    def reachable(self, k0: float) -> list[str]:
        return [n for n, (lo, hi) in self.reach.items() if lo <= k0 <= hi]

    def to_json(self) -> dict[str, Any]:
        return {
            "reach": {k: list(v) for k, v in self.reach.items()},
            "overlap": list(self.overlap) if self.overlap else None,
        }


def perfect_foresight(
    cfg: Any, strategic: bool = False, *, k_range: tuple[float, float] | None = None, samples: int = 64
) -> PerfectForesight:
    """Trace the stable manifold of every saddle steady state (named ``low``, ``high`` or ``k=<value>``) over
    ``k_range`` (default: a third of the lowest to twice the highest steady state) and report where each is
    reachable."""
    model = households_model(cfg, strategic)
    info = model.steady_state_info()
    ks = [s.capital for s in info]
    lo, hi = k_range or (ks[0] / 3.0, 2.0 * ks[-1])
    saddles = [s for s in info if s.kind == "saddle"]
    names = {}
    for s in saddles:
        if s.capital == ks[0]:
            names[s.capital] = "low"
        elif s.capital == ks[-1]:
            names[s.capital] = "high"
        else:
            names[s.capital] = f"k={s.capital:.4g}"
    reach, manifolds = {}, {}
    for s in saddles:
        m = stable_manifold(model, s.capital, k_min=lo, k_max=hi, samples=samples)
        manifolds[names[s.capital]] = m
        reach[names[s.capital]] = (float(m["k"].min()), float(m["k"].max()))
    overlap = None
    if "low" in reach and "high" in reach:
        a, b = max(reach["low"][0], reach["high"][0]), min(reach["low"][1], reach["high"][1])
        if a < b:
            overlap = (a, b)
    return PerfectForesight(steady_states=info, reach=reach, overlap=overlap, manifolds=manifolds)


def steady_state_report(cfg: Any, samples: int = 8) -> dict[str, Any]:
    """What ``abm-markets steady-state investment-externality`` prints: ``steady_states`` (price takers),
    ``steady_states_strategic`` (households who take their own price impact into account; Walrasian only) and the
    reach of each saddle under perfect foresight for both (``perfect_foresight``, ``perfect_foresight_strategic``)."""
    from abm_markets.solvers.market_power import buyer_price_factor

    out: dict[str, Any] = {}
    for key, strategic in (("", False), ("_strategic", True)):
        if strategic and not math.isfinite(buyer_price_factor(cfg)):
            out["steady_states_strategic"] = None
            out["perfect_foresight_strategic"] = None
            continue
        pf = perfect_foresight(cfg, strategic, samples=samples)
        out[f"steady_states{key}"] = [s.to_json() for s in pf.steady_states]
        out[f"perfect_foresight{key}"] = pf.to_json()
    return out
