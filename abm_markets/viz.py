"""Browser visualisation of Mesa models of any economy (Mesa ``SolaraViz``, matplotlib components only).

Open it with::

    solara run abm_markets/viz.py

The default page is the investment economy (:class:`InvestmentVizModel`), with sliders for the economy
(households, goods, formulation, market, firms per good, spending share rule, initial capital spread) and,
as the model runs:

* means over households of capital and consumption per period;
* the price of capital goods per period (shadow price ``phi I`` for the planner);
* bars of each household's capital, consumption and investment in the last period,
  and of each firm's sales and profit.

:func:`make_page` also builds a page for any :class:`~abm_markets.mesa_model.EconomyModel` (any protocol
economy: the logit duopoly, constructor economies, ...): one plot per economy-level logged variable over
time, and bars of a per-agent logged variable (or the reward) of each agent group in the last period::

    from abm_markets.agents import ConstantAction
    from abm_markets.engine import make_economy
    from abm_markets.engine.pricing import LogitDuopolyConfig
    from abm_markets.mesa_model import EconomyModel
    from abm_markets.viz import make_page

    model = EconomyModel(make_economy("LogitDuopoly-v1", LogitDuopolyConfig()), {"firms": ConstantAction(7)})
    page = make_page(model)  # e.g. the ``page`` of a script given to ``solara run``

A declared economy (a TOML file with an ``[economy]`` table), or an economy registered by a module of your own,
opens with ``abm-markets viz FILE.toml`` / ``abm-markets viz ECONOMY-ID --import MODULE``
(:func:`model_for`): agents play the declared reference rule when there is one, else each action's declared
``start``.

Only Mesa's matplotlib backend is used (the altair backend needs a CDN). Importing this
module builds the ``page`` object without starting a server.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import inspect
import math
import types
import warnings
from collections.abc import Callable, Mapping
from typing import Any

# Mesa's SolaraViz trips Solara's hook linter when it is imported (a warning about Mesa's code, not ours)
warnings.filterwarnings("ignore", message=".*found despite early return", category=UserWarning)

import solara
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz, make_plot_component
from mesa.visualization.utils import update_counter

from abm_markets.agents.rules import FixedShare, SteadyStateShare
from abm_markets.engine.config import InvestmentConfig
from abm_markets.errors import ConfigError, UserError, unknown
from abm_markets.mesa_model import EconomyModel
from abm_markets.model import InvestmentModel


class InvestmentVizModel(InvestmentModel):
    """:class:`InvestmentModel` with plain keyword parameters, as ``SolaraViz`` rebuilds models from them.

    Args:
        n_households, n_capital_goods, formulation, market, firms_per_good: Of :class:`InvestmentConfig`.
        share: Spending share of output per good; ``0`` means the deterministic steady-state share.
        k_init_spread: Initial capital spread around the steady state.
        seed: Model seed.
        mode: ``"engine"`` or ``"agents"``.
    """

    def __init__(
        self,
        n_households: int = 10,
        n_capital_goods: int = 1,
        formulation: str = "market",
        market: str = "posted",
        firms_per_good: int = 2,
        share: float = 0.0,
        k_init_spread: float = 0.5,
        seed: int = 0,
        mode: str = "engine",
    ) -> None:
        cfg = InvestmentConfig(
            n_households=int(n_households),
            n_capital_goods=int(n_capital_goods),
            formulation=formulation,
            market=market,
            firms_per_good=int(firms_per_good),
            k_init_spread=float(k_init_spread),
        )
        rule = (
            SteadyStateShare(cfg)
            if share <= 0
            else FixedShare(min(share, 1.0 / cfg.n_capital_goods), cfg.n_capital_goods)
        )
        super().__init__(cfg, seed=int(seed), rules=rule, mode=mode)


MODEL_PARAMS = {
    "n_households": {"type": "SliderInt", "value": 10, "label": "Households N^h", "min": 1, "max": 100, "step": 1},
    "n_capital_goods": {"type": "SliderInt", "value": 1, "label": "Capital goods N^c", "min": 1, "max": 4, "step": 1},
    "formulation": {"type": "Select", "value": "market", "values": ["planner", "market"], "label": "Formulation"},
    "market": {"type": "Select", "value": "posted", "values": ["walrasian", "posted", "bilateral"], "label": "Market"},
    "firms_per_good": {"type": "SliderInt", "value": 2, "label": "Firms per good M", "min": 1, "max": 5, "step": 1},
    "share": {
        "type": "SliderFloat",
        "value": 0.0,
        "label": "Spending share (0 = steady state)",
        "min": 0.0,
        "max": 0.9,
        "step": 0.01,
    },
    "k_init_spread": {
        "type": "SliderFloat",
        "value": 0.5,
        "label": "Initial capital spread",
        "min": 0.0,
        "max": 0.9,
        "step": 0.05,
    },
    "seed": {"type": "InputText", "value": 0, "label": "Seed"},
    "mode": {"type": "Select", "value": "engine", "values": ["engine", "agents"], "label": "Mode"},
}


def household_bars_figure(model: InvestmentModel) -> Figure:
    """Bars of each household's capital, consumption and investment, and each firm's sales and profit."""
    fig = Figure(figsize=(7, 5))
    ax_h, ax_f = fig.subplots(2, 1)
    hs = model.households
    x = list(range(len(hs)))
    w = 0.27
    ax_h.bar([i - w for i in x], [h.total_capital for h in hs], w, label="capital")
    ax_h.bar(x, [h.consumption for h in hs], w, label="consumption")
    ax_h.bar([i + w for i in x], [h.total_investment for h in hs], w, label="investment")
    ax_h.set_xlabel("household")
    ax_h.legend(loc="best", fontsize="small")
    firms = [f for row in model.firms for f in row]
    labels = [f"{f.good},{f.index}" for f in firms]
    xf = list(range(len(firms)))
    ax_f.bar([i - 0.2 for i in xf], [f.sold for f in firms], 0.4, label="sold")
    ax_f.bar([i + 0.2 for i in xf], [f.profit for f in firms], 0.4, label="profit")
    ax_f.set_xticks(xf, labels)
    ax_f.set_xlabel("firm (good, index)" if model.cfg.formulation == "market" else "planner pool (good)")
    ax_f.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def figure_component(draw: Callable[[Any], Figure], *, redraw: bool = True) -> Callable[..., Any]:
    """A Solara component showing ``draw(model)``; with ``redraw`` it is drawn again after every step."""

    @solara.component
    def FigureComponent(model: Any) -> None:
        if redraw:
            update_counter.get()
        solara.FigureMatplotlib(draw(model), format="png")

    FigureComponent.__name__ = f"{draw.__name__}_component"
    return FigureComponent


AgentBars = figure_component(household_bars_figure)
"""Solara component wrapping :func:`household_bars_figure`."""


def reference_values(model: InvestmentModel) -> dict[str, dict[str, float]]:
    """Reference answers drawn as lines: ``{"capital": {label: K per household and good}, "price": {...}}``.

    Planner: the deterministic steady state. Market: the competitive steady state, the buyer-side Nash where it is
    derived (learning households), and with deciding firms the firms' Nash and joint-profit steady states
    (against rule households when the households follow rules)."""
    from abm_markets.engine.investment_groups import steady_state_capital
    from abm_markets.solvers.market_power import market_benchmarks

    cfg = model.cfg
    if cfg.formulation != "market":
        k = steady_state_capital(cfg)
        return {"capital": {"steady state": k}, "price": {"steady state": cfg.phi * cfg.n_households * cfg.delta * k}}
    learning_households = "households" in getattr(model, "policies", {})
    bm = market_benchmarks(cfg, households="learning" if learning_households else "rule")
    cap = {"competitive": bm.capital_competitive, "buyer-side Nash": bm.capital_strategic}
    price = {"competitive": bm.price_competitive, "buyer-side Nash": bm.price_strategic}
    if model.economy.deciding_firms:
        cap |= {"firms' Nash": bm.capital_nash, "joint profit": bm.capital_joint}
        price |= {"firms' Nash": bm.price_nash, "joint profit": bm.price_joint}
    return {
        name: {k: v for k, v in ref.items() if math.isfinite(v)} for name, ref in (("capital", cap), ("price", price))
    }


REFERENCE_STYLES = {
    "steady state": ":",
    "competitive": "--",
    "buyer-side Nash": "-.",
    "firms' Nash": ":",
    "joint profit": (0, (1, 3)),
}


def reference_figure(model: InvestmentModel) -> Figure:
    """Mean capital per household and good, and the mean price, over the periods run, with the reference answers
    (:func:`reference_values`) as horizontal lines."""
    data = model.datacollector.get_model_vars_dataframe()
    ref = reference_values(model)
    fig = Figure(figsize=(7, 3.2))
    axes = fig.subplots(1, 2)
    for ax, col, label in ((axes[0], "capital", "capital per household and good"), (axes[1], "price", "price")):
        if col in data and len(data):
            ax.plot(range(len(data)), data[col].to_numpy(), color="black", lw=1.2, label="this run")
        for i, (name, value) in enumerate(ref[col].items()):
            ax.axhline(value, color=PLOT_COLORS[i % len(PLOT_COLORS)], ls=REFERENCE_STYLES.get(name, "--"), label=name)
        ax.set_title(label, fontsize="small")
        ax.set_xlabel("period")
        ax.legend(fontsize="x-small", loc="best")
    fig.tight_layout()
    return fig


ReferencePlots = figure_component(reference_figure)
"""Solara component wrapping :func:`reference_figure`."""


def network_figure(model: InvestmentModel) -> Figure:
    """The bilateral market's trading network (households left, sellers right, one colour per good), drawn with
    networkx and matplotlib; for the other mechanisms a note of who meets whom."""
    import networkx as nx

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    ax.set_axis_off()
    graph = getattr(model.economy, "graph", None)
    if graph is None:
        who = (
            "a planner pools every household's investment"
            if model.cfg.formulation != "market"
            else (f"{model.cfg.market} market: every household trades with every seller of every good")
        )
        ax.text(0.5, 0.5, who, ha="center", va="center", fontsize="small")
        return fig
    buyers = sorted((n for n in graph if n[0] == "h"), key=lambda n: n[1])
    sellers = sorted((n for n in graph if n[0] == "f"), key=lambda n: (n[1], n[2]))
    pos = {n: (0.0, -i / max(len(buyers) - 1, 1)) for i, n in enumerate(buyers)}
    pos |= {n: (1.0, -i / max(len(sellers) - 1, 1)) for i, n in enumerate(sellers)}
    edge_colors = [PLOT_COLORS[(u if u[0] == "f" else v)[1] % len(PLOT_COLORS)] for u, v in graph.edges()]
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color=edge_colors, alpha=0.6)
    nx.draw_networkx_nodes(graph, pos, nodelist=buyers, ax=ax, node_color="lightgrey", node_size=120)
    nx.draw_networkx_nodes(
        graph,
        pos,
        nodelist=sellers,
        ax=ax,
        node_shape="s",
        node_size=160,
        node_color=[PLOT_COLORS[n[1] % len(PLOT_COLORS)] for n in sellers],
    )
    labels = {n: (f"h{n[1]}" if n[0] == "h" else f"f{n[1]},{n[2]}") for n in graph}
    nx.draw_networkx_labels(
        graph, {n: (x + (-0.06 if n[0] == "h" else 0.08), y) for n, (x, y) in pos.items()}, labels, ax=ax, font_size=7
    )
    ax.set_title(f"trading network ({model.cfg.network}): households | sellers (good, index)", fontsize="small")
    return fig


TradeNetwork = figure_component(network_figure, redraw=False)
"""Solara component wrapping :func:`network_figure` (the network does not change while the model runs)."""


def status_line(model: InvestmentModel) -> str:
    """One line of what the page shows now: the period, the economy, who decides, and the current figures."""
    who = ", ".join(sorted(getattr(model, "policies", {}))) or "none"
    return (
        f"period {model.period} | {model.cfg.formulation} formulation, market {model.cfg.market}, "
        f"N^h = {model.cfg.n_households}, N^c = {model.cfg.n_capital_goods}, M = {model.cfg.firms_per_good} | "
        f"learned policies: {who} | mean capital {model.mean_capital:.4f} | mean price {model.mean_price:.4f}"
    )


@solara.component
def StatusLine(model: InvestmentModel) -> None:
    """Solara component showing :func:`status_line` as text."""
    update_counter.get()
    solara.Text(status_line(model), classes=["abm-status"])


def curves_figure(run_dir: str) -> Figure:
    """A ``market-learning`` run's evaluations over training: long-run K / K_competitive and, with learning firms,
    the markup, with the run's reference answers as lines."""
    import json
    from pathlib import Path

    import polars as pl

    out = Path(run_dir)
    metrics = pl.read_parquet(out / "metrics.parquet")
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").exists() else {}
    fig = Figure(figsize=(7, 3.2))
    axes = fig.subplots(1, 2)
    k = metrics.select("iteration", "eval_capital_ratio").drop_nulls() if "eval_capital_ratio" in metrics else None
    ax = axes[0]
    if k is not None and k.height:
        ax.plot(k["iteration"], k["eval_capital_ratio"], color="black", marker=".", label="learned")
    comp = summary.get("capital_competitive")
    if comp:
        ax.axhline(1.0, color=PLOT_COLORS[0], ls="--", label="competitive")
        strat = summary.get("capital_strategic")
        if strat:
            ax.axhline(strat / comp, color=PLOT_COLORS[1], ls="-.", label="buyer-side Nash")
    ax.set_title("long-run K / K_competitive over training", fontsize="small")
    ax.set_xlabel("iteration")
    ax.legend(fontsize="x-small")
    ax = axes[1]
    m = metrics.select("iteration", "eval_markup").drop_nulls() if "eval_markup" in metrics else None
    if m is not None and m.height and summary.get("firms") == "learning":
        ax.plot(m["iteration"], m["eval_markup"], color="black", marker=".", label="learned")
        for i, key in enumerate(("markup_nash", "markup_joint")):
            if summary.get(key):
                ax.axhline(summary[key], color=PLOT_COLORS[2 + i], ls="--", label=key.replace("markup_", ""))
        ax.set_title("markup over training", fontsize="small")
        ax.legend(fontsize="x-small")
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "competitive firms (markup 1)", ha="center", va="center", fontsize="small")
    ax.set_xlabel("iteration")
    fig.tight_layout()
    return fig


def make_curves_component(run_dir: str) -> Callable[..., Any]:
    """A Solara component drawing :func:`curves_figure` of ``run_dir``."""

    return figure_component(lambda _model: curves_figure(run_dir), redraw=False)


def run_model(run_dir: str, *, seed: int = 0) -> tuple[InvestmentModel, dict[str, Any]]:
    """The learned market of a ``market-learning`` run directory as a Mesa model (its trained policies drive the
    households and firms that learned) and the ``SolaraViz`` parameters that rebuild it.

    Raises:
        UserError: Not a market-learning run directory, or no readable checkpoint (one line).
    """
    from abm_markets.scenarios.market_learning import learned_market

    cfg, policies = learned_market(run_dir, flag="--run")
    model = InvestmentModel(cfg, seed=seed, policies=policies)
    params = {
        "cfg": cfg,
        "seed": {"type": "InputText", "value": seed, "label": "Seed"},
        "policies": _fixed(policies),
        "mode": {"type": "Select", "value": "engine", "values": ["engine", "agents"], "label": "Mode"},
    }
    return model, params


def _investment_params(model: InvestmentModel) -> dict[str, Any]:
    """``SolaraViz`` parameters rebuilding ``model``: the sliders for :class:`InvestmentVizModel`, else its
    arguments as fixed values and the seed as a text input."""
    if isinstance(model, InvestmentVizModel):
        return MODEL_PARAMS
    return {
        "cfg": model.cfg,
        "seed": {"type": "InputText", "value": model.seed, "label": "Seed"},
        "rules": _fixed(model.rules),
        "mode": model.mode,
        "device": model.economy.device,
        "dtype": model.economy.dtype,
    }


def _fixed(value: Any) -> Any:
    """``value`` as a fixed ``SolaraViz`` parameter (a dict with a ``type`` key would read as an input)."""
    return types.MappingProxyType(dict(value)) if isinstance(value, dict) else value


def economy_model_params(model: EconomyModel) -> dict[str, Any]:
    """``SolaraViz`` parameters rebuilding an :class:`EconomyModel`: the economy and sources fixed, the seed
    as a text input.

    Raises:
        UserError: ``model``'s class takes no ``economy`` and ``sources`` arguments (pass ``model_params``).
    """
    params = inspect.signature(type(model).__init__).parameters
    if "economy" not in params or "sources" not in params:
        raise UserError(
            f"make_page: {type(model).__name__}(...) takes no economy and sources arguments; "
            "expected model_params naming its constructor's arguments"
        )
    return {
        "economy": model.economy,
        "sources": _fixed(model.sources),
        "seed": {"type": "InputText", "value": model.seed, "label": "Seed"},
    }


def _bar_variable(model: EconomyModel, group: str, bars: Mapping[str, str]) -> str:
    names = [v.name for v in model.logged_variables if v.over == group]
    if group in bars:
        if bars[group] not in [*names, "reward"]:
            raise ConfigError(str(unknown(f"per-agent variable of group {group!r}", bars[group], [*names, "reward"])))
        return bars[group]
    return names[0] if names else "reward"


def _check_bars(model: EconomyModel, bars: Mapping[str, str]) -> None:
    for group in bars:
        if group not in model.agents_by_group:
            raise ConfigError(str(unknown("agent group in bars", group, model.agents_by_group)))
        _bar_variable(model, group, bars)


def _agent_value(agent: Any, variable: str) -> float:
    v = agent.reward if variable == "reward" else agent.logged.get(variable, math.nan)
    try:
        return float(v)
    except (TypeError, ValueError):  # a vector per agent: its sum
        return float(sum(v))


def economy_bars_figure(model: EconomyModel, bars: Mapping[str, str] | None = None) -> Figure:
    """Bars of one per-agent variable of each agent group in the last period (one panel per group).

    Args:
        model: Any :class:`EconomyModel`.
        bars: ``{group: variable}``: the variable shown for a group (a per-agent logged variable of the group
            or ``reward``); default: the group's first per-agent logged variable, else its reward.

    Raises:
        ConfigError: An unknown group or variable in ``bars``.
    """
    bars = dict(bars or {})
    _check_bars(model, bars)
    groups = [g for g, agents in model.agents_by_group.items() if agents]
    fig = Figure(figsize=(7, 2.5 * max(len(groups), 1)))
    axes = fig.subplots(max(len(groups), 1), 1, squeeze=False)[:, 0]
    for ax, group in zip(axes, groups, strict=False):
        var = _bar_variable(model, group, bars)
        agents = model.agents_by_group[group]
        x = list(range(len(agents)))
        ax.bar(x, [_agent_value(a, var) for a in agents], 0.6, label=var)
        ax.set_xticks(x, [a.name for a in agents], rotation=45 if len(agents) > 6 else 0, fontsize="small")
        ax.set_ylabel(var)
        ax.set_title(f"{group}: {var} (period {model.period})", fontsize="small")
    fig.tight_layout()
    return fig


def make_bars_component(bars: Mapping[str, str] | None = None) -> Callable[..., Any]:
    """A Solara component drawing :func:`economy_bars_figure` with ``bars``."""
    bars = dict(bars or {})

    return figure_component(lambda model: economy_bars_figure(model, bars))


PLOT_COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")


def economy_components(model: EconomyModel, bars: Mapping[str, str] | None = None, max_plots: int = 6) -> list:
    """Components of the generic page: one time-series plot per economy-level logged variable, then one of the
    mean of the first per-agent variable of each agent group (at most ``max_plots`` plots), and the agents' bars
    (:func:`make_bars_component`)."""
    series = [v.name for v in model.logged_variables if v.over == "economy"]
    for group in model.agents_by_group:
        first = next((v.name for v in model.logged_variables if v.over == group), None)
        if first is not None and first not in series:
            series.append(first)
    plots = [
        make_plot_component({name: PLOT_COLORS[i % len(PLOT_COLORS)]}, backend="matplotlib")
        for i, name in enumerate(series[:max_plots])
    ]
    return [*plots, (make_bars_component(bars), 0)]


def make_page(
    model: EconomyModel | None = None,
    *,
    model_params: Mapping[str, Any] | None = None,
    bars: Mapping[str, str] | None = None,
    name: str | None = None,
    run_dir: str | None = None,
) -> object:
    """Build the ``SolaraViz`` page for ``model`` (default: :class:`InvestmentVizModel` defaults).

    The investment page shows a status line (period, economy, who plays learned policies, current means), means
    of capital and consumption, the price, capital and price against the reference answers
    (:func:`reference_figure`), the households' and firms' bars and the trading network (:func:`network_figure`);
    with ``run_dir`` (a ``market-learning`` run, see :func:`run_model`) also the run's learning curves.

    Args:
        model: An :class:`InvestmentModel` (the investment page: means, price, households' and firms' bars) or
            any other :class:`EconomyModel` (the generic page, see :func:`economy_components`).
        model_params: ``SolaraViz`` parameters rebuilding the model on reset; default: the sliders of
            :class:`InvestmentVizModel`, else the model's own arguments (seed editable).
        bars: For the generic page, ``{group: variable}`` shown as bars (see :func:`economy_bars_figure`).
        name: Page title (default: ``Investment economy`` or the economy's id).

    Raises:
        UserError: ``model`` is no :class:`EconomyModel`, or its class cannot be rebuilt without ``model_params``.
        ConfigError: An unknown group or variable in ``bars``.
    """
    model = model if model is not None else InvestmentVizModel()
    if isinstance(model, InvestmentModel):
        components: list = [
            (StatusLine, 0),
            make_plot_component({"capital": "tab:blue", "consumption": "tab:orange"}, backend="matplotlib"),
            make_plot_component({"price": "tab:green"}, backend="matplotlib"),
            (ReferencePlots, 0),
            (AgentBars, 0),
            (TradeNetwork, 0),
        ]
        if run_dir is not None:
            components.insert(1, (make_curves_component(run_dir), 0))
        params = dict(model_params) if model_params is not None else _investment_params(model)
        title = name or "Investment economy"
    elif isinstance(model, EconomyModel):
        _check_bars(model, dict(bars or {}))
        components = economy_components(model, bars)
        params = dict(model_params) if model_params is not None else economy_model_params(model)
        title = name or model.economy.env_id
    else:
        raise UserError(f"make_page: model is a {type(model).__name__}; expected an EconomyModel or InvestmentModel")
    return SolaraViz(model, components=components, model_params=params, name=title)


VIZ_TARGET = "ABM_MARKETS_VIZ"
"""Environment variable naming what ``abm-markets viz`` serves (a TOML file or an economy id)."""
VIZ_IMPORTS = "ABM_MARKETS_VIZ_IMPORTS"
"""Environment variable with the ``--import`` modules of ``abm-markets viz`` (os.pathsep-separated)."""
VIZ_RUN = "ABM_MARKETS_VIZ_RUN"
"""Environment variable naming the ``market-learning`` run directory ``abm-markets viz --run`` shows."""


def model_for(target: str, imports: tuple[str, ...] = (), *, seed: int = 0) -> EconomyModel:
    """A Mesa model of a declared economy (``.toml`` with an ``[economy]`` table) or of a registered economy id.

    Agents play the economy's declared reference rule when it has one, else each action's declared start
    (a raw policy output of 0). Economies of other modules are found after ``imports``
    (:func:`abm_markets.scenarios.load_module`) or through entry points.

    Raises:
        UserError: An unknown id, a file that is not a declared economy, a bad declaration (one line).
    """
    import torch

    from abm_markets import scenarios
    from abm_markets.engine import make_economy

    for spec in imports:
        scenarios.load_module(spec)
    if target.endswith(".toml"):
        from abm_markets.scenarios.declared import build_declared

        economy = build_declared(target)
    else:
        scenarios.all_scenarios()  # imports entry-point modules, which may register economies
        economy = make_economy(target, None)
    reference = getattr(economy, "reference_decide", None)
    if callable(reference):
        decide = reference()
    else:

        def decide(state: Any) -> dict[str, Any]:
            return {
                g.acts_for: economy.decode(
                    g.name, torch.zeros(state.batch_size, g.count, 1 if g.n_discrete else g.raw_dim), state
                )
                for g in economy.agent_groups()
            }

    sources = {key: (lambda st, key=key: decide(st)[key]) for key in economy.action_keys}
    return EconomyModel(economy, sources, seed=seed)


def skip_solara_check() -> None:
    """Mark Solara's one-time installation check as done, so that the page never loads its iframe from solara.dev
    (the server's telemetry is switched off by ``abm-markets viz`` through ``SOLARA_TELEMETRY_MIXPANEL_ENABLE``)."""
    from solara import checks

    try:
        checks.solara_checked_path.parent.mkdir(parents=True, exist_ok=True)
        checks.solara_checked_path.touch(exist_ok=True)
    except OSError:  # a read-only home: the check stays, the page still works
        pass


def _page_from_environment() -> object:
    import os

    run_dir = os.environ.get(VIZ_RUN)
    if run_dir:
        model, params = run_model(run_dir)
        return make_page(model, model_params=params, run_dir=run_dir, name=f"Learned market: {run_dir}")
    target = os.environ.get(VIZ_TARGET)
    if not target:
        return make_page()
    imports = tuple(x for x in os.environ.get(VIZ_IMPORTS, "").split(os.pathsep) if x)
    return make_page(model_for(target, imports))


page = _page_from_environment()
