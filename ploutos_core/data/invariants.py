"""Properties a stored OHLCV table must have, checked again after it is written.

Each function returns a list of human-readable violations (empty when the property holds). The
Dagster asset checks report them; the tests use them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ploutos_core.data.validation import TICKER_PATTERN

OHLCV_DTYPES = {
    "date": "datetime64[ns]",
    "ticker": "string",
    "open": "float64",
    "high": "float64",
    "low": "float64",
    "close": "float64",
    "volume": "float64",
}


_MAX_LISTED = 5


def _rows(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> str:
    bad = frame.loc[np.asarray(mask), ["date", "ticker"]].head(_MAX_LISTED)
    return ", ".join(f"{r.ticker} {pd.Timestamp(r.date).date()}" for r in bad.itertuples())


def ohlcv_schema_violations(frame: pd.DataFrame) -> list[str]:
    """Exact columns, in order, with the documented dtypes."""
    if list(frame.columns) != list(OHLCV_DTYPES):
        return [f"columns are {list(frame.columns)}, expected {list(OHLCV_DTYPES)}"]
    return [
        f"column {col} has dtype {frame[col].dtype}, expected {dtype}"
        for col, dtype in OHLCV_DTYPES.items()
        if str(frame[col].dtype) != dtype
    ]


def ohlcv_order_violations(frame: pd.DataFrame) -> list[str]:
    """Sorted by ticker then date, with no duplicate (date, ticker)."""
    problems = []
    duplicated = frame.duplicated(["ticker", "date"])
    if duplicated.any():
        problems.append(f"duplicate (date, ticker) rows: {_rows(frame, duplicated)}")
    keys = frame[["ticker", "date"]]
    if not keys.equals(keys.sort_values(["ticker", "date"], kind="stable")):
        problems.append("rows are not sorted by ticker, then date")
    return problems


def ohlcv_price_violations(frame: pd.DataFrame) -> list[str]:
    """Finite positive prices, low <= open/close <= high, finite non-negative volume."""
    prices = frame[["open", "high", "low", "close"]].to_numpy()
    checks = {
        "non-finite or non-positive prices": ~(np.isfinite(prices) & (prices > 0)).all(axis=1),
        "high below low": (frame["high"] < frame["low"]).to_numpy(),
        "open or close outside [low, high]": (
            (frame[["open", "close"]].max(axis=1) > frame["high"] * (1 + 1e-9))
            | (frame[["open", "close"]].min(axis=1) < frame["low"] * (1 - 1e-9))
        ).to_numpy(),
        "negative or non-finite volume": ~(
            np.isfinite(frame["volume"].to_numpy()) & (frame["volume"].to_numpy() >= 0)
        ),
    }
    return [f"{name}: {_rows(frame, mask)}" for name, mask in checks.items() if mask.any()]


def ticker_violations(tickers: Sequence[str]) -> list[str]:
    """Every ticker is a safe partition key and file name."""
    unsafe = [t for t in tickers if not TICKER_PATTERN.match(t)]
    return [f"unsafe ticker symbols: {unsafe[:_MAX_LISTED]}"] if unsafe else []
