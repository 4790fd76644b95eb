"""Welfare of decision sources on a fixed evaluation shock path, and the gap to the DP solution.

Every policy is scored on the *same* evaluation path: the same initial state (capital at the deterministic
steady state unless told otherwise, shocks from their stationary distribution) and the same pre-drawn uniforms
for every period (:meth:`InvestmentEconomy.draw_noise`), so two policies differ only through their actions.
With exogenous TFP (the chain moves independently of actions) the shock histories are then identical.

Welfare of one economy: ``W = sum_{t<T} beta^t sum_i u(C_it)`` (the planner's objective; per household for
the households' group); reported as the mean over the evaluation economies.

Consumption-equivalent (CE) gap of a policy with welfare ``W_rl`` against the DP policy with ``W_dp``: the
percentage ``lambda`` of consumption, in every period and state, that the DP economy could give up and still
be as well off as under the learned policy, ``W_dp((1 - lambda) C) = W_rl``. With ``S = n sum_{t<T} beta^t``
(``n`` households summed in ``W``):

* log utility: ``W_dp((1-lambda)C) = W_dp + S log(1 - lambda)``, so ``lambda = 1 - exp((W_rl - W_dp) / S)``;
  for ``T -> inf``, ``S = 1/(1-beta)`` and ``CE% = 100 (1 - exp((W_rl - W_dp)(1 - beta)))``.
* CRRA ``sigma != 1``: ``u((1-lambda)c) = (1-lambda)^(1-sigma) (u(c) + 1/(1-sigma)) - 1/(1-sigma)``, so
  ``lambda = 1 - ((W_rl + S/(1-sigma)) / (W_dp + S/(1-sigma)))^(1/(1-sigma))``.

Policy error: ``mean |K'_rl(K, z) - K'_dp(K, z)| / K`` over states ``(K, z)`` drawn from the ergodic set of the
DP policy (simulated with the engine under the DP policy, after a burn-in).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from abm_markets.engine.investment import InvestmentEconomy, InvestmentState, Outcome

Decide = Callable[[InvestmentState], dict[str, Tensor]]
"""A decision function: state -> engine actions (``{"households": [B, H, J]}`` and, if needed, ``"firms"``)."""

__all__ = [
    "EvalPath",
    "ce_gap_pct",
    "ergodic_states",
    "euler_errors",
    "evaluate_protocol",
    "make_eval_path",
    "policy_error",
    "rollout",
    "share_slopes",
    "welfare",
]


@dataclass(frozen=True)
class EvalPath:
    """A fixed evaluation path: initial state and every period's uniforms.

    Attributes:
        state0: Initial state of the ``B`` evaluation economies.
        noise: Uniform draws, ``[T, B, D]`` (``D`` as :meth:`InvestmentEconomy.draw_noise`).
    """

    state0: InvestmentState
    noise: Tensor

    @property
    def periods(self) -> int:
        return int(self.noise.shape[0])


def make_eval_path(
    economy: InvestmentEconomy, n_paths: int, periods: int, generator: torch.Generator, *, k0: float | None = None
) -> EvalPath:
    """Draw a fixed evaluation path.

    Args:
        economy: The economy.
        n_paths: Number of evaluation economies ``B``.
        periods: Horizon ``T`` (``beta^T`` should be negligible: 1000 periods give ``0.98^1000 ~ 2e-9``).
        generator: Source of the draws (its device must be the economy's).
        k0: Initial capital per household and good; default the deterministic steady state. No spread.

    Returns:
        The path.
    """
    state = economy.initial_state(n_paths, generator)
    k = economy.k_ss if k0 is None else k0
    state = InvestmentState(
        torch.full_like(state.capital, k),
        *(getattr(state, f) for f in ("z_idx", "agg_idx", "t", "last_spending", "last_price")),
    )
    noise = torch.stack([economy.draw_noise(n_paths, generator) for _ in range(periods)])
    return EvalPath(state, noise)


@torch.no_grad()
def rollout(economy: InvestmentEconomy, path: EvalPath, decide: Decide) -> dict[str, Tensor]:
    """Run ``decide`` along the path.

    Returns:
        ``capital [T+1, B, H, J]``, ``utility [T, B, H]``, ``reward_households [T, B, H]``,
        ``reward_planner [T, B]``, ``consumption [T, B, H]``, ``z_idx [T, B, H]``.
    """
    state = path.state0
    caps, utils, rh, rp, cons, zs = [state.capital], [], [], [], [], []
    for t in range(path.periods):
        zs.append(state.z_idx)
        state, out = economy.step(state, decide(state), noise=path.noise[t])
        caps.append(state.capital)
        utils.append(out.utility)
        rh.append(out.reward_households)
        rp.append(out.reward_planner)
        cons.append(out.consumption)
    return {
        "capital": torch.stack(caps),
        "utility": torch.stack(utils),
        "reward_households": torch.stack(rh),
        "reward_planner": torch.stack(rp),
        "consumption": torch.stack(cons),
        "z_idx": torch.stack(zs),
    }


def discount_weights(
    beta: float, periods: int, *, device: torch.device | None = None, dtype: torch.dtype = torch.float64
) -> Tensor:
    """``beta^t`` for ``t < periods``."""
    return beta ** torch.arange(periods, device=device, dtype=dtype)


def welfare(economy: InvestmentEconomy, path: EvalPath, decide: Decide) -> dict[str, float]:
    """Discounted utility along the path.

    Returns:
        ``welfare`` (mean over economies of ``sum_t beta^t sum_i u(C_it)``), ``welfare_per_household``,
        ``welfare_se`` (standard error over economies), ``mean_capital_ratio`` (mean ``K / K_ss`` over the second
        half of the path), ``periods``.
    """
    r = rollout(economy, path, decide)
    w = discount_weights(economy.cfg.beta, path.periods, device=r["utility"].device, dtype=r["utility"].dtype)
    per_economy = (r["utility"].sum(-1) * w[:, None]).sum(0)  # [B]
    half = path.periods // 2
    return {
        "welfare": float(per_economy.mean()),
        "welfare_per_household": float(per_economy.mean()) / economy.n_households,
        "welfare_se": float(per_economy.std() / math.sqrt(per_economy.numel())) if per_economy.numel() > 1 else 0.0,
        "mean_capital_ratio": float((r["capital"][half:] / economy.k_ss).mean()),
        "periods": path.periods,
    }


def ce_gap_pct(
    w_rl: float, w_dp: float, *, beta: float, crra: float, periods: int | None = None, n_households: int = 1
) -> float:
    """Consumption-equivalent welfare loss of ``w_rl`` against ``w_dp``, in percent (positive = worse than DP).

    Args:
        w_rl, w_dp: Welfare (sum over ``n_households`` of discounted utility, mean over paths).
        beta: Discount factor.
        crra: Relative risk aversion (1 = log).
        periods: Horizon ``T`` of the sums (None = infinite).
        n_households: Households summed in the welfare.
    """
    s = (1.0 - beta**periods) / (1.0 - beta) if periods is not None else 1.0 / (1.0 - beta)
    s *= n_households
    if math.isclose(crra, 1.0):
        return 100.0 * (1.0 - math.exp((w_rl - w_dp) / s))
    k = s / (1.0 - crra)
    ratio = (w_rl + k) / (w_dp + k)
    return 100.0 * (1.0 - ratio ** (1.0 / (1.0 - crra)))


@torch.no_grad()
def ergodic_states(
    economy: InvestmentEconomy,
    decide: Decide,
    n_paths: int,
    periods: int,
    generator: torch.Generator,
    *,
    burn_in: int = 300,
) -> InvestmentState:
    """States visited by ``decide`` after ``burn_in`` periods: ``n_paths * periods`` states stacked on the batch.

    Starts at the steady state; samples every period after the burn-in.
    """
    path = make_eval_path(economy, n_paths, burn_in + periods, generator)
    state = path.state0
    kept: list[InvestmentState] = []
    for t in range(burn_in + periods):
        if t >= burn_in:
            kept.append(state)
        state, _ = economy.step(state, decide(state), noise=path.noise[t])
    fields = InvestmentState.__dataclass_fields__
    return InvestmentState(*(torch.cat([getattr(s, f) for s in kept]) for f in fields))


def fixed_noise(economy: InvestmentEconomy, states: InvestmentState) -> Tensor:
    """Uniforms of one period, all 0.5 (shape of :meth:`InvestmentEconomy.draw_noise`): next period's capital does
    not depend on the shock draws, so diagnostics that only need ``K'`` and this period's flows use these."""
    h, j = economy.n_households, economy.n_goods
    return torch.full(
        (states.batch_size, 2 * h + h * j + 1), 0.5, device=states.capital.device, dtype=states.capital.dtype
    )


@torch.no_grad()
def policy_error(economy: InvestmentEconomy, states: InvestmentState, decide: Decide, reference: Decide) -> float:
    """``mean |K'(decide) - K'(reference)| / K`` over ``states`` (all households and goods)."""
    noise = fixed_noise(economy, states)  # K' does not depend on the draws: no randomness in this measure
    k1, _ = economy.step(states, decide(states), noise=noise)
    k2, _ = economy.step(states, reference(states), noise=noise)
    return float(((k1.capital - k2.capital).abs() / states.capital).mean())


@torch.no_grad()
def euler_errors(economy: InvestmentEconomy, states: InvestmentState, decide: Decide) -> Tensor:
    """Euler-equation errors ``|1 - C_implied / C|`` of a planner policy (one household, one good) at ``states``.

    With ``x = phi/2 I^2``, ``C = Z K^alpha - x``, ``K' = (1 - delta) K + I`` the planner's first-order
    condition is ``u'(C) phi I = beta E[u'(C') (alpha Z' K'^(alpha - 1) + (1 - delta) phi I')]``; the
    expectation is taken exactly over next period's shock states (idiosyncratic x aggregate chain), with the
    policy evaluated at ``(K', z')``. ``C_implied = u'^{-1}(beta E[...] / (phi I))``. States where the policy
    invests nothing (the constraint ``I >= 0`` binds) are excluded (error NaN). Returns ``[N]``.
    """
    cfg = economy.cfg
    if economy.n_households != 1 or economy.n_goods != 1 or cfg.formulation != "planner":
        raise ValueError("euler_errors covers the one-household, one-good planner")
    sigma = cfg.crra
    noise = fixed_noise(economy, states)
    nxt, out = economy.step(states, decide(states), noise=noise)
    inv = out.investment[:, 0, 0]
    c = out.consumption[:, 0]
    k1 = nxt.capital
    rhs = torch.zeros_like(c)
    p_idio, p_agg = economy.idio.transition, economy.agg.transition
    for zi in range(economy.idio.n_states):
        for ai in range(economy.agg.n_states):
            prob = p_idio[states.z_idx[:, 0], zi] * p_agg[states.agg_idx, ai]
            s1 = replace(nxt, z_idx=torch.full_like(states.z_idx, zi), agg_idx=torch.full_like(states.agg_idx, ai))
            _, out1 = economy.step(s1, decide(s1), noise=noise)
            z1 = out1.tfp[:, 0]
            mpk = cfg.alpha * z1 * k1[:, 0, 0].pow(cfg.alpha - 1.0)
            rhs = rhs + prob * out1.consumption[:, 0].pow(-sigma) * (
                mpk + (1.0 - cfg.delta) * cfg.phi * out1.investment[:, 0, 0]
            )
    marginal = cfg.beta * rhs / (cfg.phi * inv.clamp_min(1e-300))
    c_implied = marginal.pow(-1.0 / sigma)
    err = (1.0 - c_implied / c).abs()
    return torch.where(inv > 1e-12, err, torch.full_like(err, float("nan")))


@torch.no_grad()
def share_slopes(economy: InvestmentEconomy, states: InvestmentState, decide: Decide) -> dict[str, float]:
    """OLS slopes of the saving share ``s = x / Y`` on ``log K`` and ``log z`` over ``states`` (with intercept).

    A constant-share rule has both slopes 0; the DP policy's slopes measure the state dependence a learned
    policy should reproduce. One household, one good.
    """
    _, out = economy.step(states, decide(states), noise=fixed_noise(economy, states))
    share = (out.spending[:, 0, 0] / out.output[:, 0]).double()
    x = torch.stack([torch.ones_like(share), states.capital[:, 0, 0].double().log(), out.tfp[:, 0].double().log()], -1)
    coef = torch.linalg.lstsq(x, share.unsqueeze(-1)).solution[:, 0]
    return {"logk": float(coef[1]), "logz": float(coef[2])}


def outcome_welfare(outcomes: list[Outcome], beta: float) -> Tensor:
    """Discounted sum of the planner rewards of a list of outcomes, per economy ``[B]``."""
    w = discount_weights(
        beta, len(outcomes), device=outcomes[0].reward_planner.device, dtype=outcomes[0].reward_planner.dtype
    )
    return (torch.stack([o.reward_planner for o in outcomes]) * w[:, None]).sum(0)


# ------------------------------------------------------------------------------------------ any economy
def evaluate_protocol(
    economy: Any,
    decide: Callable[[Any], dict[str, Tensor]],
    *,
    n_economies: int,
    periods: int,
    seed: int,
    gamma: float,
    log_economies: int = 0,
) -> dict[str, Any]:
    """Score a decision function on any protocol economy (:mod:`abm_markets.engine.protocol`).

    The initial states and every period's shocks come from one generator seeded with ``seed``; economies draw
    their period's randomness in a fixed number of calls whatever the actions, so two decision functions
    evaluated with the same seed face the same shocks (common random numbers).

    Returns:
        ``discounted_reward``: ``{group: [B]}`` mean over the group's slots of ``sum_t gamma^t r_t``;
        ``logged``: ``{variable: [T, log_economies, ...]}`` of the first ``log_economies`` economies;
        ``logged_mean``: ``{variable: float}`` mean over periods, economies and agents; ``final_state``.
    """
    gen = torch.Generator(device=economy.device).manual_seed(seed)
    state = economy.initial_state(n_economies, gen)
    disc: dict[str, Tensor] = {}
    logged: dict[str, list[Tensor]] = {}
    sums: dict[str, float] = {}
    w = 1.0
    with torch.no_grad():
        for _ in range(periods):
            state, out = economy.step(state, decide(state), gen)
            for name, r in economy.rewards(out).items():
                disc[name] = disc.get(name, 0.0) + w * r.double().mean(-1)
            w *= gamma
            for name, v in economy.logged(state, out).items():
                sums[name] = sums.get(name, 0.0) + float(v.double().mean())
                if log_economies:
                    logged.setdefault(name, []).append(v[:log_economies].detach().double().cpu())
    return {
        "discounted_reward": disc,
        "logged": {k: torch.stack(v) for k, v in logged.items()},
        "logged_mean": {k: v / max(periods, 1) for k, v in sums.items()},
        "final_state": state,
    }
