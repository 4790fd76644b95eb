"""Compare runs and write reports: ``abm-markets compare`` and ``abm-markets report``.

A *run* is a finished run directory (``config.toml``, ``summary.json``, ``manifest.json``); a *sweep folder* holds
run directories one level down. :func:`load_runs` accepts both and validates everything before anything is written.

* :func:`compare` groups the runs by the settings in which they differ (the seed aside) and gives, for every
  numeric summary figure, the number of runs, the mean, the half-width of the 95% t-interval, the extremes and the
  per-seed values (a long table, one row per group and figure);
* :func:`report_html` writes one self-contained HTML page (plots embedded as data URIs, no external resource):
  a side-by-side table of the runs' summaries, the gaps between learned figures and their reference answers, and
  per run its settings, summary, manifest and plots.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from scipy import stats

from abm_markets.errors import UserError

__all__ = [
    "RunRecord",
    "compare",
    "compare_csv",
    "compare_text",
    "flatten_summary",
    "load_runs",
    "reference_gaps",
    "report_html",
]

# suffixes of summary figures that are reference answers, in the order a learned figure is held against them
REFERENCE_SUFFIXES = ("strategic", "competitive", "nash", "joint", "dp", "reference", "ss", "steady_state")


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One finished run: its folder, scenario, seed, settings (``[scenario]`` of config.toml), flattened summary
    and manifest."""

    path: Path
    scenario: str
    seed: int
    settings: dict[str, Any]
    summary: dict[str, Any]
    manifest: dict[str, Any]


def flatten_summary(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts become dotted keys (``a.b``), lists of scalars or dicts indexed ones (``subgroups.0.k``);
    scalars (numbers, booleans, strings, None) are kept as they are."""
    out: dict[str, Any] = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_summary(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, Mapping):
                    out.update(flatten_summary(item, f"{name}.{i}."))
                elif item is None or isinstance(item, (int, float, str, bool)):
                    out[f"{name}.{i}"] = item
        elif value is None or isinstance(value, (int, float, str, bool)):
            out[name] = value
    return out


def _read_run(path: Path) -> RunRecord:
    missing = [f for f in ("config.toml", "summary.json") if not (path / f).is_file()]
    if missing:
        raise UserError(
            f"{str(path)!r} has no {' or '.join(missing)}; expected a finished run directory "
            "(config.toml, summary.json) or a sweep folder of them"
        )
    try:
        config = tomllib.loads((path / "config.toml").read_text())
        summary = json.loads((path / "summary.json").read_text())
        manifest = json.loads((path / "manifest.json").read_text()) if (path / "manifest.json").is_file() else {}
    except (OSError, ValueError) as e:
        raise UserError(f"{str(path)!r} cannot be read ({type(e).__name__}: {e}); expected a finished run") from None
    if not isinstance(summary, dict) or "run" not in config:
        raise UserError(f"{str(path)!r} is not a run directory; expected config.toml with a [run] table")
    run = config["run"]
    return RunRecord(
        path=path,
        scenario=str(run.get("scenario", "?")),
        seed=int(run.get("seed", 0)),
        settings=dict(config.get("scenario", {})),
        summary=flatten_summary(summary),
        manifest=manifest,
    )


def load_runs(paths: Sequence[str | Path]) -> list[RunRecord]:
    """The runs of ``paths`` (run directories or sweep folders), sorted by folder; one line of error on a path
    that is neither."""
    if not paths:
        raise UserError("no run directory given; expected one or more run directories or sweep folders")
    records: list[RunRecord] = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            raise UserError(f"{str(path)!r} is not a directory; expected a run directory or a sweep folder")
        if (path / "config.toml").is_file():
            records.append(_read_run(path))
            continue
        subs = sorted(p.parent for p in path.glob("*/summary.json"))
        if not subs:
            raise UserError(
                f"{str(path)!r} holds no finished run (no config.toml, no */summary.json); expected a run "
                "directory or a sweep folder"
            )
        records.extend(_read_run(p) for p in subs)
    return list({r.path.resolve(): r for r in records}.values())  # a folder named twice counts once


def _differing(records: Sequence[RunRecord]) -> list[str]:
    """Settings whose values differ between runs (and the scenario when several are compared)."""
    keys = sorted({k for r in records for k in r.settings})
    out = [k for k in keys if len({json.dumps(r.settings.get(k), sort_keys=True) for r in records}) > 1]
    if len({r.scenario for r in records}) > 1:
        out.insert(0, "scenario")
    return out


def _group_value(r: RunRecord, key: str) -> str:
    v = r.scenario if key == "scenario" else r.settings.get(key)
    return v if isinstance(v, str) else json.dumps(v)


def _numeric(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _select(names: Iterable[str], patterns: Sequence[str] | None) -> list[str]:
    names = list(names)
    if not patterns:
        return names
    out: list[str] = []
    for pat in patterns:
        rx = re.compile("^" + re.escape(pat).replace(r"\*", ".*") + "$")
        hit = [n for n in names if rx.match(n) and n not in out]
        if not hit:
            raise UserError(f"--keys {pat!r} matches no summary figure; expected one of {', '.join(names[:40])}")
        out.extend(hit)
    return out


def compare(records: Sequence[RunRecord], keys: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per group of runs (same settings but the seed) and numeric summary figure: ``n``, ``mean``,
    ``ci95`` (half-width of the t-interval; NaN for one run), ``min``, ``max``, ``values`` (per seed, in seed
    order) and ``seeds``. Group columns are the settings that differ between the runs. Non-finite values (NaN
    benchmarks) are left out of the statistics; a figure with no finite value has ``n = 0``."""
    by = _differing(records)
    numeric_names: list[str] = []
    for r in records:
        for k, v in r.summary.items():  # null is a NaN written as JSON (a benchmark undefined for these settings)
            if (v is None or _numeric(v) is not None) and k not in numeric_names and k != "seed":
                numeric_names.append(k)
    names = _select(numeric_names, keys)
    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for r in records:
        groups.setdefault(tuple(_group_value(r, k) for k in by), []).append(r)
    rows = []
    for gkey, rs in groups.items():
        rs = sorted(rs, key=lambda r: r.seed)
        for name in names:
            vals = [_numeric(r.summary.get(name)) for r in rs]
            finite = np.array([v for v in vals if v is not None and math.isfinite(v)], dtype=float)
            n = int(finite.size)
            half = float("nan")
            if n > 1:
                half = float(stats.t.ppf(0.975, n - 1) * finite.std(ddof=1) / math.sqrt(n))
            rows.append(
                {
                    **dict(zip(by, gkey, strict=True)),
                    "metric": name,
                    "n": n,
                    "mean": float(finite.mean()) if n else float("nan"),
                    "ci95": half,
                    "min": float(finite.min()) if n else float("nan"),
                    "max": float(finite.max()) if n else float("nan"),
                    "values": [float("nan") if v is None else v for v in vals],
                    "seeds": [r.seed for r in rs],
                }
            )
    schema_groups = {k: pl.String for k in by}
    return pl.DataFrame(
        rows,
        schema={
            **schema_groups,
            "metric": pl.String,
            "n": pl.Int64,
            "mean": pl.Float64,
            "ci95": pl.Float64,
            "min": pl.Float64,
            "max": pl.Float64,
            "values": pl.List(pl.Float64),
            "seeds": pl.List(pl.Int64),
        },
    )


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "nan"
    return f"{x:.4g}"


def compare_text(table: pl.DataFrame) -> str:
    """The :func:`compare` table as aligned text, one block per group."""
    group_cols = [c for c in table.columns if c not in ("metric", "n", "mean", "ci95", "min", "max", "values", "seeds")]
    lines: list[str] = []
    keyed = table.with_columns(pl.concat_str([pl.lit("")] + [pl.col(c) for c in group_cols], separator="|").alias("_g"))
    for g in keyed["_g"].unique(maintain_order=True):
        part = keyed.filter(pl.col("_g") == g)
        first = part.row(0, named=True)
        head = ", ".join(f"{c} = {first[c]}" for c in group_cols) or "all runs"
        lines.append(f"{head}  (seeds {', '.join(str(s) for s in first['seeds'])})")
        width = max(len(m) for m in part["metric"])
        for row in part.iter_rows(named=True):
            ci = "" if not math.isfinite(row["ci95"]) else f" +- {_fmt(row['ci95'])}"
            vals = ", ".join(_fmt(v) for v in row["values"])
            lines.append(f"  {row['metric']:<{width}}  {_fmt(row['mean'])}{ci}  (n = {row['n']}; {vals})")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def compare_csv(table: pl.DataFrame) -> str:
    """The :func:`compare` table as CSV; the per-seed ``values`` and ``seeds`` lists as ``;``-separated text."""
    flat = table.with_columns(pl.col(c).cast(pl.List(pl.String)).list.join(";") for c in ("values", "seeds"))
    return flat.write_csv()


def reference_gaps(summary: Mapping[str, Any]) -> list[tuple[str, str, float, float, float]]:
    """Pairs ``(learned figure, reference figure, learned, reference, learned / reference)`` of a flattened
    summary: every ``X_learned`` against each ``X_<reference>`` present (strategic, competitive, nash, joint, ...)."""
    out = []
    for key, v in summary.items():
        if not key.endswith("_learned") or _numeric(v) is None:
            continue
        stem = key[: -len("_learned")]
        for suffix in REFERENCE_SUFFIXES:
            ref = summary.get(f"{stem}_{suffix}")
            rv = _numeric(ref)
            if rv is None or not math.isfinite(rv):
                continue
            lv = float(v)
            out.append((key, f"{stem}_{suffix}", lv, rv, lv / rv if rv != 0 else float("nan")))
    return out


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0 1.2em}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}
th{background:#f3f3f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%;border:1px solid #ddd;margin:.3em 0}pre{background:#f7f7f7;padding:.6em;font-size:12px;
overflow-x:auto}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
"""


def _cell(v: Any) -> str:
    num = _numeric(v)
    if num is not None and not isinstance(v, bool):
        return f'<td class="n">{html.escape(_fmt(num))}</td>'
    return f"<td>{html.escape(str(v))}</td>"


def _table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _label(r: RunRecord, by: Sequence[str]) -> str:
    parts = [f"{k}={_group_value(r, k)}" for k in by]
    return f"{r.path.name} ({', '.join([*parts, f'seed={r.seed}'])})"


def report_html(records: Sequence[RunRecord], title: str | None = None) -> str:
    """One self-contained HTML page for the runs (see the module docstring)."""
    by = [k for k in _differing(records) if k != "seed"]
    title = title or (
        f"{records[0].scenario}: {records[0].path.name}" if len(records) == 1 else f"{len(records)} runs compared"
    )
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    keys: list[str] = []
    for r in records:
        keys.extend(k for k in r.summary if k not in keys)
    if len(records) > 1:
        parts.append("<h2>Summaries side by side</h2>")
        parts.append(
            _table(
                ["figure", *[_label(r, by) for r in records]],
                [[k, *[r.summary.get(k, "") for r in records]] for k in keys],
            )
        )
        table = compare(records)
        if table.height:
            parts.append("<h2>Across seeds (mean, 95% t-interval)</h2>")
            group_cols = by
            rows = [
                [
                    *[row[c] for c in group_cols],
                    row["metric"],
                    row["n"],
                    row["mean"],
                    row["ci95"],
                    row["min"],
                    row["max"],
                ]
                for row in table.iter_rows(named=True)
                if row["n"] > 0
            ]
            parts.append(_table([*group_cols, "figure", "n", "mean", "+-", "min", "max"], rows))
    for r in records:
        parts.append(f"<h2>{html.escape(_label(r, by))}</h2>")
        parts.append(
            f"<p>scenario <b>{html.escape(r.scenario)}</b>, seed {r.seed}, folder {html.escape(str(r.path))}</p>"
        )
        gaps = reference_gaps(r.summary)
        if gaps:
            parts.append("<h3>Learned against the reference answers</h3>")
            parts.append(_table(["learned", "reference", "learned value", "reference value", "ratio"], gaps))
        parts.append("<h3>Summary</h3>")
        parts.append(_table(["figure", "value"], list(r.summary.items())))
        for png in sorted((r.path / "plots").glob("*.png")) if (r.path / "plots").is_dir() else ():
            data = base64.b64encode(png.read_bytes()).decode("ascii")
            name = html.escape(png.stem)
            parts.append(f"<h3>{name}</h3><img alt='{name}' src='data:image/png;base64,{data}'>")
        parts.append("<h3>Settings</h3>")
        parts.append(_table(["setting", "value"], [[k, json.dumps(v)] for k, v in sorted(r.settings.items())]))
        parts.append("<h3>Manifest</h3>")
        parts.append(f"<pre>{html.escape(json.dumps(r.manifest, indent=2))}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
