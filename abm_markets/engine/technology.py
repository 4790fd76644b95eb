"""Technology blocks of the investment economy (seed 000, section 3)."""

from __future__ import annotations

import torch
from torch import Tensor


def output(capital: Tensor, tfp: Tensor, alpha: float) -> Tensor:
    """Final-good output ``Y_i = Z_i * prod_j K_ij^(alpha / N^c)``.

    Args:
        capital: ``K``, shape ``[B, H, J]`` (positive).
        tfp: ``Z``, shape ``[B, H]``.
        alpha: Returns to the capital bundle.

    Returns:
        ``Y``, shape ``[B, H]``.
    """
    n_goods = capital.shape[-1]
    return tfp * torch.exp((alpha / n_goods) * torch.log(capital).sum(-1))


def externality(capital: Tensor, high: float, threshold: float, width: float) -> Tensor:
    """Aggregate production externality ``A(Kbar) = 1 + (A_H - 1) / (1 + exp(-(Kbar - K_thr) / w))``, ``[B]``.

    ``Kbar`` is the mean of ``capital`` ``[B, H, J]`` over households and goods; it is detached from the autograd
    graph: each household takes mean capital as given (a replayed household's own-return derivative does not run
    through it).
    """
    kbar = capital.detach().mean((-2, -1))
    return 1.0 + (high - 1.0) * torch.sigmoid((kbar - threshold) / width)


def accumulate(capital: Tensor, investment: Tensor, delta: float) -> Tensor:
    """``K' = (1 - delta) K + I``, shapes ``[B, H, J]``."""
    return (1.0 - delta) * capital + investment


def production_cost(quantity: Tensor, phi: float) -> Tensor:
    """Cost of producing ``I`` units of a capital good: ``phi/2 * I^2``."""
    return 0.5 * phi * quantity * quantity


def pooled_investment(spending: Tensor, phi: float) -> tuple[Tensor, Tensor]:
    """The planner's pooled production of capital goods, shared by contribution.

    Resources committed to good j, ``R_j = sum_i x_ij``, produce ``I_j = sqrt(2 R_j / phi)``
    (from ``R_j = phi/2 I_j^2``), and household i receives ``I_ij = x_ij / R_j * I_j``.

    Args:
        spending: ``x``, shape ``[B, H, J]`` (nonnegative).
        phi: Cost parameter.

    Returns:
        ``(I_ij [B, H, J], I_j [B, J])``.
    """
    pooled = spending.sum(-2)  # [B, J]
    total = torch.sqrt(2.0 * pooled / phi)
    share = torch.where(pooled.unsqueeze(-2) > 0, spending / pooled.clamp_min(1e-300).unsqueeze(-2), 0.0)
    return share * total.unsqueeze(-2), total
