"""Long-format logs that several scenarios write the same way (the schema is docs/logs.md's).

* :func:`long_frame` -- an array ``[T, B, N]`` as long rows ``t, economy, agent|good, variable, value``;
* :func:`investment_logs` -- ``steps`` and ``markets`` frames of a policy played on the first economies of an
  evaluation path of the investment economy (learning scenarios: scaling, ablation, market-learning), labelled
  with :func:`labelled` and written with :func:`write_logs`;
* :func:`distribution_frame` and :func:`grid_frame` -- ``distribution.parquet`` and ``policy.parquet`` of the
  structural-RL scenarios: the households' distribution and savings over (assets, idiosyncratic state).

The frames are checked and written by :meth:`abm_markets.runs.RunContext.write_log` (``steps``, ``markets``) or
``write_table`` (``distribution``, ``policy``).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch

if TYPE_CHECKING:
    from abm_markets.runs import RunContext


def long_frame(arr: np.ndarray, variable: str, index: str) -> pl.DataFrame:
    """``arr [T, B, N]`` as long rows ``t, economy, <index>, variable, value``."""
    t, e, a = np.meshgrid(*(np.arange(n) for n in arr.shape), indexing="ij")
    return pl.DataFrame(
        {"t": t.ravel(), "economy": e.ravel(), index: a.ravel(), "variable": variable, "value": arr.reshape(-1)}
    )


@torch.no_grad()
def investment_logs(economy: Any, path: Any, decide: Any, n_economies: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Play ``decide`` on the first ``n_economies`` economies of an evaluation path and log every period.

    Args:
        economy: An :class:`~abm_markets.engine.investment.InvestmentEconomy`.
        path: An :class:`~abm_markets.learn.evaluate.EvalPath` (its first economies are replayed: the same
            initial states and draws).
        decide: ``state -> actions``.
        n_economies: Economies logged.

    Returns:
        ``(steps, markets)``. ``steps``: per household (``group = households``, ``agent`` = household) its
        ``capital`` per good at the start of the period (mean over its goods), ``consumption``, ``utility`` and
        ``tfp``; per capital-good firm (``group = firms``, ``agent = good * M + firm``) its ``price``,
        ``produced`` and ``profit``. ``markets``: per good its ``price``, ``produced`` and ``sold``.
    """
    n = min(n_economies, path.noise.shape[1])
    s0 = path.state0
    state = type(s0)(**{f.name: getattr(s0, f.name)[:n] for f in dataclasses.fields(s0)})
    rec: dict[str, list[torch.Tensor]] = {}
    for t in range(path.periods):
        capital = state.capital.mean(-1)  # [B, H]
        state, out = economy.step(state, decide(state), noise=path.noise[t, :n])
        rows = {
            "capital": capital,
            "consumption": out.consumption,
            "utility": out.utility,
            "tfp": out.tfp,
            "firm_price": out.firm_price.flatten(1),
            "firm_produced": out.produced.flatten(1),
            "firm_profit": out.profit.flatten(1),
            "good_price": out.price,
            "good_produced": out.produced.sum(-1),
            "good_sold": out.sold.sum(-1),
        }
        for k, v in rows.items():
            rec.setdefault(k, []).append(v)
    arr = {k: torch.stack(v).double().cpu().numpy() for k, v in rec.items()}  # [T, B, N]
    households = [long_frame(arr[k], k, "agent") for k in ("capital", "consumption", "utility", "tfp")]
    firms = [long_frame(arr[f"firm_{k}"], k, "agent") for k in ("price", "produced", "profit")]
    steps = pl.concat(
        [
            pl.concat(households).with_columns(group=pl.lit("households")),
            pl.concat(firms).with_columns(group=pl.lit("firms")),
        ]
    )
    markets = pl.concat([long_frame(arr[f"good_{k}"], k, "good") for k in ("price", "produced", "sold")])
    return steps, markets


def labelled(logs: tuple[pl.DataFrame, pl.DataFrame], **labels: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(steps, markets)`` with constant label columns (``case``, ``policy``) added."""
    cols = [pl.lit(v).alias(k) for k, v in labels.items()]
    return logs[0].with_columns(cols), logs[1].with_columns(cols)


def write_logs(ctx: RunContext, logs: list[tuple[pl.DataFrame, pl.DataFrame]]) -> None:
    """Write ``steps.parquet`` and ``markets.parquet`` from labelled frames (a label a frame lacks is null)."""
    ctx.write_log("steps", pl.concat([s for s, _ in logs], how="diagonal"))
    ctx.write_log("markets", pl.concat([m for _, m in logs], how="diagonal"))


def grid_frame(asset: Any, income: Any, policy: str, **columns: Any) -> pl.DataFrame:
    """Rows of a table over the households' (asset, idiosyncratic state) grid.

    Args:
        asset: ``(n_a,)`` asset grid.
        income: ``(n_e,)`` level of each idiosyncratic state (labour efficiency or income).
        policy: Whose policy the values belong to (``srl``, ``egm``, ``ks_algorithm``, ...).
        **columns: ``(n_a, n_e)`` values per cell (e.g. ``mass``, ``next_asset``).

    Returns:
        Columns ``asset`` (float64), ``state`` (int64, index of the idiosyncratic state), ``income`` (float64),
        ``policy`` (str) and one float64 column per entry of ``columns``.
    """

    def f64(x: Any) -> np.ndarray:
        return np.asarray(torch.as_tensor(x).double().cpu())

    a, e = f64(asset), f64(income)
    ia, ie = np.meshgrid(np.arange(a.shape[0]), np.arange(e.shape[0]), indexing="ij")
    return pl.DataFrame(
        {"asset": a[ia.ravel()], "state": ie.ravel(), "income": e[ie.ravel()], "policy": policy}
        | {k: f64(v).reshape(-1) for k, v in columns.items()}
    )


def distribution_frame(asset: Any, income: Any, mass: Any, policy: str) -> pl.DataFrame:
    """Rows of ``distribution.parquet``: :func:`grid_frame` with the ``mass`` of each cell (normalised to 1)."""
    g = torch.as_tensor(mass).double().cpu()
    return grid_frame(asset, income, policy, mass=g / g.sum())
