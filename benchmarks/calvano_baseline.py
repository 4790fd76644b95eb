"""Benchmark: the full Calvano et al. (2020) baseline (1,000 Q-learning sessions) on this CPU.

Measures, in one run:

1. kernel compile time (or cache load) -- reported apart from run time;
2. the full baseline with the parallel numba kernel (all cores numba sees);
3. the same kernel on one thread over the first sessions (parallel speed-up);
4. the straightforward implementation -- one session at a time, a plain Python loop
   with numpy argmax (:func:`abm_markets.learn.tabular.run_session_reference`) -- on a
   subsample of the same sessions, checked to give bit-identical Q-tables and
   convergence periods, and projected to the full baseline by its cost per period.

Usage: ``python benchmarks/calvano_baseline.py [--quick]`` (``--quick``: 100 sessions,
one reference session capped at 200,000 periods).
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

from abm_markets.learn import tabular as tq
from abm_markets.solvers import pricing


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small version for a smoke check")
    ap.add_argument("--sessions", type=int, default=None, help="sessions in the full run (default 1000)")
    ap.add_argument("--ref-sessions", type=int, default=None, help="sessions run by the reference loop (default 2)")
    args = ap.parse_args()
    n_sessions = args.sessions or (100 if args.quick else 1000)
    n_ref = args.ref_sessions or (1 if args.quick else 2)
    ref_cap = 200_000 if args.quick else 10**9

    market = pricing.LogitMarket()
    p_n, p_m = pricing.bertrand_nash(market)[0], pricing.joint_monopoly(market)[0]
    pi_n = pricing.logit_profit(np.array([p_n, p_n]), market)[0]
    pi_m = pricing.logit_profit(np.array([p_m, p_m]), market)[0]
    table = pricing.profit_table(pricing.price_grid(p_n, p_m), market)
    kw = dict(m=15, memory=1, alpha=0.15, beta=4e-6, delta=0.95, conv_window=100_000)
    threads = numba.get_num_threads()
    print(f"CPU cores visible: {os.cpu_count()}, numba threads: {threads}, threading layer: ", end="")

    t0 = time.perf_counter()
    tq.run_q_learning(table, n_sessions=2, seed=0, max_periods=10, **kw)
    compile_s = time.perf_counter() - t0
    print(numba.threading_layer())
    print(f"kernel compile / cache load: {compile_s:.2f} s (not included below)")

    t0, c0 = time.perf_counter(), time.process_time()
    st = tq.run_q_learning(table, n_sessions=n_sessions, seed=0, max_periods=10**9, **kw)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    periods = int(st.t.sum())
    gain = pricing.profit_gain(tq.greedy_cycle(st.greedy, st.s, table, 15)["profit"].mean(1), pi_n, pi_m)
    print(
        f"full run: {n_sessions} sessions in {wall:.1f} s wall ({cpu:.1f} s CPU), {periods / 1e9:.3f} G periods, "
        f"{periods / wall / 1e6:.1f} M periods/s, {wall / n_sessions * 1e3:.1f} ms/session; "
        f"converged {st.done.mean():.3f}, mean periods {st.t.mean():,.0f}, Delta mean {gain.mean():.4f}"
    )

    k1 = min(n_sessions, 64)
    numba.set_num_threads(1)
    t0 = time.perf_counter()
    one = tq.run_q_learning(table, n_sessions=k1, seed=0, max_periods=10**9, **kw)
    wall1 = time.perf_counter() - t0
    numba.set_num_threads(threads)
    rate1 = one.t.sum() / wall1
    print(f"kernel, 1 thread, first {k1} sessions: {rate1 / 1e6:.1f} M periods/s")

    seeds = tq.session_seeds(0, n_ref)
    t_ref, c_ref, p_ref = 0.0, 0.0, 0
    for b in range(n_ref):
        t0, c0 = time.perf_counter(), time.process_time()
        ref = tq.run_session_reference(table, seed=int(seeds[b]), max_periods=ref_cap, **kw)
        t_ref += time.perf_counter() - t0
        c_ref += time.process_time() - c0
        p_ref += int(ref["t"])
        if ref_cap >= 10**9:
            same = np.array_equal(ref["q"], st.q[b]) and ref["t"] == st.t[b]
            print(f"  reference session {b}: {ref['t']:,} periods, identical to kernel session: {same}")
    rate_ref = p_ref / t_ref
    projected = periods / rate_ref
    print(f"reference loop, one session at a time, {n_ref} session(s): {rate_ref / 1e3:.1f} k periods/s")
    print(f"projected reference time for the full run: {projected:,.0f} s ({projected / 3600:.1f} h)")
    print(f"RATIO reference / parallel kernel (full run): {projected / wall:,.0f}x")
    print(f"RATIO 1-thread kernel / parallel kernel: {periods / rate1 / wall:.2f}x")
    # CPU-time view, robust to other processes sharing the cores: cost per period of each implementation.
    ns_kernel, ns_ref = cpu / periods * 1e9, c_ref / p_ref * 1e9
    print(f"CPU per period: kernel {ns_kernel:.1f} ns (all threads), reference {ns_ref:,.0f} ns")
    print(
        f"RATIO by CPU time, reference / kernel: {ns_ref / ns_kernel:,.0f}x per core; on {threads} free cores "
        f"(full run {cpu / threads:.1f} s vs {periods * ns_ref / 1e9:,.0f} s): {ns_ref / ns_kernel * threads:,.0f}x"
    )
    if n_sessions == 1000:
        verdict = "met" if wall <= 60.0 else "NOT met"
        print(f"target <= 60 s for 1,000 sessions: {verdict} ({wall:.1f} s wall; CPU time / 2 = {cpu / 2:.1f} s)")
    if cpu < 0.8 * threads * wall:
        print(f"note: this process got {cpu / wall:.2f} cores on average; other processes shared the CPU")


if __name__ == "__main__":
    main()
