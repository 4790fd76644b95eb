"""The SolaraViz app: importable without a server, builds its page, draws what the agents hold."""

from __future__ import annotations

import warnings

import numpy as np
import pytest


@pytest.fixture(scope="module")
def viz():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # solara's hook checker warns about Mesa's own component
        import abm_markets.viz as module
    return module


def test_page_object_builds_and_renders(viz):
    import reacton
    import solara

    assert isinstance(viz.page, reacton.core.Element)
    model = viz.InvestmentVizModel(n_households=4, formulation="market", market="posted", firms_per_good=2)
    for _ in range(3):
        model.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        box, rc = solara.render(viz.make_page(model), handle_error=False)
    rc.close()
    assert box is not None
    # every slider names a parameter of the model constructor SolaraViz calls on reset
    import inspect

    params = inspect.signature(viz.InvestmentVizModel.__init__).parameters
    assert set(viz.MODEL_PARAMS) <= set(params)


def test_agent_bars_show_the_agents_values(viz):
    model = viz.InvestmentVizModel(n_households=5, formulation="planner", share=0.1, k_init_spread=0.5)
    for _ in range(4):
        model.step()
    fig = viz.household_bars_figure(model)
    ax_h, ax_f = fig.axes
    heights = [p.get_height() for p in ax_h.patches]
    hs = model.households
    expected = [h.total_capital for h in hs] + [h.consumption for h in hs] + [h.total_investment for h in hs]
    np.testing.assert_allclose(heights, expected, rtol=1e-12)
    # planner with share 0.1: consumption is 90 % of output
    np.testing.assert_allclose([h.consumption for h in hs], [0.9 * h.output for h in hs], rtol=1e-12)
    assert len(ax_f.patches) == 2  # one pool: sold and profit bars


def test_k_init_spread_slider_steps_below_one(viz):
    """The spread slider needs a step (no step snaps 0.5 to 1.0) and stays below 1 (InvestmentConfig needs < 1)."""
    opts = viz.MODEL_PARAMS["k_init_spread"]
    assert opts["step"] == 0.05 and opts["max"] < 1.0
    assert round(opts["value"] / opts["step"]) * opts["step"] == pytest.approx(opts["value"])
    model = viz.InvestmentVizModel(n_households=2, k_init_spread=0.55)
    assert model.cfg.k_init_spread == 0.55
