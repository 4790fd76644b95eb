"""Every scenario's logs follow one schema (docs/logs.md), and the README's polars example works on every run.

Each scenario listed by ``abm-markets list`` runs once with small settings (``SMALL``, taken from the scenario's
own tests where it has them); the runs are shared by the tests below. ``docs/scripts/logs_tables.py`` prints the
variable table of docs/logs.md from the same settings, and a test checks the table against the runs.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import polars as pl
import pytest

from abm_markets.runner import run_scenario
from abm_markets.runs import LOG_COLUMNS, LOG_OPTIONAL, log_frame
from abm_markets.scenarios import all_scenarios

ROOT = Path(__file__).resolve().parent.parent

_SRL = {"n_assets": 30, "asset_max": 10.0, "n_income": 2, "max_epochs": 3, "warmup_epochs": 1, "n_paths": 4,
        "horizon": 20, "tail": 5, "eval_paths": 4, "eval_periods": 10, "eval_burn_in": 5}  # fmt: skip
_LEARN = {"train_economies": 8, "train_iterations": 2, "rollout_len": 8, "eval_every": 1, "eval_paths": 4,
          "eval_periods": 40}  # fmt: skip

SMALL: dict[str, tuple[str, dict[str, object]]] = {
    "collusion-calvano": (
        "collusion-calvano",
        {"n_sessions": 12, "beta": 4e-5, "conv_window": 20_000, "max_periods": 2_000_000, "heatmap_sessions": 0},
    ),
    "collusion-budgets": (
        "collusion-budgets",
        {
            "dqn_budgets": "300",
            "ppo_budgets": "320",
            "tabular_budgets": "2000",
            "dqn_sessions": 3,
            "ppo_sessions": 3,
            "tabular_sessions": 8,
            "baseline_sessions": 4,
            "baseline_beta": 4e-5,
            "conv_window": 20_000,
            "hidden": "8,8",
        },
    ),
    "collusion-deeprl": ("collusion-deeprl", {"learner": "ppo", "n_seeds": 2, "n_economies": 4, "iterations": 3}),
    "equilibrium-selection": (
        "equilibrium-selection",
        {"betas": "0.01", "sessions_per_cell": 1, "kinds": "fictitious-play", "conv_window": 3000},
    ),
    "hank-srl": (
        "hank-srl",
        {
            "n_b": 50,
            "n_R": 7,
            "n_w": 7,
            "max_epochs": 3,
            "min_epochs": 0,
            "warmup_epochs": 1,
            "horizon": 20,
            "tail": 5,
            "n_paths": 4,
            "eval_paths": 2,
            "eval_periods": 10,
            "eval_burn_in": 5,
            "irf_periods": 5,
            "irf_burn_in": 5,
            "irf_paths": 8,
            "pc_periods": 5,
        },
    ),
    "growth-dimension": (
        "growth-dimension",
        {
            "dims": "1,2",
            "methods": "tabular-q,ppo",
            "seeds": 1,
            "tabular_periods": 50,
            "ppo_iterations": 1,
            "n_economies": 16,
            "rollout_len": 8,
            "eval_economies": 8,
            "eval_periods": 10,
            "crra_case": "false",
        },
    ),
    "huggett-pe-srl": ("huggett-pe-srl", {**_SRL, "n_r": 3}),
    "huggett-srl": ("huggett-srl", {**_SRL, "n_tfp": 2, "n_prices": 8, "stationary_reference": False}),
    "investment-ablation": ("investment-ablation", {**_LEARN, "variants": "quantities-penalty", "vfi_grid": 30}),
    "investment-markets": (
        "investment-markets",
        {"n_households": 4, "n_economies": 4, "periods": 60, "burn_in": 20},
    ),
    "investment-planner": (
        "investment-planner",
        {"learner": "dp", "n_economies": 8, "periods": 30, "burn_in": 5, "vfi_grid": 40},
    ),
    "investment-scaling": ("investment-scaling", {**_LEARN, "cases": "2x1"}),
    "ks-srl": (
        "ks-srl",
        {
            "n_a": 50,
            "n_K": 6,
            "ks_T": 300,
            "ks_burn": 100,
            "max_epochs": 4,
            "min_epochs": 0,
            "warmup_epochs": 2,
            "horizon": 30,
            "tail": 10,
            "n_paths": 4,
            "n_agents": 300,
            "agent_periods": 20,
            "euler_periods": 20,
            "irf_paths": 0,
        },
    ),
    "ks-1998": (
        "ks-1998",
        {
            "n_a": 40,
            "n_K": 4,
            "T": 400,
            "burn": 100,
            "max_outer": 3,
            "tol_egm": 1e-6,
            "max_epochs": 3,
            "min_epochs": 0,
            "warmup_epochs": 1,
            "horizon": 30,
            "tail": 10,
            "n_paths": 4,
            "euler_periods": 20,
        },
    ),
    "market-learning": (
        "market-learning",
        {
            "n_households": 2,
            "firms": "learning",
            "train_iterations": 2,
            "exploit_iterations": 0,
            "eval_paths": 4,
            "eval_periods": 40,
            "train_economies": 64,
        },
    ),
    "equilibrium-selection-macro": (
        "equilibrium-selection-macro",
        {
            "learners": "tabular-q",
            "k0_list": "9.5",
            "init_shifts": "0.0",
            "tabular_periods": 50,
            "tabular_sessions": 2,
            "eval_periods": 40,
        },
    ),
    "monopolist-q": ("monopolist-q", {"n_sessions": 10}),
    # the declared-economy scenario needs a declaration: the repository's Brock-Mirman preset
    "train-economy": (
        str(ROOT / "scenarios" / "brock-mirman.toml"),
        {"iterations": 2, "n_economies": 16, "eval_economies": 8, "eval_periods": 40},
    ),
}
"""Scenario name -> (what ``run_scenario`` runs, small settings)."""

NAMES = sorted(SMALL)


def readme_snippet() -> str:
    """The README's polars example (the python block that reads a run's ``steps.parquet``)."""
    text = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "steps.parquet" in b]
    assert len(blocks) == 1, "expected one python example reading steps.parquet in README.md"
    return blocks[0]


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("logs")
    out = {}
    for name in NAMES:
        target, settings = SMALL[name]
        over = {k: str(v) for k, v in settings.items()}
        out[name] = run_scenario(target, overrides=over, seed=0, out=base / name, progress=False)
    return out


def test_every_listed_scenario_has_small_settings() -> None:
    assert sorted(s.name for s in all_scenarios() if s.source is None) == NAMES  # not --import'ed ones


@pytest.mark.parametrize("name", NAMES)
def test_logs_follow_the_schema(runs: dict[str, Path], name: str) -> None:
    for kind in ("steps", "markets"):
        path = runs[name] / f"{kind}.parquet"
        if kind == "markets" and not path.exists():
            continue
        df = pl.read_parquet(path)
        assert df.height > 0, (name, kind)
        required = LOG_COLUMNS[kind]
        assert df.columns[: len(required)] == list(required), (name, kind, df.columns)
        for col, dtype in required.items():
            assert df.schema[col] == dtype, (name, kind, col, df.schema[col])
            assert df[col].null_count() == 0, (name, kind, col)
        for col in df.columns[len(required) :]:
            assert df.schema[col] == LOG_OPTIONAL[col], (name, kind, col)
        assert log_frame(df, kind).equals(df)  # already normalised
        # within one label combination a variable is per agent (good) or an aggregate (-1), never both
        index = "agent" if kind == "steps" else "good"
        labels = [c for c in df.columns[len(required) :] if df.schema[c] == pl.String]
        both = df.group_by("variable", *labels).agg(((pl.col(index) >= 0).any() & (pl.col(index) < 0).any()).alias("b"))
        assert not both["b"].any(), (name, kind, both.filter("b"))
        assert df["t"].min() >= 0 and df[("agent" if kind == "steps" else "good")].min() >= -1
        assert df["economy"].min() >= -1


@pytest.mark.parametrize("name", NAMES)
def test_readme_example_works_on_every_run(runs: dict[str, Path], name: str) -> None:
    code = readme_snippet().replace("runs/b96/steps.parquet", str(runs[name] / "steps.parquet"))
    ns: dict[str, object] = {}
    exec(compile(code, "README.md", "exec"), ns)
    path = ns["path"]
    assert isinstance(path, pl.DataFrame) and path.height > 0
    assert path.columns == ["t", "value"] and path["t"].is_sorted()
    assert any(math.isfinite(v) for v in path["value"].to_list())


def test_docs_table_lists_each_scenarios_variables(runs: dict[str, Path]) -> None:
    """docs/logs.md has one row per scenario whose backticked names are exactly the run's variables."""
    text = (ROOT / "docs" / "logs.md").read_text()
    table = text.split("| scenario | steps.parquet variables |", 1)[1].split("\n\n", 1)[0]
    for name in NAMES:
        rows = [ln for ln in table.splitlines() if ln.startswith(f"| `{name}` |")]
        assert len(rows) == 1, name
        cells = rows[0].split("|")
        documented = set(re.findall(r"`([^`]+)`", cells[2]))
        logged = set(pl.read_parquet(runs[name] / "steps.parquet")["variable"].unique().to_list())
        assert documented == logged, (name, documented ^ logged)


NOTEBOOK_RUNS = [("run_dashboard", n) for n in NAMES] + [
    ("collusion", "collusion-calvano"),
    ("collusion", "collusion-deeprl"),
    *(("srl_distributions", n) for n in ("hank-srl", "huggett-pe-srl", "huggett-srl", "ks-1998", "ks-srl")),
]


@pytest.mark.parametrize(("notebook", "name"), NOTEBOOK_RUNS, ids=[f"{a}-{b}" for a, b in NOTEBOOK_RUNS])
def test_analysis_notebooks_read_every_run(
    runs: dict[str, Path], notebook: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The notebooks' cells (and their checks) run on each scenario's run they are for: the dashboard on every
    scenario. In this process, so no kernel per run (tests/test_notebooks.py executes each notebook in a kernel)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat

    monkeypatch.setenv("ABM_RUN", str(runs[name]))
    monkeypatch.setattr(plt, "show", lambda *a, **k: plt.close("all"))
    nb = nbformat.read(ROOT / "analysis" / f"{notebook}.ipynb", as_version=4)
    ns: dict[str, object] = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(compile(cell.source, f"{notebook}.ipynb", "exec"), ns)
    plt.close("all")


def test_log_frame_rejects_what_the_schema_does_not_allow() -> None:
    good = pl.DataFrame({"t": [0, 1], "economy": [0, 0], "agent": [-1, -1], "variable": ["K", "K"],
                         "value": [1.0, float("nan")]})  # fmt: skip
    out = log_frame(good.with_columns(pl.col("t").cast(pl.Int32), pl.col("value").cast(pl.Float32)))
    assert out.schema == pl.Schema(LOG_COLUMNS["steps"]) and math.isnan(out["value"][1])
    # optional columns come after the required ones, in LOG_OPTIONAL's order, whatever the input order
    mixed = good.with_columns(policy=pl.lit("dp"), session=pl.lit(3)).select(
        "policy", "value", pl.exclude("value", "policy")
    )
    assert log_frame(mixed).columns == [*LOG_COLUMNS["steps"], "session", "policy"]
    with pytest.raises(ValueError, match="lacks column"):
        log_frame(good.drop("agent"))
    with pytest.raises(ValueError, match="undocumented column"):
        log_frame(good.with_columns(firm=pl.lit(0)))
    with pytest.raises(ValueError, match="'t' is Float64; expected Int64"):
        log_frame(good.with_columns(pl.col("t").cast(pl.Float64)))
    with pytest.raises(ValueError, match="null"):
        log_frame(good.with_columns(agent=pl.lit(None, dtype=pl.Int64)))
    with pytest.raises(ValueError, match="good"):
        log_frame(good, "markets")


def test_investment_logs_replay_the_first_economies_of_the_evaluation_path() -> None:
    """The learning scenarios' logs (a replay of the path's first economies) equal the full evaluation rollout's
    (all economies at once) for those economies: slicing the path changes nothing, and the columns are right."""
    import numpy as np
    import torch

    from abm_markets.engine.config import InvestmentConfig
    from abm_markets.engine.investment import InvestmentEconomy
    from abm_markets.learn import evaluate as ev
    from abm_markets.learn.sources import as_decide, steady_state_share_source
    from abm_markets.scenarios._logs import investment_logs

    eco = InvestmentEconomy(InvestmentConfig(formulation="market", n_households=3, n_capital_goods=2))
    path = ev.make_eval_path(eco, 6, 12, torch.Generator().manual_seed(5))
    decide = as_decide(steady_state_share_source(eco))
    full = ev.rollout(eco, path, decide)  # capital [T + 1, B, H, J], consumption [T, B, H]
    steps, markets = investment_logs(eco, path, decide, 2)
    assert steps["economy"].max() == 1 and markets["good"].max() == 1
    hh = steps.filter(pl.col("group") == "households").sort("t", "economy", "agent")
    for var, ref in (("consumption", full["consumption"]), ("capital", full["capital"][:-1].mean(-1))):
        got = hh.filter(pl.col("variable") == var)["value"].to_numpy().reshape(12, 2, 3)
        np.testing.assert_array_equal(got, ref[:, :2].numpy())
