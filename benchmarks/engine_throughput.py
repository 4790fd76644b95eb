"""Agent-steps per second of the batched engine against stepping the Mesa agents one at a time.

Economy: the planner formulation with N^h = 100 households and N^c = 1 capital good
(defaults otherwise), every household spending the deterministic steady-state share
(:class:`abm_markets.agents.SteadyStateShare`). One "agent-step" is one household
through one period.

Measured in the same run:

* engine: ``observe -> rule.act -> step`` on a batch of B in {1, 64, 1024} economies,
  torch float64 and float32, on ``--device`` (CPU by default; ``cuda`` supported);
* baseline: :class:`abm_markets.model.InvestmentModel` in ``agents`` mode (each Household
  and the pool computing in plain Python, Mesa's shuffled activation, DataCollector off);
* for reference, the Mesa model in ``engine`` mode (B = 1 through the engine).

Each configuration runs for at least ``--min-time`` seconds after a warm-up, with
``torch.set_num_threads(1)`` and with torch's default thread count, each thread setting
in a fresh subprocess (changing the thread count inside a process that has already
used the OpenMP pool distorts the timings).

Usage::

    python benchmarks/engine_throughput.py [--quick] [--device cpu|cuda] [--min-time S]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch

from abm_markets.agents import SteadyStateShare
from abm_markets.engine import InvestmentConfig, InvestmentEconomy
from abm_markets.model import InvestmentModel

N_HOUSEHOLDS = 100
BATCHES = (1, 64, 1024)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_engine(cfg: InvestmentConfig, batch: int, dtype: torch.dtype, device: torch.device, min_time: float) -> dict:
    """Steps of the batched engine (observation, rule, step) per second."""
    eco = InvestmentEconomy(cfg, device=device, dtype=dtype)
    rule = SteadyStateShare(cfg)
    g = torch.Generator(device=device).manual_seed(0)
    state = eco.initial_state(batch, g)
    for _ in range(3):  # warm-up
        state, _ = eco.step(state, {"households": rule.act(eco.observe(state))}, g)
    _sync(device)
    steps, t0 = 0, time.perf_counter()
    while True:
        for _ in range(5):
            state, _ = eco.step(state, {"households": rule.act(eco.observe(state))}, g)
        steps += 5
        _sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time:
            break
    if not torch.isfinite(state.capital).all():
        raise RuntimeError("non-finite capital in the benchmark economy")
    return {"steps": steps, "seconds": elapsed, "agent_steps_per_s": batch * cfg.n_households * steps / elapsed}


def time_model(cfg: InvestmentConfig, mode: str, min_time: float) -> dict:
    """Steps of the Mesa model (one economy) per second."""
    model = InvestmentModel(cfg, seed=0, mode=mode, rules=SteadyStateShare(cfg), collect=False)
    for _ in range(2):
        model.step()
    steps, t0 = 0, time.perf_counter()
    while True:
        model.step()
        steps += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time and steps >= 3:
            break
    return {"steps": steps, "seconds": elapsed, "agent_steps_per_s": cfg.n_households * steps / elapsed}


def run(device: torch.device, min_time: float, threads: int) -> list[dict]:
    """All rows for one thread setting (in this process); ``threads = 0`` leaves torch's default alone.

    (Calling ``torch.set_num_threads(n)`` even with ``n`` equal to the default slowed the
    engine down by two orders of magnitude on the loaded 2-core reference machine, so the
    default setting is measured without calling it.)
    """
    if threads > 0:
        torch.set_num_threads(threads)
    threads = torch.get_num_threads() if threads == 0 else threads
    cfg = InvestmentConfig(n_households=N_HOUSEHOLDS, n_capital_goods=1, formulation="planner")
    base = time_model(cfg, "agents", min_time)
    rows = [{"threads": threads, "front end": "Mesa agents (Python), baseline", "dtype": "float", "B": 1, **base}]
    mesa_engine = time_model(cfg, "engine", min_time)
    rows.append({"threads": threads, "front end": "Mesa model, engine mode", "dtype": "float64", "B": 1, **mesa_engine})
    for dtype in (torch.float64, torch.float32):
        for batch in BATCHES:
            r = time_engine(cfg, batch, dtype, device, min_time)
            name = f"engine ({device.type})"
            rows.append({"threads": threads, "front end": name, "dtype": str(dtype).split(".")[-1], "B": batch, **r})
    for r in rows:
        r["ratio"] = r["agent_steps_per_s"] / base["agent_steps_per_s"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short timings (0.2 s per configuration)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--min-time", type=float, default=None, help="seconds per configuration (default 1.5)")
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)  # worker: one setting, JSON out
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    min_time = args.min_time if args.min_time is not None else (0.2 if args.quick else 1.5)
    if args.threads is not None:
        print(json.dumps(run(device, min_time, args.threads)))
        return
    default_threads = torch.get_num_threads()
    settings = [1, 0] if default_threads != 1 else [0]  # 0 = torch's default, set_num_threads not called
    print(
        f"engine throughput: planner, N^h={N_HOUSEHOLDS}, N^c=1, steady-state-share actions; "
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"device {device}, default threads {default_threads}, >= {min_time} s per row"
    )
    rows = []
    for threads in settings:
        cmd = [
            sys.executable,
            __file__,
            "--device",
            str(device),
            "--min-time",
            str(min_time),
            "--threads",
            str(threads),
        ]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows += json.loads(out.strip().splitlines()[-1])
    print()
    print("| torch threads | front end | dtype | B | steps | agent-steps/s | ratio to Mesa agents |")
    print("|---:|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['threads']} | {r['front end']} | {r['dtype']} | {r['B']} | {r['steps']} | "
            f"{r['agent_steps_per_s']:,.0f} | {r['ratio']:,.1f} |"
        )
    best = max(rows, key=lambda r: r["ratio"])
    print()
    print(
        f"best: {best['front end']} {best['dtype']} B={best['B']} threads={best['threads']}: "
        f"{best['agent_steps_per_s']:,.0f} agent-steps/s = {best['ratio']:,.0f}x the Mesa agents"
    )


if __name__ == "__main__":
    main()
