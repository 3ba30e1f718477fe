"""What a backtest reports: :class:`BacktestReport` and the Markdown table of every metric,
strategy and benchmarks side by side.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ploutos_core.backtest.input_health import InputHealth
from ploutos_core.backtest.metrics import (
    METRIC_NAMES,
    TRADE_STAT_NAMES,
)
from ploutos_core.backtest.simulate import BacktestRun

SIDES = ("strategy", "buy_and_hold", "cash")

SIDE_LABELS = {"strategy": "Strategy", "buy_and_hold": "Buy & hold", "cash": "Cash"}


@dataclass(frozen=True)
class BacktestReport:
    """What :func:`run_backtest` wrote and found.

    Attributes
    ----------
    model_path : Path
    test_start, test_end : str
        The period run, ISO dates (the manifest's test period).
    metrics : dict[str, dict[str, float]]
        ``{"strategy": {...}, "buy_and_hold": {...}, "cash": {...}}``, each with the
        :data:`~ploutos_core.backtest.metrics.METRIC_NAMES` and
        :data:`~ploutos_core.backtest.metrics.TRADE_STAT_NAMES` (``inf`` possible, see the
        conventions).
    paths : dict[str, Path]
        ``equity``, ``trades``, ``positions``, ``metrics``, ``equity_plot``.
    trade_plots : dict[str, Path]
        Ticker -> ``backtest_trades_<TICKER>.png``, most traded first.
    equity_thumbnail : bytes
        A small PNG of the equity figure for embedding
        (:func:`ploutos_core.backtest.plots.markdown_image`).
    table : str
        The Markdown table of :func:`format_metrics_table`.
    accounting_error : float
        Largest relative gap between equity and cash + holdings over both portfolios' bars.
    input_health : InputHealth
        How much of what the policy saw lies outside what it was trained on.
    timings : dict[str, float]
        Seconds spent in ``load``, ``simulate``, ``metrics``, ``plots`` and ``write``.
    strategy, benchmark : BacktestRun
    """

    model_path: Path
    test_start: str
    test_end: str
    metrics: dict[str, dict[str, float]]
    paths: dict[str, Path]
    trade_plots: dict[str, Path]
    equity_thumbnail: bytes = field(repr=False)
    table: str
    accounting_error: float
    input_health: InputHealth
    timings: dict[str, float]
    strategy: BacktestRun = field(repr=False)
    benchmark: BacktestRun = field(repr=False)

    @property
    def n_bars(self) -> int:
        """Number of bars in the test period."""
        return int(self.strategy.dates.size)

    def moved_to(self, directory: str | Path) -> BacktestReport:
        """This report with its file paths rebased onto ``directory``.

        For a report written into ``storage.atomic_dir``'s temporary directory, once that
        directory has been renamed to its final name.
        """
        directory = Path(directory)
        return replace(
            self,
            paths={key: directory / path.name for key, path in self.paths.items()},
            trade_plots={key: directory / path.name for key, path in self.trade_plots.items()},
        )

    def flat_metrics(self) -> dict[str, float]:
        """``{"<side>_<metric>": value}`` for every side and metric (e.g. for Dagster metadata)."""
        return {
            f"{side}_{name}": value
            for side, values in self.metrics.items()
            for name, value in values.items()
        }


_FORMATS: dict[str, tuple[str, str]] = {
    "total_return": ("Total return", "pct"),
    "cagr": ("CAGR", "pct"),
    "volatility": ("Volatility (annual)", "pct"),
    "sharpe": ("Sharpe", "ratio"),
    "sortino": ("Sortino", "ratio"),
    "max_drawdown": ("Max drawdown", "pct"),
    "calmar": ("Calmar", "ratio"),
    "n_trades": ("Trades (fills)", "count"),
    "n_closed_trades": ("Closed trades", "count"),
    "win_rate": ("Win rate (closed)", "pct"),
    "profit_factor": ("Profit factor", "ratio"),
    "average_exposure": ("Average exposure", "pct"),
    "annual_turnover": ("Turnover (annual)", "times"),
    "total_costs": ("Costs paid", "money"),
}


def _format_value(value: float, kind: str) -> str:
    if not np.isfinite(value):
        return "inf" if value > 0 else ("-inf" if value < 0 else "n/a")
    if kind == "pct":
        return f"{100 * value:.2f}%"
    if kind == "count":
        return f"{value:,.0f}"
    if kind == "times":
        return f"{value:.2f}x"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:.2f}"


def format_metrics_table(report: BacktestReport | Mapping[str, Mapping[str, float]]) -> str:
    """Markdown table of every metric, strategy, buy & hold and cash side by side.

    Parameters
    ----------
    report:
        A :class:`BacktestReport`, or its ``metrics`` mapping (side -> metric -> value).
    """
    table = report.metrics if isinstance(report, BacktestReport) else report
    sides = [side for side in SIDES if side in table]
    lines = [
        "| Metric | " + " | ".join(SIDE_LABELS[s] for s in sides) + " |",
        "|---|" + "---:|" * len(sides),
    ]
    for name in (*METRIC_NAMES, *TRADE_STAT_NAMES):
        label, kind = _FORMATS[name]
        cells = [_format_value(float(table[side][name]), kind) for side in sides]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def most_traded(fills: pd.DataFrame, k: int) -> list[str]:
    """The ``k`` tickers with the most fills (ties by symbol)."""
    if k <= 0 or fills.empty:
        return []
    counts = fills["ticker"].astype(str).value_counts()
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [ticker for ticker, _ in ranked[:k]]
