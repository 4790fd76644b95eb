"""The buyer-side Nash set under posted prices, through the engine's market (docs/markets_learning.md, "Reference
answers"): for each N^h, the interval of symmetric steady states K / K_competitive where neither +e nor -e pays,
for one-period and persistent spending deviations, next to the derived bounds, and the same deviation search under
Walrasian clearing against the derived K_strategic.

    OMP_NUM_THREADS=1 python docs/scripts/posted_buyer_benchmark.py --households 1 2 5 10 100
"""

from __future__ import annotations

import argparse
import time

from abm_markets.engine.config import InvestmentConfig
from abm_markets.solvers.market_power import buyer_nash_set, market_benchmarks, posted_buyer_factors

HOUSEHOLDS = (1, 2, 5, 10, 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=list(HOUSEHOLDS))
    args = parser.parse_args()
    print("| N^h | deviation | engine K_low / K_c | engine K_high / K_c | derived low | derived high | s |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for h in args.households:
        cfg = InvestmentConfig(formulation="market", market="posted", n_households=h)
        k_c = market_benchmarks(cfg).capital_competitive
        for deviation in ("one-period", "persistent"):
            t0 = time.perf_counter()
            lo, hi = buyer_nash_set(cfg, deviation)
            wall = time.perf_counter() - t0
            derived = [
                f ** (1.0 / (2.0 - cfg.alpha)) if f > 0 else float("nan") for f in posted_buyer_factors(cfg, deviation)
            ]
            print(
                f"| {h} | {deviation} | {lo / k_c:.6f} | {hi / k_c:.6f} | "
                f"{derived[0]:.6f} | {derived[1]:.6f} | {wall:.1f} |",
                flush=True,
            )
    print()
    print("| N^h | Walrasian engine K_low / K_c | K_high / K_c | derived K_strategic / K_c | midpoint rel. error |")
    print("|---:|---:|---:|---:|---:|")
    for h in args.households:
        cfg = InvestmentConfig(formulation="market", market="walrasian", n_households=h)
        bm = market_benchmarks(cfg)
        lo, hi = buyer_nash_set(cfg, "one-period")
        k_c = bm.capital_competitive
        err = 0.5 * (lo + hi) / bm.capital_strategic - 1.0
        print(f"| {h} | {lo / k_c:.7f} | {hi / k_c:.7f} | {bm.capital_strategic / k_c:.7f} | {err:.1e} |", flush=True)


if __name__ == "__main__":
    main()
