"""``abm-markets compare`` and ``abm-markets report`` on run folders written here (config, summary, manifest and a
plot, as a finished run leaves them): the statistics against the standard library's and scipy's, the HTML page
self-contained, bad input one line with exit status 2 and nothing written."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import polars as pl
import pytest
from scipy import stats

from abm_markets.cli import main
from abm_markets.reports import compare, flatten_summary, load_runs, reference_gaps
from abm_markets.runs import atomic_write_toml

VALUES = {1: [0.61, 0.66, 0.64], 2: [0.93, 0.95, 0.90]}


def _png() -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import io

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sweep")
    png = _png()
    for m, vals in VALUES.items():
        for seed, v in enumerate(vals):
            d = out / f"firms_per_good={m}-s{seed}"
            (d / "plots").mkdir(parents=True)
            atomic_write_toml(
                d / "config.toml",
                {"run": {"scenario": "market-learning", "seed": seed}, "scenario": {"firms_per_good": m, "alpha": 0.3}},
            )
            summary = {
                "capital_learned": v * 10.0,
                "capital_competitive": 10.0,
                "markup_learned": 1.0 / v,
                "markup_nash": float("nan"),
                "converged": seed != 1,
                "market": "walrasian",
                "subgroups": [{"households": "0-4", "welfare": 10.0 + seed}],
            }
            (d / "summary.json").write_text(json.dumps(summary))
            (d / "manifest.json").write_text(json.dumps({"status": "complete", "seed": seed}))
            (d / "plots" / "curve.png").write_bytes(png)
    return out


def test_flatten_summary() -> None:
    flat = flatten_summary({"a": 1, "b": {"c": 2.0, "d": {"e": "x"}}, "g": [{"h": 3}, 4], "skip": object()})
    assert flat == {"a": 1, "b.c": 2.0, "b.d.e": "x", "g.0.h": 3, "g.1": 4}


def test_compare_statistics_against_the_standard_library(sweep: Path) -> None:
    table = compare(load_runs([sweep]))
    assert set(table["firms_per_good"].unique()) == {"1", "2"}  # the differing setting, not alpha
    for m, vals in VALUES.items():
        row = table.filter((pl.col("firms_per_good") == str(m)) & (pl.col("metric") == "capital_learned")).row(
            0, named=True
        )
        xs = [10.0 * v for v in vals]
        lo, hi = stats.t.interval(0.95, len(xs) - 1, loc=statistics.mean(xs), scale=stats.sem(xs))
        assert row["n"] == 3 and row["seeds"] == [0, 1, 2]
        assert row["mean"] == pytest.approx(statistics.mean(xs), rel=1e-12)
        assert row["ci95"] == pytest.approx((hi - lo) / 2, rel=1e-10)
        assert (row["min"], row["max"]) == (min(xs), max(xs))
    nash = table.filter(pl.col("metric") == "markup_nash")
    assert nash["n"].to_list() == [0, 0] and all(math.isnan(x) for x in nash["mean"])  # NaN benchmarks left out
    conv = table.filter((pl.col("metric") == "converged") & (pl.col("firms_per_good") == "1")).row(0, named=True)
    assert conv["mean"] == pytest.approx(2 / 3)
    assert "subgroups.0.welfare" in table["metric"].to_list()
    gaps = reference_gaps(load_runs([sweep / "firms_per_good=1-s0"])[0].summary)
    assert gaps == [("capital_learned", "capital_competitive", 6.1, 10.0, pytest.approx(0.61))]


def test_compare_and_report_commands(sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(sweep), "--keys", "capital_*"]) == 0
    text = capsys.readouterr().out
    assert "firms_per_good = 2" in text and "capital_learned" in text and "markup_learned" not in text
    assert main(["compare", str(sweep), "--format", "parquet", "--out", str(tmp_path / "c.parquet")]) == 0
    back = pl.read_parquet(tmp_path / "c.parquet")
    assert back.height == 2 * back["metric"].n_unique()
    assert main(["compare", str(sweep), "--format", "csv", "--out", str(tmp_path / "c.csv")]) == 0
    csv = pl.read_csv(tmp_path / "c.csv")
    assert csv.filter(pl.col("metric") == "capital_learned")["seeds"].to_list() == ["0;1;2", "0;1;2"]
    page = tmp_path / "report.html"
    assert (
        main(["report", str(sweep / "firms_per_good=1-s0"), str(sweep / "firms_per_good=2-s2"), "--out", str(page)])
        == 0
    )
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 2
    assert "http://" not in html and "https://" not in html and "<script" not in html  # nothing leaves the machine
    assert "capital_competitive" in html and "0.61" in html and "Summaries side by side" in html


def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    half = tmp_path / "half"
    half.mkdir()
    atomic_write_toml(half / "config.toml", {"run": {"scenario": "x", "seed": 0}, "scenario": {}})
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    cases = [
        (["compare", str(tmp_path / "missing")], "not a directory"),
        (["compare", str(empty)], "holds no finished run"),
        (["compare", str(half)], "summary.json"),
        (["compare", str(sweep), "--keys", "nothing_like_it"], "matches no summary figure"),
        (["compare", str(sweep), "--format", "parquet"], "needs --out"),
        (["compare", str(sweep), "--format", "csv", "--out", str(out / "x.parquet")], ".csv"),
        (["compare", str(sweep), "--format", "csv", "--out", str(out / "x.csv")], "does not exist"),
        (["compare", str(sweep), "--format", "xml"], "invalid choice"),
        (["report", str(sweep), "--out", str(tmp_path / "r.pdf")], ".html"),
        (["report", str(half), "--out", str(tmp_path / "r.html")], "summary.json"),
    ]
    for argv, needle in cases:
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse's own errors (one line through the project's parser)
            rc = e.code
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and needle in err, (argv, err)
    assert not out.exists() and not (tmp_path / "r.html").exists() and not (tmp_path / "r.pdf").exists()
