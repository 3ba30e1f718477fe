"""Backtest figures rendered to PNG bytes with matplotlib's Agg canvas.

Figures are built with :class:`matplotlib.figure.Figure` directly, not through ``pyplot``, so no
global figure state is kept and rendering works in worker threads and without a display.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ploutos_core.backtest.metrics import drawdown

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FULL_SIZE = (11.0, 6.5)
FULL_DPI = 110
THUMBNAIL_SIZE = (6.4, 3.6)
THUMBNAIL_DPI = 60
COLORS = ("#1f77b4", "#ff7f0e", "#7f7f7f", "#2ca02c", "#9467bd")


def _date_axis(ax) -> None:
    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _to_datetimes(dates: np.ndarray | pd.DatetimeIndex) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.asarray(dates, dtype="datetime64[ns]"))


def figure_png(fig: Figure, dpi: int = FULL_DPI) -> bytes:
    """Render ``fig`` to PNG bytes."""
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def equity_figure(
    dates: np.ndarray | pd.DatetimeIndex,
    curves: Mapping[str, np.ndarray],
    title: str,
    *,
    figsize: tuple[float, float] = FULL_SIZE,
) -> Figure:
    """Equity curves over time, with each curve's drawdown in a panel underneath.

    Parameters
    ----------
    dates:
        One date per bar.
    curves:
        Label -> equity per bar (same length as ``dates``); the first is drawn thickest.
    title:
        Figure title, e.g. the model and the test period.
    """
    x = _to_datetimes(dates)
    fig = Figure(figsize=figsize, layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    for i, (label, equity) in enumerate(curves.items()):
        color = COLORS[i % len(COLORS)]
        width = 1.8 if i == 0 else 1.1
        top.plot(x, equity, label=label, color=color, linewidth=width)
        bottom.plot(x, 100.0 * drawdown(equity), color=color, linewidth=width)
    top.set_title(title)
    top.set_ylabel("Equity")
    top.grid(alpha=0.3)
    top.legend(loc="best")
    top.yaxis.set_major_formatter(lambda value, _: f"{value:,.0f}")
    bottom.set_ylabel("Drawdown (%)")
    bottom.set_xlabel("Date")
    bottom.grid(alpha=0.3)
    _date_axis(bottom)
    return fig


def trades_figure(
    dates: np.ndarray | pd.DatetimeIndex,
    close: np.ndarray,
    fills: pd.DataFrame,
    ticker: str,
    title: str,
    *,
    figsize: tuple[float, float] = FULL_SIZE,
) -> Figure:
    """One ticker's close with buy (^) and sell (v) markers at the fill dates and fill prices.

    Parameters
    ----------
    dates, close:
        The ticker's close per bar; values <= 0 (not listed yet) are not drawn.
    fills:
        This ticker's fills (``date``, ``side``, ``price``, ``quantity``).
    """
    x = _to_datetimes(dates)
    price = np.where(np.asarray(close, dtype=np.float64) > 0, close, np.nan)
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    ax.plot(x, price, color="#444444", linewidth=1.0, label=f"{ticker} close")
    for side, marker, color in (("buy", "^", "#2ca02c"), ("sell", "v", "#d62728")):
        rows = fills[fills["side"] == side]
        ax.scatter(
            pd.DatetimeIndex(rows["date"]),
            rows["price"],
            marker=marker,
            s=46,
            color=color,
            edgecolors="black",
            linewidths=0.4,
            zorder=3,
            label=f"{side} ({len(rows)}), at fill price",
        )
    ax.set_title(title)
    ax.set_xlabel("Date")
    ax.set_ylabel("Price")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    _date_axis(ax)
    return fig


def equity_png(
    dates: np.ndarray | pd.DatetimeIndex, curves: Mapping[str, np.ndarray], title: str
) -> bytes:
    """The full-size equity and drawdown figure as PNG bytes."""
    return figure_png(equity_figure(dates, curves, title), dpi=FULL_DPI)


def equity_thumbnail_png(
    dates: np.ndarray | pd.DatetimeIndex, curves: Mapping[str, np.ndarray], title: str
) -> bytes:
    """A small equity figure (a few tens of KB) for embedding in Dagster metadata."""
    fig = equity_figure(dates, curves, title, figsize=THUMBNAIL_SIZE)
    return figure_png(fig, dpi=THUMBNAIL_DPI)


def trades_png(
    dates: np.ndarray | pd.DatetimeIndex,
    close: np.ndarray,
    fills: pd.DataFrame,
    ticker: str,
    title: str,
) -> bytes:
    """The trades figure of one ticker as PNG bytes."""
    return figure_png(trades_figure(dates, close, fills, ticker, title), dpi=FULL_DPI)


def markdown_image(png: bytes, alt: str) -> str:
    """A Markdown image with the PNG inlined as a base64 data URI (for ``MetadataValue.md``)."""
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("markdown_image expects PNG bytes")
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
