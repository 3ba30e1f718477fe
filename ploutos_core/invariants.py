"""Properties a stored artifact must have, checked again after it is written.

Each function returns a list of human-readable violations (empty when the property holds). The
Dagster asset checks report them; the tests use them too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ploutos_core.data import TICKER_PATTERN

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


def feature_frame_violations(frame: pd.DataFrame, feature_names: Sequence[str]) -> list[str]:
    """The registry's columns in order, float32, finite, dates strictly increasing."""
    problems = []
    if tuple(frame.columns) != tuple(feature_names):
        missing = [c for c in feature_names if c not in frame.columns]
        extra = [c for c in frame.columns if c not in feature_names]
        problems.append(
            f"columns differ from the registry (missing {missing[:5]}, extra {extra[:5]}, "
            "or out of order)"
        )
    dtypes = frame.dtypes  # one Series, not a column lookup per feature (a millisecond a file)
    wrong = [c for c, dtype in dtypes.items() if dtype != np.float32]
    if wrong:
        problems.append(f"columns not float32: {wrong[:5]}")
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if values.size and not np.isfinite(values).all():
        cols = frame.columns[~np.isfinite(values).all(axis=0)]
        problems.append(f"NaN or inf in columns: {list(cols[:5])}")
    index = pd.DatetimeIndex(frame.index)
    if len(index) > 1 and not (np.diff(index.asi8) > 0).all():
        problems.append("dates are not strictly increasing")
    return problems
