"""Interchangeable decision sources for the households of the batched investment economy.

A *source* maps a batched state to the households' engine actions, ``state -> [B, H, J]`` (spending shares or
investment quantities, as the economy's ``action`` setting says). Every source has the same call signature, so
any household, or the whole group, can be driven by:

* :class:`PolicySource` — a trained Tianshou policy (from a :class:`~abm_markets.learn.glue.GroupLearner` or a
  checkpoint, see :func:`policy_from_checkpoint`), deterministic (the mode of its action distribution);
* :class:`ConstantShareSource` / :func:`steady_state_share_source` — a rule: spend a fixed share of output;
* :class:`DPSource` — the DP-optimal policy of the one-household, one-good planner (``solve_vfi``);
* :class:`RandomSource` — uniform random shares from an explicit generator;
* :class:`MixedSource` — a population: household ``i`` is driven by the source assigned to it (some learned,
  some rule-based, ...).

:func:`as_decide` turns a source into the ``state -> {"households": ...}`` decision function used by
:mod:`abm_markets.learn.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from abm_markets.engine.investment import InvestmentEconomy, InvestmentState, steady_state_spending_share

__all__ = [
    "ConstantShareSource",
    "DPSource",
    "MixedSource",
    "PolicySource",
    "RandomSource",
    "RuleSource",
    "Source",
    "as_decide",
    "policy_from_checkpoint",
    "steady_state_share",
    "steady_state_share_source",
]


class Source(Protocol):
    """Decision source: batched state -> households' engine actions ``[B, H, J]``."""

    def __call__(self, state: InvestmentState) -> Tensor: ...


def steady_state_share(economy: InvestmentEconomy) -> float:
    """Total spending share ``sum_j s_j`` of output in the deterministic steady state (``Z = 1``); see
    :func:`abm_markets.engine.investment.steady_state_spending_share`."""
    return steady_state_spending_share(economy.cfg)


def _quantities_from_shares(economy: InvestmentEconomy, state: InvestmentState, shares: Tensor) -> Tensor:
    """Investment requests that implement spending shares ``[B, H, J]`` (planner: solve the pooled cost)."""
    y = economy.tfp(state) * torch.exp((economy.cfg.alpha / economy.n_goods) * torch.log(state.capital).sum(-1))
    x = shares * y.unsqueeze(-1)  # spending [B, H, J]
    pooled = x.sum(-2, keepdim=True)
    total = torch.sqrt(2.0 * pooled / economy.cfg.phi)
    return torch.where(pooled > 0, x / pooled.clamp_min(1e-300), 0.0) * total


class ConstantShareSource:
    """Rule: every household spends ``share / N^c`` of its output on each capital good.

    Args:
        economy: The economy (for shapes and, with quantity actions, to convert shares to quantities).
        share: Total spending share in ``[0, 1)``.
    """

    def __init__(self, economy: InvestmentEconomy, share: float):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"share = {share!r} is invalid; expected 0 <= share < 1")
        self.economy, self.share = economy, share

    def __call__(self, state: InvestmentState) -> Tensor:
        s = torch.full_like(state.capital, self.share / self.economy.n_goods)
        if self.economy.cfg.action == "quantities":
            return _quantities_from_shares(self.economy, state, s)
        return s


def steady_state_share_source(economy: InvestmentEconomy) -> ConstantShareSource:
    """The rule that spends the deterministic steady-state share (:func:`steady_state_share`)."""
    return ConstantShareSource(economy, steady_state_share(economy))


class DPSource:
    """The DP-optimal policy of the one-household, one-good planner.

    ``s = phi/2 (K'(K, z) - (1-delta) K)^2 / (z K^alpha)`` from :class:`~abm_markets.solvers.investment.VFISolution`;
    the solver's shock index is ``z_idx * n_agg + agg_idx`` (idiosyncratic-major, as ``tfp_chain``).

    With ``table_size`` the share is tabulated once on a uniform grid of ``table_size`` capital points per shock
    state spanning the solver's grid, and linearly interpolated (clamped at the ends); this is ~100x faster than
    maximising the Bellman right-hand side at every call and, for the smooth policy here, differs from it by less
    than 1e-6 in ``K'``/``K`` (2001 points, default calibration; tested). ``table_size=None`` calls the solver
    every time.

    Args:
        economy: The economy (N^h = N^c = 1, planner).
        solution: ``solve_vfi(economy.cfg)``.
        table_size: Points of the interpolation table per shock state, or None.
    """

    def __init__(self, economy: InvestmentEconomy, solution: Any, *, table_size: int | None = 2001):
        if economy.n_households != 1 or economy.n_goods != 1:
            raise ValueError("DPSource needs one household and one capital good")
        self.economy = economy
        self.solution = solution.to(economy.device) if hasattr(solution, "to") else solution
        self.table: Tensor | None = None
        if table_size is not None:
            grid = self.solution.grid
            self.k_lo, self.k_hi = float(grid[0]), float(grid[-1])
            kk = torch.linspace(self.k_lo, self.k_hi, table_size, dtype=torch.float64, device=grid.device)
            n_s = self.solution.n_states
            self.table = torch.stack(
                [self.solution.saving_share(kk, torch.full_like(kk, i, dtype=torch.long)) for i in range(n_s)]
            )

    def _share(self, k: Tensor, zi: Tensor) -> Tensor:
        if self.table is None:
            return self.solution.saving_share(k, zi)
        n = self.table.shape[1]
        x = ((k - self.k_lo) / (self.k_hi - self.k_lo) * (n - 1)).clamp(0.0, n - 1.0)
        i0 = x.floor().long().clamp_max(n - 2)
        w = x - i0
        return self.table[zi, i0] * (1.0 - w) + self.table[zi, i0 + 1] * w

    def z_index(self, state: InvestmentState) -> Tensor:
        return state.z_idx[:, 0] * self.economy.agg.n_states + state.agg_idx

    def __call__(self, state: InvestmentState) -> Tensor:
        k = state.capital[:, 0, 0].to(torch.float64)
        share = self._share(k, self.z_index(state)).to(state.capital.dtype)
        s = share.reshape(-1, 1, 1)
        if self.economy.cfg.action == "quantities":
            return _quantities_from_shares(self.economy, state, s)
        return s


class RandomSource:
    """Uniform random spending: total share ``~ U(0, max_share)`` split uniformly at random across goods.

    Args:
        economy: The economy.
        generator: Explicit source of randomness.
        max_share: Upper bound of the total share.
    """

    def __init__(self, economy: InvestmentEconomy, generator: torch.Generator, max_share: float = 0.3):
        self.economy, self.generator, self.max_share = economy, generator, max_share

    def __call__(self, state: InvestmentState) -> Tensor:
        shape = state.capital.shape
        u = torch.rand(
            (*shape[:-1], shape[-1] + 1),
            generator=self.generator,
            device=state.capital.device,
            dtype=state.capital.dtype,
        )
        split = u[..., :-1] / u[..., :-1].sum(-1, keepdim=True)
        s = split * (self.max_share * u[..., -1:])
        if self.economy.cfg.action == "quantities":
            return _quantities_from_shares(self.economy, state, s)
        return s


class RuleSource:
    """A decision rule of :mod:`abm_markets.agents.rules` (``act(obs) -> shares``) applied to every household.

    The rule sees each household's engine observation (:meth:`InvestmentEconomy.observe`, the economy's
    information structure) and returns spending shares ``[..., J]`` (converted to quantities when the economy
    takes quantity actions).

    Args:
        economy: The economy.
        rule: Any object with ``act(obs [B, H, D]) -> [B, H, J]`` (torch in, torch out).
    """

    def __init__(self, economy: InvestmentEconomy, rule: Any):
        self.economy, self.rule = economy, rule

    def __call__(self, state: InvestmentState) -> Tensor:
        s = torch.as_tensor(
            self.rule.act(self.economy.observe(state)), dtype=state.capital.dtype, device=state.capital.device
        )
        s = s.expand_as(state.capital)
        if self.economy.cfg.action == "quantities":
            return _quantities_from_shares(self.economy, state, s)
        return s


class PolicySource:
    """A trained policy of a household or planner group, played deterministically (mode of its distribution).

    Args:
        learner: A :class:`~abm_markets.learn.glue.GroupLearner` (trained or restored from a checkpoint).
        explore: Sample from the policy instead of playing its mode.
        generator: Generator for sampling when ``explore``.
    """

    def __init__(self, learner: Any, *, explore: bool = False, generator: torch.Generator | None = None):
        self.learner, self.explore, self.generator = learner, explore, generator

    def __call__(self, state: InvestmentState) -> Tensor:
        raw = self.learner.act(state, explore=self.explore, generator=self.generator)
        return self.learner.group.to_engine(raw, state).to(state.capital.dtype)


class MixedSource:
    """A population of households, each driven by its own source.

    Args:
        economy: The economy.
        assignment: ``{source: household indices}``; every household must be covered exactly once.
    """

    def __init__(
        self,
        economy: InvestmentEconomy,
        assignment: Sequence[tuple[Source | Callable[[InvestmentState], Tensor], Sequence[int]]],
    ):
        covered = sorted(i for _, idx in assignment for i in idx)
        if covered != list(range(economy.n_households)):
            raise ValueError(
                f"MixedSource must assign each of the {economy.n_households} households exactly once; got {covered}"
            )
        self.economy = economy
        self.assignment = [
            (src, torch.as_tensor(list(idx), dtype=torch.long, device=economy.device)) for src, idx in assignment
        ]

    def __call__(self, state: InvestmentState) -> Tensor:
        out = torch.empty_like(state.capital)
        for src, idx in self.assignment:
            out[:, idx] = src(state)[:, idx].to(out.dtype)
        return out


def as_decide(
    source: Source | Callable[[InvestmentState], Tensor], firms: Callable[[InvestmentState], Tensor] | None = None
) -> Callable[[InvestmentState], dict[str, Tensor]]:
    """Wrap a households' source (and optionally a firms' one) as ``state -> actions`` for the engine."""

    def decide(state: InvestmentState) -> dict[str, Tensor]:
        out = {"households": source(state)}
        if firms is not None:
            out["firms"] = firms(state)
        return out

    return decide


def policy_from_checkpoint(
    economy: InvestmentEconomy, checkpoint: Mapping[str, Any], group: str = "planner"
) -> PolicySource:
    """Rebuild a trained group's policy from a training checkpoint (``torch.load(..., weights_only=True)``): the
    deployed one, i.e. the averaged actor where the run trained with ``policy_average``."""
    from abm_markets.learn.train import TrainConfig, Trainer

    cfg = TrainConfig.from_dict(checkpoint["train_config"])
    trainer = Trainer(economy, cfg)
    trainer.load_state_dict(checkpoint)
    if trainer.averaged is not None:
        trainer.load_actor_parameters(trainer.averaged)  # the trainer is discarded: its actors become the deployed ones
    return PolicySource(trainer.learners[group])
