"""Record engine trajectories of the shipped economies, for the bit-for-bit port test.

``python tests/data/port_trajectories.py`` wrote ``port_trajectories.pt`` on the code *before* the economy
protocol (commit 656064e); ``tests/test_protocol.py`` runs the same cases through the protocol's ``step``
and requires every tensor to be equal, bit for bit.

The cases drive each economy with actions drawn from a fixed generator (not a policy), so the comparison
tests the dynamics only.
"""

from __future__ import annotations

from pathlib import Path

import torch

T = 12
B = 5

CASES: dict[str, tuple[str, dict[str, object]]] = {
    "planner_shares": ("InvestmentPlanner-v1", {"n_households": 3, "n_capital_goods": 2, "k_init_spread": 0.3}),
    "planner_quantities": (
        "InvestmentPlanner-v1",
        {"n_households": 2, "n_capital_goods": 2, "action": "quantities", "budget": "penalty", "k_init_spread": 0.2},
    ),
    "walrasian": (
        "InvestmentMarket-v1",
        {"n_households": 4, "n_capital_goods": 2, "firms_per_good": 2, "agg_tfp_values": (0.95, 1.05)},
    ),
    "posted": (
        "InvestmentMarket-v1",
        {"formulation": "market", "n_households": 4, "market": "posted", "firms_per_good": 3},
    ),
    "posted_decision": (
        "InvestmentMarket-v1",
        {
            "formulation": "market",
            "n_households": 3,
            "n_capital_goods": 2,
            "market": "posted",
            "firms": "decision",
            "firms_per_good": 2,
        },
    ),
    "bilateral": (
        "InvestmentMarket-v1",
        {
            "formulation": "market",
            "n_households": 5,
            "market": "bilateral",
            "network": "random",
            "firms_per_good": 2,
            "bargaining_power": 0.5,
        },
    ),
    "walrasian_decision_quantities": (
        "InvestmentMarket-v1",
        {
            "formulation": "market",
            "n_households": 3,
            "market": "walrasian",
            "firms": "decision",
            "action": "quantities",
        },
    ),
    "duopoly_grid": ("LogitDuopoly-v1", {"memory": 2, "observation": "noisy"}),
    "duopoly_continuous": ("LogitDuopoly-v1", {"action": "continuous", "observation": "lagged"}),
}


def _config(env_id: str, settings: dict[str, object]):
    if env_id.startswith("LogitDuopoly"):
        from abm_markets.engine.pricing import LogitDuopolyConfig

        return LogitDuopolyConfig(**settings)
    from abm_markets.engine import InvestmentConfig

    return InvestmentConfig(**settings)


def _actions(eco, state, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Engine actions in the shapes the pre-protocol engines took."""
    if eco.spec.id.startswith("LogitDuopoly"):
        if eco.cfg.action == "grid":
            return {"firms": torch.randint(0, eco.cfg.grid_size, (B, 2), generator=gen)}
        return {"firms": eco.p_lo + (eco.p_hi - eco.p_lo) * torch.rand((B, 2), generator=gen, dtype=torch.float64)}
    h, j = eco.n_households, eco.n_goods
    u = torch.rand((B, h, j), generator=gen, dtype=torch.float64)
    acts = {"households": 0.3 * u if eco.cfg.action == "shares" else 2.0 * eco.cfg.delta * eco.k_ss * u}
    if eco.deciding_firms:
        f = torch.rand((B, j, eco.n_firms, 2), generator=gen, dtype=torch.float64)
        q = h * eco.cfg.delta * eco.k_ss / eco.n_firms
        acts["firms"] = torch.stack([eco.cfg.phi * q * (0.5 + f[..., 0]), q * (0.5 + f[..., 1])], -1)
    return acts


def _flat(obj) -> dict[str, torch.Tensor]:
    if hasattr(obj, "_asdict"):
        return {k: v for k, v in obj._asdict().items() if isinstance(v, torch.Tensor)}
    return {k: getattr(obj, k) for k in obj.__dataclass_fields__}


def _observe(eco, state) -> dict[str, torch.Tensor]:
    """Observations as the pre-protocol learners saw them."""
    return {"households" if hasattr(eco, "k_ss") else "firms": eco.observe(state), "global": eco.global_state(state)}


def record(step_fn=None, observe_fn=None) -> dict[str, dict[str, torch.Tensor]]:
    """Run every case; ``step_fn(eco, state, actions, gen)`` defaults to the engine's own ``step``,
    ``observe_fn(eco, state) -> {name: tensor}`` to the pre-protocol observations."""
    from abm_markets.engine import make_economy

    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, (env_id, settings) in CASES.items():
        eco = make_economy(env_id, _config(env_id, settings))
        env_gen = torch.Generator().manual_seed(123)
        act_gen = torch.Generator().manual_seed(456)
        state = eco.initial_state(B, env_gen)
        rec: dict[str, list[torch.Tensor]] = {}
        for _ in range(T):
            acts = _actions(eco, state, act_gen)
            if eco.spec.id.startswith("LogitDuopoly") and step_fn is None:
                acts = acts["firms"]
            state, outcome = (step_fn or (lambda e, s, a, g: e.step(s, a, g)))(eco, state, acts, env_gen)
            for k, v in (observe_fn or _observe)(eco, state).items():
                rec.setdefault(f"obs.{k}", []).append(v.clone())
            for prefix, obj in (("state", state), ("outcome", outcome)):
                for k, v in _flat(obj).items():
                    rec.setdefault(f"{prefix}.{k}", []).append(v.clone())
        out[name] = {k: torch.stack(v) for k, v in rec.items()}
    return out


if __name__ == "__main__":
    torch.save(record(), Path(__file__).with_name("port_trajectories.pt"))
