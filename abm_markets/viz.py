"""Browser visualisation of the investment model (Mesa ``SolaraViz``, matplotlib components only).

Open it with::

    solara run abm_markets/viz.py

The page shows sliders for the economy (households, goods, formulation, market,
firms per good, spending share rule) and, as the model runs:

* means over households of capital and consumption per period;
* the price of capital goods per period (shadow price ``phi I`` for the planner);
* bars of each household's capital, consumption and investment in the last period,
  and of each firm's sales and profit.

Only Mesa's matplotlib backend is used (the altair backend needs a CDN). Importing this
module builds the ``page`` object without starting a server.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import solara
from matplotlib.figure import Figure
from mesa.visualization import SolaraViz, make_plot_component
from mesa.visualization.utils import update_counter

from abm_markets.agents.rules import FixedShare, SteadyStateShare
from abm_markets.engine.config import InvestmentConfig
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
    "k_init_spread": {"type": "SliderFloat", "value": 0.5, "label": "Initial capital spread", "min": 0.0, "max": 0.9},
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


@solara.component
def AgentBars(model: InvestmentModel) -> None:
    """Solara component wrapping :func:`household_bars_figure`."""
    update_counter.get()
    solara.FigureMatplotlib(household_bars_figure(model), format="png")


def make_page(model: InvestmentModel | None = None) -> object:
    """Build the ``SolaraViz`` page for ``model`` (default: :class:`InvestmentVizModel` defaults)."""
    model = model if model is not None else InvestmentVizModel()
    components = [
        make_plot_component({"capital": "tab:blue", "consumption": "tab:orange"}, backend="matplotlib"),
        make_plot_component({"price": "tab:green"}, backend="matplotlib"),
        (AgentBars, 0),
    ]
    return SolaraViz(model, components=components, model_params=MODEL_PARAMS, name="Investment economy")


page = make_page()
