"""Training throughput of PPO on the batched engine, and time to a 1% consumption-equivalent gap.

Measures, in the same run:

1. environment steps per second (periods x economies) during PPO training of the planner for N^h in {1, 100}
   (collection + Tianshou update), against the bare engine stepped with a fixed rule at the same batch size
   (the ratio is the cost of learning per simulated period);
2. agent steps per second of PPO training a *shared* households policy (market formulation, one slot per
   household) for N^h in {1, 10, 100, 1000}, with the update drawing at most ``update_streams = 512``
   (economy, household) streams per iteration (every household of every economy still acts and is simulated),
   against the bare engine stepping the same economies;
3. wall time and environment steps until PPO's planner (one household, one good) is within 1% CE of the DP
   policy on a fixed evaluation path, starting from twice the steady-state saving share (``init_shift = 0.7``).

Usage: ``python benchmarks/training_throughput.py [--quick]``.
"""

from __future__ import annotations

import argparse
import time

import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.learn import evaluate as ev
from abm_markets.learn.experiments import dp_reference
from abm_markets.learn.sources import steady_state_share_source
from abm_markets.learn.train import TrainConfig, Trainer


def engine_rate(eco: InvestmentEconomy, batch: int, periods: int) -> float:
    """Periods x economies per second of the bare engine under the steady-state rule."""
    gen = torch.Generator().manual_seed(0)
    state = eco.initial_state(batch, gen)
    rule = steady_state_share_source(eco)
    t0 = time.perf_counter()
    for _ in range(periods):
        state, _ = eco.step(state, {"households": rule(state)}, gen)
    return batch * periods / (time.perf_counter() - t0)


def training_rate(
    eco: InvestmentEconomy, batch: int, iterations: int, rollout: int, **settings: object
) -> tuple[float, float]:
    """(env steps/s, agent steps/s) of PPO training, after one warm-up iteration."""
    tr = Trainer(
        eco,
        TrainConfig(n_economies=batch, rollout_len=rollout, iterations=iterations + 1, checkpoint_every=0, **settings),
        seed=0,
    )
    tr.iteration()
    t0 = time.perf_counter()
    for _ in range(iterations):
        tr.iteration()
    dt = time.perf_counter() - t0
    env = batch * rollout * iterations / dt
    return env, env * eco.n_households


def time_to_gap(max_iterations: int, batch: int) -> dict[str, float]:
    from abm_markets.solvers.investment import solve_vfi

    eco = InvestmentEconomy(InvestmentConfig())
    ref = dp_reference(
        eco, solve_vfi(eco.cfg, n_k=201), torch.Generator().manual_seed(1), eval_paths=64, eval_periods=600
    )
    tr = Trainer(
        eco,
        TrainConfig(n_economies=batch, rollout_len=64, iterations=max_iterations, init_shift=0.7, checkpoint_every=0),
        seed=0,
    )

    def gap() -> float:
        w = ev.welfare(eco, ref.path, tr.decide())["welfare"]
        return ev.ce_gap_pct(w, ref.welfare, beta=eco.cfg.beta, crra=1.0, periods=ref.path.periods)

    g0 = gap()
    for _ in range(max_iterations):
        tr.iteration()
        g = gap()
        if g <= 1.0:
            return {"initial_gap_pct": g0, "gap_pct": g, "env_steps": tr.env_steps, "train_wall_s": tr.train_wall_s}
    return {"initial_gap_pct": g0, "gap_pct": gap(), "env_steps": float("nan"), "train_wall_s": float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(1)  # what the trainer uses (TrainConfig.torch_threads); the engine baseline likewise
    iters = 2 if args.quick else 5
    batch = 256
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, B = {batch}, rollout 64")
    print(f"{'N^h':>5} {'engine env-steps/s':>20} {'PPO env-steps/s':>17} {'PPO agent-steps/s':>18} {'ratio':>7}")
    for h in (1, 100):
        eco = InvestmentEconomy(InvestmentConfig(n_households=h))
        base = engine_rate(eco, batch, 64 * iters)
        env, agent = training_rate(eco, batch, iters, 64)
        print(f"{h:>5} {base:>20,.0f} {env:>17,.0f} {agent:>18,.0f} {base / env:>6.1f}x")
    print("\nshared households policy (market formulation), update on at most 512 agent streams per iteration")
    print(f"{'N^h':>5} {'engine agent-steps/s':>21} {'PPO agent-steps/s':>18} {'ratio':>7}")
    for h in (1, 10, 100, 1000):
        eco = InvestmentEconomy(InvestmentConfig(n_households=h, formulation="market"))
        b = batch if h < 1000 else 64
        base = engine_rate(eco, b, 64 * iters) * h
        _, agent = training_rate(eco, b, iters, 64, groups=("households",), update_streams=512)
        print(f"{h:>5} {base:>21,.0f} {agent:>18,.0f} {base / agent:>6.1f}x")
    res = time_to_gap(10 if args.quick else 60, batch)
    print(
        "time to 1% CE gap (N^h = 1, start at twice the steady-state share): "
        f"initial gap {res['initial_gap_pct']:.2f}%, reached {res['gap_pct']:.3f}% after "
        f"{res['env_steps']:,.0f} env steps, {res['train_wall_s']:.1f} s of training"
    )


if __name__ == "__main__":
    main()
