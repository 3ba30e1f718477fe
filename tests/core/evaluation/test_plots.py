"""ploutos_core.evaluation.plots: the verdict's figures from constructed fold results."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from ploutos_core.evaluation.aggregate import performance_profile
from ploutos_core.evaluation.plots import (
    PLOT_NAMES,
    equity_curves,
    figure_pngs,
    fold_equity_figure,
    interval_figure,
    profile_figure,
    sharpe_matrix,
    verdict_figures,
)
from ploutos_core.evaluation.run import AGENT
from tests.support.evaluation import BOOTSTRAP, synthetic_results, synthetic_verdict


@pytest.fixture(scope="module")
def results():
    return synthetic_results(0.001, 5, n_folds=4, n_seeds=3, bars=60)


def test_equity_curves_compound_each_runs_returns(results) -> None:
    curves = equity_curves(results, AGENT)
    assert set(curves) == {(r.fold, r.seed) for r in results}
    for r in results:
        curve = curves[(r.fold, r.seed)]
        assert curve[0] == 1.0 and len(curve) == len(r.returns[AGENT]) + 1
        assert curve[-1] == pytest.approx(1.0 + r.metrics[AGENT]["total_return"])


def test_fold_equity_draws_every_seed_and_buy_and_hold_per_fold(results) -> None:
    fig = fold_equity_figure(results)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4 and len(fig.axes) == 6  # a 2 x 3 grid, two panels hidden
    curves = equity_curves(results, AGENT)
    for fold, ax in enumerate(visible):
        lines = ax.get_lines()
        assert len(lines) == 3 + 1
        for seed, line in enumerate(lines[:3]):
            np.testing.assert_allclose(line.get_ydata(), curves[(fold, seed)])
        assert lines[-1].get_label() == "buy_and_hold"
        assert ax.get_title().startswith(f"fold {fold}: 202{fold}-01-01")


def test_interval_figure_places_each_methods_iqm_and_interval() -> None:
    methods = {
        AGENT: {"sharpe": {"iqm": 1.2, "ci_low": 0.7, "ci_high": 1.6},
                "excess_sharpe": {"iqm": 0.4, "ci_low": -0.1, "ci_high": 0.9}},
        "buy_and_hold": {"sharpe": {"iqm": 0.8, "ci_low": 0.8, "ci_high": 0.8},
                         "excess_sharpe": {"iqm": 0.0, "ci_low": 0.0, "ci_high": 0.0}},
    }  # fmt: skip
    fig = interval_figure(methods)
    for ax, key in zip(fig.axes, ("sharpe", "excess_sharpe"), strict=True):
        points = [line for line in ax.get_lines() if line.get_marker() == "o"]
        assert [float(line.get_xdata()[0]) for line in points] == [
            methods[AGENT][key]["iqm"],
            methods["buy_and_hold"][key]["iqm"],
        ]
        bars = ax.collections
        segments = [c.get_segments()[0] for c in bars]
        np.testing.assert_allclose(
            [(s[0][0], s[1][0]) for s in segments],
            [(methods[m][key]["ci_low"], methods[m][key]["ci_high"]) for m in methods],
        )
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [AGENT, "buy_and_hold"]


def test_profile_figure_plots_the_bootstrap_profile_of_each_method(results) -> None:
    fig = profile_figure(results, [AGENT, "buy_and_hold"], BOOTSTRAP)
    (ax,) = fig.axes
    agent = ax.get_lines()[0]
    assert agent.get_label() == AGENT
    expected = performance_profile(
        sharpe_matrix(results, AGENT), agent.get_xdata(), reps=200, seed=BOOTSTRAP.seed
    )
    np.testing.assert_allclose(agent.get_ydata(), expected.fraction)
    assert agent.get_ydata()[0] == 1.0 and agent.get_ydata()[-1] == 0.0  # the grid spans all
    assert len(ax.collections) == 2  # one band per method


def test_verdict_figures_render_as_png(tmp_path) -> None:
    results = synthetic_results(0.001, 6, n_folds=2, n_seeds=2, bars=40)
    verdict = synthetic_verdict(results, tmp_path / "trials.json")
    figures = verdict_figures(verdict, results, BOOTSTRAP)
    full, small = figure_pngs(figures), figure_pngs(figures, thumbnail=True)
    assert list(full) == list(small) == list(PLOT_NAMES)
    for name in PLOT_NAMES:
        big = mpimg.imread(io.BytesIO(full[name]), format="png")
        thumb = mpimg.imread(io.BytesIO(small[name]), format="png")
        assert big.ndim == 3 and thumb.shape[0] < big.shape[0] and thumb.shape[1] < big.shape[1]
        assert big.std() > 0  # something is drawn
