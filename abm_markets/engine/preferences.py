"""Preferences."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def crra_utility(consumption: Tensor, sigma: float, floor: float = 0.0) -> Tensor:
    """CRRA utility ``u(c) = (c^(1-sigma) - 1) / (1 - sigma)``, ``log c`` for ``sigma = 1``.

    Args:
        consumption: Consumption, any shape.
        sigma: Relative risk aversion (> 0).
        floor: Consumption below ``floor`` is evaluated at ``floor`` (avoids ``log 0``).
    """
    c = consumption.clamp_min(floor) if floor > 0 else consumption
    if math.isclose(sigma, 1.0):
        return torch.log(c)
    return (c.pow(1.0 - sigma) - 1.0) / (1.0 - sigma)


def crra_marginal(consumption: Tensor, sigma: float) -> Tensor:
    """Marginal utility ``u'(c) = c^(-sigma)``."""
    return consumption.pow(-sigma)


def crra_inverse(utility: Tensor | float, sigma: float) -> Tensor | float:
    """Consumption whose CRRA utility is ``utility`` (inverse of :func:`crra_utility`)."""
    if math.isclose(sigma, 1.0):
        return torch.exp(utility) if isinstance(utility, Tensor) else math.exp(utility)
    base = utility * (1.0 - sigma) + 1.0
    return base ** (1.0 / (1.0 - sigma))
