"""The verdict as files a person opens: the three figures of :mod:`.plots` as PNGs and
``report.html``, one self-contained page (the PNGs embedded as base64 data URIs) with the
verdict table, the probabilities of improvement, PSR, DSR, PBO, the cost sensitivity and the
gate's decision.

Every file is written atomically beside ``verdict.json`` (:mod:`ploutos_core.storage`).
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ploutos_core.backtest.plots import PNG_SIGNATURE
from ploutos_core.config import BootstrapConfig
from ploutos_core.evaluation.plots import PLOT_NAMES, figure_pngs, verdict_figures
from ploutos_core.evaluation.run import FoldResult, Verdict
from ploutos_core.storage import write_bytes_atomic

REPORT_FILE = "report.html"
PLOT_FILES = {name: f"verdict_{name}.png" for name in PLOT_NAMES}
PLOT_CAPTIONS = {
    "intervals": "IQM Sharpe and IQM excess Sharpe over buy-and-hold, 95% stratified bootstrap "
    "intervals over folds x seeds",
    "fold_equity": "Growth of 1 over each fold's test window: the agent per seed, buy-and-hold",
    "profile": "Performance profile: share of fold x seed runs with Sharpe above each threshold",
}
STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    ".pass{color:#1a7f37}.fail{color:#c0392b}img{max-width:100%}"
)


@dataclass(frozen=True)
class VerdictReport:
    """What :func:`write_verdict_report` wrote: ``paths`` (``report`` and each plot name) and
    small PNG thumbnails of the plots for Dagster metadata."""

    paths: dict[str, Path]
    thumbnails: dict[str, bytes]


def _ci(e: Mapping[str, float]) -> str:
    return f"{e['iqm']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def verdict_table(verdict: Verdict) -> str:
    """Per method: IQM Sharpe [CI], IQM excess Sharpe [CI] and the means over folds x seeds
    of total return, max drawdown, annual turnover and costs."""
    rows = [
        [
            name,
            _ci(m["sharpe"]),
            _ci(m["excess_sharpe"]),
            f"{100 * m['total_return']:.2f}%",
            f"{100 * m['max_drawdown']:.2f}%",
            f"{m['turnover']:.2f}x",
            f"{m['costs']:,.2f}",
        ]
        for name, m in verdict.methods.items()
    ]
    header = [
        "method", "IQM Sharpe [95% CI]", "IQM excess Sharpe [95% CI]", "mean total return",
        "mean max drawdown", "mean turnover (annual)", "mean costs",
    ]  # fmt: skip
    return _table(header, rows)


def _statistics(verdict: Verdict) -> str:
    improvement = _table(
        ["baseline", "P(agent > baseline)", "95% CI"],
        [
            [name, f"{p['point']:.2f}", f"[{p['ci_low']:.2f}, {p['ci_high']:.2f}]"]
            for name, p in verdict.prob_improvement.items()
        ],
    )
    excess = verdict.excess_over_best
    overfitting = _table(
        ["statistic", "value"],
        [
            [f"IQM Sharpe minus the best baseline ({verdict.best_baseline})",
             f"{excess['point']:.2f} [{excess['ci_low']:.2f}, {excess['ci_high']:.2f}]"],
            ["Probabilistic Sharpe Ratio (PSR)", f"{verdict.psr:.3f}"],
            [f"Deflated Sharpe Ratio (DSR), N = {verdict.n_trials} trials", f"{verdict.dsr:.3f}"],
            ["Probability of Backtest Overfitting (PBO)",
             "n/a (fewer than 2 trials)" if verdict.pbo is None else f"{verdict.pbo:.3f}"],
        ],
    )  # fmt: skip
    return (
        "<h2>Probability of improvement</h2>"
        + improvement
        + "<h2>Skill and overfitting</h2>"
        + overfitting
    )


def _cost_sensitivity(cost_sensitivity: Mapping[str, Mapping[str, Any]]) -> str:
    rows = []
    for multiplier, entry in cost_sensitivity.items():
        held, beats = entry["buy_and_hold"], entry["beats_buy_and_hold"]
        rows.append(
            [
                f"{multiplier}x",
                _ci(entry),
                "n/a" if held is None else _ci(held),
                "n/a" if beats is None else ("yes" if beats else "no"),
            ]
        )
    header = [
        "cost multiplier", "agent IQM Sharpe [95% CI]", "buy-and-hold IQM Sharpe [95% CI]",
        "agent IQM above buy-and-hold's",
    ]  # fmt: skip
    return "<h2>Cost sensitivity</h2>" + _table(header, rows)


def _gate(verdict: Verdict) -> str:
    decision = (
        '<p class="pass"><b>Promoted</b>: every criterion holds.</p>'
        if verdict.promoted
        else '<p class="fail"><b>Not promoted</b>.</p>'
    )
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in verdict.reasons)
    thresholds = _table(["threshold", "value"], [[k, str(v)] for k, v in verdict.gate.items()])
    return (
        "<h2>Promotion gate</h2>" + decision + (f"<ul>{reasons}</ul>" if reasons else "")
        + thresholds
    )  # fmt: skip


def _image(png: bytes, caption: str) -> str:
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("the report embeds PNG bytes only")
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def render_report(verdict: Verdict, plots: Mapping[str, bytes]) -> str:
    """The HTML page of ``verdict`` with ``plots`` (name -> PNG bytes) embedded."""
    seeds = ", ".join(str(s) for s in verdict.seeds)
    summary = (
        f"<p>{verdict.n_folds} walk-forward folds x seeds {html.escape(seeds)}; "
        f"{verdict.n_trials} trial(s) on this data (fingerprint "
        f"<code>{html.escape(verdict.data_fingerprint)}</code>, trial "
        f"<code>{html.escape(verdict.trial_key)}</code>). Sharpe ratios are annualized; "
        "excess Sharpe is the Sharpe ratio of the per-bar returns minus buy-and-hold's.</p>"
    )
    figures = "".join(_image(plots[name], PLOT_CAPTIONS[name]) for name in plots)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Ploutos verdict</title><style>{STYLE}</style></head><body>"
        "<h1>Ploutos verdict</h1>" + summary + _gate(verdict)
        + "<h2>Agent and baselines</h2>" + verdict_table(verdict) + _statistics(verdict)
        + _cost_sensitivity(verdict.cost_sensitivity) + "<h2>Plots</h2>" + figures
        + "</body></html>\n"
    )  # fmt: skip


def write_verdict_report(
    output_dir: str | Path,
    verdict: Verdict,
    results: Sequence[FoldResult],
    bootstrap: BootstrapConfig,
) -> VerdictReport:
    """Write the plots (:data:`PLOT_FILES`) and :data:`REPORT_FILE` into ``output_dir``."""
    output_dir = Path(output_dir)
    figures = verdict_figures(verdict, results, bootstrap)
    plots = figure_pngs(figures)
    paths = {name: write_bytes_atomic(output_dir / PLOT_FILES[name], plots[name]) for name in plots}
    page = render_report(verdict, plots).encode("utf-8")
    paths["report"] = write_bytes_atomic(output_dir / REPORT_FILE, page)
    return VerdictReport(paths=paths, thumbnails=figure_pngs(figures, thumbnail=True))
