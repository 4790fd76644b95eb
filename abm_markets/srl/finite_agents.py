"""Finite-agent check: a solved Krusell-Smith policy drives a Mesa economy of individual households.

The distribution method (Young's lottery on the asset grid) describes a
continuum of households. Here ``N`` individual households are Mesa agents
(:class:`KSHousehold`) with their own assets (continuous, not on the grid) and
efficiency state, drawn initially from the same distribution. Every period:

    K_t = mean_i a_i,   L_t = mean_i e_i,
    r_t = alpha z_t (K_t/L_t)^(alpha-1) - delta,   w_t = (1 - alpha) z_t (K_t/L_t)^alpha,
    a_i' = policy(K_t, z_t)(a_i, e_i)   (linear interpolation in a on the policy's grid),
    c_i = (1 + r_t) a_i + w_t e_i - a_i',   e_i' ~ P_e(e_i, .)  (the model's one RNG).

With independent idiosyncratic draws, the cross-sectional mean of ``a_t`` is a
sample mean of ``N`` draws from (approximately) the continuum's ``G_t``, so the
finite-agent aggregates should agree with the distribution method within
``sd_t(a) / sqrt(N)`` (the standard error reported per period).

The households are Mesa agents (``model.agents`` holds them; each reads its
state from the model's arrays through properties), but the period's arithmetic
is vectorised over them, so 10,000 households step in milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import mesa
import numpy as np
import torch

from abm_markets.solvers.aiyagari import interp_rows

__all__ = ["KSAgentEconomy", "KSHousehold", "run_finite_agents"]

Policy = Callable[[torch.Tensor, int], torch.Tensor]


class KSHousehold(mesa.Agent):
    """One household of :class:`KSAgentEconomy`; its state lives in the model's arrays at ``index``."""

    def __init__(self, model: KSAgentEconomy, index: int) -> None:
        super().__init__(model)
        self.index = index

    @property
    def assets(self) -> float:
        """Assets ``a_i`` at the start of the current period."""
        return float(self.model.assets[self.index])

    @property
    def efficiency(self) -> float:
        """Labour efficiency ``e_i`` of the current period."""
        return float(self.model.e[self.model.state[self.index]])

    @property
    def consumption(self) -> float:
        """Consumption ``c_i`` of the last period stepped (NaN before the first step)."""
        return float(self.model.consumption[self.index])


class KSAgentEconomy(mesa.Model):
    """Mesa economy of ``n_households`` Krusell-Smith households following a given policy.

    Args:
        policy: ``policy(K, z_index) -> (n_a, n_e)`` savings on ``a_grid`` (float64).
        a_grid: ``(n_a,)`` asset grid of the policy.
        e: ``(n_e,)`` efficiency levels; ``P_e`` ``(n_e, n_e)`` their transition.
        z: ``(n_z,)`` TFP levels; ``z_path`` ``(T,)`` the TFP state of each period.
        dist0: ``(n_a, n_e)`` distribution the households are drawn from (cell by cell).
        alpha, delta: Technology.
        n_households: Number of agents.
        seed: Seeds the model's RNG (``mesa.Model(rng=seed)``), used for every draw.

    Attributes:
        datacollector: Model reporters ``K, C, L, z, se_K, se_C`` once per period.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        a_grid: torch.Tensor,
        e: torch.Tensor,
        P_e: torch.Tensor,
        z: torch.Tensor,
        z_path: torch.Tensor,
        dist0: torch.Tensor,
        alpha: float,
        delta: float,
        n_households: int = 10_000,
        seed: int = 0,
    ) -> None:
        super().__init__(rng=seed)
        self.policy = policy
        self.a_grid = a_grid.double().cpu()
        self.e = e.double().cpu().numpy()
        self.cdf_e = np.cumsum(P_e.double().cpu().numpy(), axis=1)
        self.z = z.double().cpu()
        self.z_path = z_path.cpu()
        self.alpha, self.delta = alpha, delta
        n_e = self.e.shape[0]
        p = dist0.double().cpu().numpy().reshape(-1)
        cell = self.rng.choice(p.shape[0], size=n_households, p=p / p.sum())
        self.assets = self.a_grid.numpy()[cell // n_e].copy()
        self.state = (cell % n_e).astype(np.int64)
        self.consumption = np.full(n_households, math.nan)
        self.period = 0
        self.K = self.C = self.L = self.se_K = self.se_C = math.nan
        for i in range(n_households):
            KSHousehold(self, i)
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "K": "K",
                "C": "C",
                "L": "L",
                "z": lambda m: float(m.z[m.z_path[m.period - 1]]),
                "se_K": "se_K",
                "se_C": "se_C",
            }
        )

    def step(self) -> None:
        """One period for every household (vectorised over agents)."""
        n = self.assets.shape[0]
        zi = int(self.z_path[self.period])
        a = torch.from_numpy(self.assets)
        K, L = float(a.mean()), float(self.e[self.state].mean())
        zt = float(self.z[zi])
        r = self.alpha * zt * (K / L) ** (self.alpha - 1) - self.delta
        w = (1 - self.alpha) * zt * (K / L) ** self.alpha
        pol = self.policy(torch.tensor(K, dtype=torch.float64), zi).double()  # (n_a, n_e)
        n_e = pol.shape[1]
        knots = self.a_grid.expand(n_e, -1)
        a_next_all = interp_rows(knots, pol.T.contiguous(), a.expand(n_e, -1).contiguous())  # (n_e, n)
        a_next = a_next_all.gather(0, torch.from_numpy(self.state)[None])[0].clamp(min=float(self.a_grid[0])).numpy()
        c = (1 + r) * self.assets + w * self.e[self.state] - a_next
        self.K, self.L, self.C = K, L, float(c.mean())
        self.se_K = float(self.assets.std(ddof=1)) / math.sqrt(n)
        self.se_C = float(c.std(ddof=1)) / math.sqrt(n)
        self.consumption = c
        self.assets = a_next
        u = self.rng.random(n)
        self.state = np.minimum((u[:, None] >= self.cdf_e[self.state]).sum(1), n_e - 1)
        self.period += 1
        self.datacollector.collect(self)


def run_finite_agents(policy: Policy, periods: int, **kwargs) -> dict[str, np.ndarray]:
    """Build a :class:`KSAgentEconomy` (``kwargs``), step it ``periods`` times, return the model reporters.

    Returns:
        ``{"K", "C", "L", "z", "se_K", "se_C"}`` arrays of length ``periods``, and the households at the end:
        ``assets`` and ``efficiency`` at the start of period ``periods``, ``consumption`` of the last period
        stepped (arrays of length ``n_households``).
    """
    model = KSAgentEconomy(policy, **kwargs)
    for _ in range(periods):
        model.step()
    df = model.datacollector.get_model_vars_dataframe()
    out = {k: df[k].to_numpy() for k in ("K", "C", "L", "z", "se_K", "se_C")}
    return out | {
        "assets": model.assets.copy(),
        "efficiency": model.e[model.state],
        "consumption": model.consumption.copy(),
    }
