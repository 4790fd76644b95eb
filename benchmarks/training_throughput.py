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
   policy on a fixed evaluation path, starting from twice the steady-state saving share (``init_shift = 0.7``);
4. time to a stated accuracy for N^h in {1, 10, 100, 1000}: the PPO planner with the investment-scaling settings
   (difference credit along the mean path continued 128 periods, averaged actor, 256 / N^h economies but at
   least 64, the update on at most 64 and at least 8 economies), started at twice the steady-state share (long-run
   K / K_ss = 1.43), evaluated every 5 iterations on a fixed path (16 economies x 400 periods): training seconds
   to the first evaluation within 2% of K_ss and to the scenario's convergence criterion (4 evaluations in a row
   within a 0.2% band, the last within 2%; at most 100 iterations or 300 s); agent steps per second of that
   training against the bare engine stepping the same economies.

Usage: ``python benchmarks/training_throughput.py [--quick] [--accuracy-only]``.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from abm_markets.engine.config import InvestmentConfig
from abm_markets.engine.investment import InvestmentEconomy
from abm_markets.learn import evaluate as ev
from abm_markets.learn.experiments import dp_reference
from abm_markets.learn.sources import steady_state_share_source
from abm_markets.learn.train import TrainConfig, Trainer
from abm_markets.scenarios.learning import ScalingScenarioConfig


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


def time_to_accuracy(h: int, max_iterations: int, max_wall_s: float) -> dict[str, float]:
    """Train the planner for ``h`` households with the investment-scaling settings: the training seconds to the
    first evaluation within 2% of the steady state and to the scenario's convergence criterion (the last 4
    evaluations within a 0.2% band), stopping there or at the caps."""
    from abm_markets.scenarios.learning import capital_settled

    eco = InvestmentEconomy(InvestmentConfig(n_households=h))
    path = ev.make_eval_path(eco, 16, 400, torch.Generator().manual_seed(1))
    sc = ScalingScenarioConfig()
    cfg = sc.case_train_config(h, 1)  # the investment-scaling preset's settings
    b = cfg.n_economies
    tr = Trainer(eco, cfg, seed=0)
    k0 = ev.welfare(eco, path, tr.decide())["mean_capital_ratio"]
    k = k0
    reached = settled = float("nan")
    rows: list[dict[str, float]] = []
    for it in range(min(max_iterations, cfg.iterations)):
        tr.iteration()
        if (it + 1) % sc.eval_every == 0:
            k = ev.welfare(eco, path, tr.decide())["mean_capital_ratio"]
            rows.append({"eval_capital_ratio": k})
            if abs(k - 1.0) <= 0.02 and math.isnan(reached):
                reached = tr.train_wall_s
            if abs(k - 1.0) <= 0.02 and capital_settled(rows, sc.converge_window, sc.converge_tol):
                settled = tr.train_wall_s
                break
        if tr.train_wall_s > max_wall_s:
            break
    engine = engine_rate(eco, b, 64 * 2) * h
    return {
        "households": h,
        "economies": b,
        "k_start": k0,
        "k_end": k,
        "train_wall_s_to_accuracy": reached,
        "train_wall_s_to_settled": settled,
        "iterations": tr.iteration_done,
        "agent_steps": tr.agent_steps,
        "agent_steps_per_s": tr.agent_steps / tr.train_wall_s,
        "engine_agent_steps_per_s": engine,
    }


def print_accuracy(quick: bool, households: tuple[int, ...] = (1, 10, 100, 1000)) -> None:
    print(
        "\ntime to |K / K_ss - 1| <= 2% and to settled (4 evaluations within 0.2%) "
        "(PPO planner, investment-scaling settings, start K / K_ss = 1.43)"
    )
    print(
        f"{'N^h':>5} {'B':>4} {'K start':>8} {'K end':>7} {'its':>4} {'s to 2%':>8} {'s settled':>10} "
        f"{'agent-steps':>12} {'PPO agent-steps/s':>18} {'engine agent-steps/s':>21} {'ratio':>7}"
    )
    for h in households:
        r = time_to_accuracy(h, 10 if quick else 100, 60.0 if quick else 300.0)
        print(
            f"{h:>5} {r['economies']:>4} {r['k_start']:>8.3f} {r['k_end']:>7.3f} {r['iterations']:>4} "
            f"{r['train_wall_s_to_accuracy']:>8.1f} {r['train_wall_s_to_settled']:>10.1f} "
            f"{r['agent_steps']:>12,} {r['agent_steps_per_s']:>18,.0f} {r['engine_agent_steps_per_s']:>21,.0f} "
            f"{r['engine_agent_steps_per_s'] / r['agent_steps_per_s']:>6.1f}x",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer iterations (smoke run)")
    ap.add_argument("--accuracy-only", action="store_true", help="only the time-to-accuracy table")
    ap.add_argument(
        "--households", type=int, nargs="+", default=[1, 10, 100, 1000], help="N^h of the time-to-accuracy table"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)  # what the trainer uses (TrainConfig.torch_threads); the engine baseline likewise
    if args.accuracy_only:
        print_accuracy(args.quick, tuple(args.households))
        return
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
    print_accuracy(args.quick, tuple(args.households))


if __name__ == "__main__":
    main()
