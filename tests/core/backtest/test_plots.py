"""The figures render to valid PNGs of the documented kind."""

from __future__ import annotations

import io
import struct

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

from ploutos_core.backtest import plots


def _png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(plots.PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2022-01-03", periods=300)
    strategy = 1e5 * np.cumprod(1 + rng.normal(4e-4, 0.01, dates.size))
    benchmark = 1e5 * np.cumprod(1 + rng.normal(3e-4, 0.012, dates.size))
    return dates, {"Strategy": strategy, "Buy & hold": benchmark, "Cash": np.full(300, 1e5)}


def test_equity_figure_has_title_labels_legend_and_drawdown(curves):
    dates, series = curves
    fig = plots.equity_figure(dates, series, "final_model.zip, 2022-01-03 to 2023-02-24")
    top, bottom = fig.axes
    assert top.get_title() == "final_model.zip, 2022-01-03 to 2023-02-24"
    assert top.get_ylabel() == "Equity" and bottom.get_ylabel() == "Drawdown (%)"
    assert bottom.get_xlabel() == "Date"
    assert [t.get_text() for t in top.get_legend().get_texts()] == list(series)
    drawdown_line = bottom.get_lines()[0].get_ydata()
    assert np.max(drawdown_line) == 0.0 and np.min(drawdown_line) < 0.0


def test_equity_png_and_thumbnail_are_valid_images(curves):
    dates, series = curves
    png = plots.equity_png(dates, series, "title")
    thumb = plots.equity_thumbnail_png(dates, series, "title")
    width, height = _png_size(png)
    assert width > 800 and height > 500
    t_width, t_height = _png_size(thumb)
    assert t_width < width and t_height < height
    assert len(thumb) < 60_000
    image = mpimg.imread(io.BytesIO(png), format="png")
    assert image.shape[:2] == (height, width)
    assert image.std() > 0.05  # not a blank canvas
    md = plots.markdown_image(thumb, "equity")
    assert md.startswith("![equity](data:image/png;base64,")


def test_trades_figure_marks_fills_at_their_dates_and_prices():
    dates = pd.bdate_range("2023-01-02", periods=60)
    close = np.linspace(10, 14, 60)
    close[:5] = 0.0  # not listed yet: not drawn
    fills = pd.DataFrame(
        {
            "date": dates[[10, 20, 30]],
            "side": ["buy", "sell", "buy"],
            "price": [11.0, 12.5, 12.0],
            "quantity": [3.0, 3.0, 2.0],
        }
    )
    fig = plots.trades_figure(dates, close, fills, "AAA", "AAA trades")
    (ax,) = fig.axes
    buys, sells = ax.collections
    assert buys.get_offsets()[:, 1].tolist() == [11.0, 12.0]
    assert sells.get_offsets()[:, 1].tolist() == [12.5]
    assert np.isnan(ax.get_lines()[0].get_ydata()[:5]).all()
    png = plots.figure_png(fig)
    assert _png_size(png)[0] > 800


def test_markdown_image_rejects_non_png():
    with pytest.raises(ValueError, match="PNG"):
        plots.markdown_image(b"GIF89a", "x")
