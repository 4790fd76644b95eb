"""Print the per-scenario tables of docs/logs.md from real runs.

Usage: ``python docs/scripts/logs_tables.py [OUT_DIR]`` (default a temporary folder). Runs every scenario once with
the small settings of ``tests/test_logs_schema.py`` (the test checks the variable table against the same runs) and
prints, per scenario, the variables of ``steps.parquet`` (whether each is per agent or an aggregate, ``agent = -1``,
and the optional columns with the values they take in these runs), the variables of ``markets.parquet``, the columns of
``metrics.parquet`` and the run directory's other tables.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[2]


def _small() -> dict[str, tuple[str, dict[str, object]]]:
    spec = importlib.util.spec_from_file_location("test_logs_schema", ROOT / "tests" / "test_logs_schema.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SMALL


def _variables(df: pl.DataFrame, index: str) -> str:
    by = df.group_by("variable").agg((pl.col(index) >= 0).any().alias("per"), (pl.col(index) < 0).any().alias("agg"))
    out = []
    for row in by.sort("variable").iter_rows(named=True):
        kind = "+".join(k for k, on in (("per " + index, row["per"]), ("aggregate", row["agg"])) if on)
        out.append(f"`{row['variable']}` ({kind})")
    return ", ".join(out)


def main() -> None:
    from abm_markets.runner import run_scenario

    base = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="logs-"))
    rows = []
    for name, (target, settings) in sorted(_small().items()):
        out = base / name
        if not (out / "summary.json").exists():
            run_scenario(target, overrides={k: str(v) for k, v in settings.items()}, out=out, progress=False)
        steps = pl.read_parquet(out / "steps.parquet")
        optional = {
            c: sorted("null" if v is None else str(v).replace("|", "\\|") for v in steps[c].unique().to_list())
            for c in steps.columns[5:]
            if steps.schema[c] == pl.String
        }
        optional |= {c: ["(int)"] for c in steps.columns[5:] if c not in optional}
        markets = pl.read_parquet(out / "markets.parquet") if (out / "markets.parquet").exists() else None
        metrics = pl.read_parquet(out / "metrics.parquet").columns if (out / "metrics.parquet").exists() else []
        other = sorted(p.name for p in out.glob("*.parquet") if p.stem not in ("steps", "markets", "metrics"))
        rows.append((name, steps, optional, markets, metrics, other))

    print("| scenario | steps.parquet variables | optional columns |\n|---|---|---|")
    for name, steps, optional, *_ in rows:
        opt = "; ".join(f"`{c}`: {', '.join(v)}" for c, v in optional.items()) or "none"
        print(f"| `{name}` | {_variables(steps, 'agent')} | {opt} |")
    print("\n| scenario | markets.parquet variables | other tables |\n|---|---|---|")
    for name, _, _, markets, _, other in rows:
        mk = _variables(markets, "good") if markets is not None else "(no markets.parquet)"
        print(f"| `{name}` | {mk} | {', '.join(f'`{o}`' for o in other) or 'none'} |")
    print("\n| scenario | metrics.parquet columns |\n|---|---|")
    for name, *_, metrics, _ in rows:
        print(f"| `{name}` | {', '.join(f'`{c}`' for c in metrics)} |")
    print(f"\nruns: {base}")


if __name__ == "__main__":
    main()
