"""The verdict's figures, rendered to PNG bytes with matplotlib's Agg canvas (as
:mod:`ploutos_core.backtest.plots`, no ``pyplot`` state).

- :func:`interval_figure`: every method's IQM Sharpe and IQM excess Sharpe over buy-and-hold
  with their 95% stratified bootstrap intervals, the interval estimates of Agarwal et al.,
  "Deep Reinforcement Learning at the Edge of the Statistical Precipice", NeurIPS 2021;
- :func:`fold_equity_figure`: per fold, the growth of 1 invested in each seed's agent and in
  buy-and-hold over the fold's test window (from the per-bar returns of the fold results);
- :func:`profile_figure`: the performance profile of the same paper, the share of fold x seed
  runs with a Sharpe ratio above each threshold, with its pointwise bootstrap band
  (:func:`ploutos_core.evaluation.aggregate.performance_profile`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ploutos_core.backtest.plots import FULL_DPI, THUMBNAIL_DPI, figure_png
from ploutos_core.config import BootstrapConfig
from ploutos_core.evaluation.aggregate import performance_profile
from ploutos_core.evaluation.run import AGENT, FoldResult, Verdict

BENCHMARK = "buy_and_hold"
PALETTE = ("#1f77b4", "#444444", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e", "#8c564b")
PROFILE_POINTS = 101
SCORES = (("sharpe", "IQM Sharpe"), ("excess_sharpe", "IQM excess Sharpe over buy-and-hold"))
PLOT_NAMES = ("intervals", "fold_equity", "profile")


def method_colors(methods: Sequence[str]) -> dict[str, str]:
    """One color per method, in order (the agent first gets blue, buy-and-hold second grey)."""
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}


def interval_figure(
    methods: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    figsize: tuple[float, float] = (11.0, 4.5),
) -> Figure:
    """Point (IQM) and interval per method, one panel per score of :data:`SCORES`.

    Parameters
    ----------
    methods:
        :attr:`Verdict.methods`: method -> score -> ``{iqm, ci_low, ci_high}`` (annualized).
    """
    names = list(methods)
    colors = method_colors(names)
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(1, len(SCORES), sharey=True)
    y = np.arange(len(names))[::-1]
    for ax, (key, title) in zip(axes, SCORES, strict=True):
        for yi, name in zip(y, names, strict=True):
            e = methods[name][key]
            ax.errorbar(
                e["iqm"], yi,
                xerr=[[e["iqm"] - e["ci_low"]], [e["ci_high"] - e["iqm"]]],
                fmt="o", color=colors[name], capsize=4, linewidth=2.2 if name == AGENT else 1.4,
            )  # fmt: skip
        ax.axvline(0.0, color="black", linewidth=0.8, alpha=0.6)
        ax.set_title(title)
        ax.set_xlabel("annualized Sharpe ratio, 95% CI")
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, names)
    return fig


def equity_curves(results: Sequence[FoldResult], method: str) -> dict[tuple[int, int], np.ndarray]:
    """``(fold, seed) -> growth of 1`` of ``method`` over each result's test window: the
    cumulative product of ``1 + r``, starting at 1 on the bar before the first return."""
    return {
        (r.fold, r.seed): np.concatenate([[1.0], np.cumprod(1.0 + r.returns[method])])
        for r in results
    }


def fold_equity_figure(
    results: Sequence[FoldResult], *, panel_size: tuple[float, float] = (4.6, 3.2)
) -> Figure:
    """One panel per fold: a line per seed of the agent, buy-and-hold's line on top (it does
    not depend on the seed, so each fold draws its first seed's)."""
    folds = sorted({r.fold for r in results})
    columns = min(len(folds), 3)
    rows = math.ceil(len(folds) / columns)
    fig = Figure(figsize=(panel_size[0] * columns, panel_size[1] * rows), layout="constrained")
    axes = fig.subplots(rows, columns, sharey=True, squeeze=False).reshape(-1)
    agent, held = equity_curves(results, AGENT), equity_curves(results, BENCHMARK)
    for ax, fold in zip(axes, folds, strict=False):
        cells = sorted((r for r in results if r.fold == fold), key=lambda r: r.seed)
        for i, r in enumerate(cells):
            label = "agent (one line per seed)" if i == 0 else None
            ax.plot(agent[(fold, r.seed)], color=PALETTE[0], linewidth=1.0, alpha=0.75, label=label)
        ax.plot(held[(fold, cells[0].seed)], color=PALETTE[1], linewidth=1.8, label=BENCHMARK)
        ax.set_title(f"fold {fold}: {cells[0].test_start} to {cells[0].test_end}", fontsize=10)
        ax.set_xlabel("bars into the test window")
        ax.grid(alpha=0.3)
    for ax in axes[len(folds) :]:
        ax.set_visible(False)
    axes[0].set_ylabel("growth of 1")
    axes[0].legend(loc="upper left", fontsize=8)
    return fig


def sharpe_matrix(results: Sequence[FoldResult], method: str) -> np.ndarray:
    """``[n_folds, n_seeds]`` Sharpe ratios of ``method``, folds and seeds in ascending order."""
    folds = sorted({r.fold for r in results})
    seeds = sorted({r.seed for r in results})
    cells = {(r.fold, r.seed): r for r in results}
    return np.array([[cells[(f, s)].metrics[method]["sharpe"] for s in seeds] for f in folds])


def profile_figure(
    results: Sequence[FoldResult],
    methods: Sequence[str],
    bootstrap: BootstrapConfig,
    *,
    figsize: tuple[float, float] = (8.0, 4.8),
) -> Figure:
    """The share of fold x seed runs with Sharpe > tau for each of ``methods``, each with its
    stratified bootstrap band at ``bootstrap.confidence``, over a grid of thresholds spanning
    every method's scores."""
    matrices = {m: sharpe_matrix(results, m) for m in methods}
    values = np.concatenate([m.reshape(-1) for m in matrices.values()])
    low, high = float(values.min()), float(values.max())
    margin = max(0.1 * (high - low), 0.1)
    taus = np.linspace(low - margin, high + margin, PROFILE_POINTS)
    colors = method_colors(list(methods))
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    for name, scores in matrices.items():
        profile = performance_profile(
            scores, taus, reps=bootstrap.reps, confidence=bootstrap.confidence, seed=bootstrap.seed
        )
        width = 2.2 if name == AGENT else 1.3
        ax.plot(taus, profile.fraction, color=colors[name], linewidth=width, label=name)
        ax.fill_between(taus, profile.ci_low, profile.ci_high, color=colors[name], alpha=0.15)
    ax.set_xlabel("annualized Sharpe ratio threshold tau")
    ax.set_ylabel("fraction of fold x seed runs with Sharpe > tau")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"Performance profile ({bootstrap.confidence:.0%} bootstrap bands)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return fig


def verdict_figures(
    verdict: Verdict, results: Sequence[FoldResult], bootstrap: BootstrapConfig
) -> dict[str, Figure]:
    """The three figures by :data:`PLOT_NAMES`, methods as in the verdict."""
    return {
        "intervals": interval_figure(verdict.methods),
        "fold_equity": fold_equity_figure(results),
        "profile": profile_figure(results, list(verdict.methods), bootstrap),
    }


def figure_pngs(figures: Mapping[str, Figure], *, thumbnail: bool = False) -> dict[str, bytes]:
    """Each figure as PNG bytes, at full resolution or as a small thumbnail for metadata."""
    dpi = THUMBNAIL_DPI if thumbnail else FULL_DPI
    return {name: figure_png(fig, dpi=dpi) for name, fig in figures.items()}
