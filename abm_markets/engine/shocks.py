"""Finite-state Markov shocks, sampled in batch from an explicit generator."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from abm_markets.numerics import stationary_distribution


@dataclass(frozen=True)
class MarkovChain:
    """A finite Markov chain.

    Attributes:
        values: State values, shape ``[S]``.
        transition: Row-stochastic matrix ``P[s, s'] = Pr(s' | s)``, shape ``[S, S]``.
    """

    values: Tensor
    transition: Tensor

    @property
    def n_states(self) -> int:
        return int(self.values.shape[0])

    def to(self, device: torch.device | str, dtype: torch.dtype) -> MarkovChain:
        return MarkovChain(self.values.to(device=device, dtype=dtype), self.transition.to(device=device, dtype=dtype))

    def stationary(self) -> Tensor:
        """Stationary distribution ``pi = pi P`` (one linear solve in float64), shape ``[S]``."""
        return stationary_distribution(self.transition.double()).to(self.values.dtype)

    def step(self, index: Tensor, uniform: Tensor) -> Tensor:
        """Next state indices by inverse CDF.

        Args:
            index: Current state indices (long), any shape ``[...]``.
            uniform: Uniform(0,1) draws of the same shape.

        Returns:
            Next indices, same shape as ``index``.
        """
        cdf = torch.cumsum(self.transition, dim=1)[index]  # [..., S]
        nxt = (uniform.unsqueeze(-1) >= cdf).sum(-1)
        return nxt.clamp_max(self.n_states - 1)


def persistent_chain(values: tuple[float, ...], persistence: float) -> MarkovChain:
    """Chain that stays with probability ``persistence`` and otherwise moves uniformly to another state."""
    n = len(values)
    vals = torch.tensor(values, dtype=torch.float64)
    if n == 1:
        return MarkovChain(vals, torch.ones((1, 1), dtype=torch.float64))
    p = torch.full((n, n), (1.0 - persistence) / (n - 1), dtype=torch.float64)
    p.fill_diagonal_(persistence)
    return MarkovChain(vals, p)
