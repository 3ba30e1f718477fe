"""Compute the registry's features: one generic loop over the table, per ticker.

:func:`compute_features` handles one ticker: each registry row's call is made through the
per-ticker memo (:mod:`~ploutos_core.features.memo`), so an indicator several rows read is computed
once. :func:`compute_features_many` splits a long frame by ticker and spreads the tickers over
worker processes (:mod:`~ploutos_core.features.parallel`), sending each task only the NumPy arrays
of its tickers and receiving float32 matrices back.
"""

from __future__ import annotations

import functools
import inspect
import multiprocessing
import os
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import pandas_ta as ta
from pandas_ta.maps import Imports

from ploutos_core.errors import DataError
from ploutos_core.features import custom
from ploutos_core.features.custom import safe_divide
from ploutos_core.features.memo import shared, sharing
from ploutos_core.features.parallel import compute_in_workers
from ploutos_core.features.registry import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    REGISTRY,
    WARMUP_BARS,
    FeatureSpec,
)
from ploutos_core.storage import FEATURE_VERSION_ATTR

# pandas-ta's indicators call each other without forwarding talib=False (stochrsi -> rsi,
# adx -> atr, zscore -> stdev, ...); with TA-Lib installed those inner calls would switch
# implementation and change the values. Declaring TA-Lib absent makes every path pure pandas-ta.
Imports["talib"] = False

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
_ARGUMENT_COLUMN = {
    "open_": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
}
_MODULES = {"ta": ta, "custom": custom}


@functools.cache
def _resolve(func: str) -> tuple[Callable[..., pd.Series | pd.DataFrame], tuple[str, ...], bool]:
    """The function named ``ta.x`` or ``custom.x``, the OHLCV columns it requires, and whether it
    takes ``talib``."""
    module, _, attr = func.partition(".")
    fn = getattr(_MODULES[module], attr)
    parameters = inspect.signature(fn).parameters
    required = tuple(
        _ARGUMENT_COLUMN[name]
        for name, p in parameters.items()
        if name in _ARGUMENT_COLUMN and p.default is inspect.Parameter.empty
    )
    return fn, required, "talib" in parameters


def _call(spec: FeatureSpec, bars: Mapping[str, pd.Series]) -> pd.Series | pd.DataFrame:
    fn, required, takes_talib = _resolve(spec.func)
    kwargs = dict(spec.params)
    if takes_talib:
        kwargs["talib"] = False
    result = shared(fn, *(bars[column] for column in spec.inputs or required), **kwargs)
    if result is None:
        raise RuntimeError(f"{spec.call} returned nothing for {len(bars['close'])} bars")
    return result


Columns = Mapping[str | None, np.ndarray]


def as_columns(result: pd.Series | pd.DataFrame) -> Columns:
    """An indicator's output as float64 arrays: ``{None: values}`` for a Series, column name ->
    values for a DataFrame (one conversion for all its columns, not a lookup per feature)."""
    if isinstance(result, pd.Series):
        return {None: result.to_numpy(dtype=np.float64)}
    return dict(zip(result.columns, result.to_numpy(dtype=np.float64).T, strict=True))


def _transform(spec: FeatureSpec, columns: Columns, close: np.ndarray) -> np.ndarray:
    """Apply ``spec.transform`` (documented in ``registry.TRANSFORMS``) to the indicator output."""
    kind = spec.transform
    if kind == "position":
        lower_col, upper_col = spec.output
        lower, upper = columns[lower_col], columns[upper_col]
        return safe_divide(close - lower, upper - lower)
    x = columns[spec.output]
    if kind == "value":
        return x
    if kind == "pct_of_close":
        return 100 * safe_divide(x, close)
    if kind == "close_vs":
        return 100 * (safe_divide(close, x) - 1)
    if kind in ("breaks_above", "breaks_below"):
        previous = np.roll(x, 1)
        previous[0] = np.nan
        crossed = close > previous if kind == "breaks_above" else close < previous
        return np.where(np.isnan(previous), np.nan, crossed.astype(np.float64))
    raise ValueError(f"feature {spec.name}: unknown transform {kind!r}")


def feature_matrix(values: np.ndarray) -> np.ndarray:
    """All registry features for one ticker, before the warm-up rows are dropped.

    Parameters
    ----------
    values:
        float64 array ``[5, n]``: open, high, low, close, volume of ``n`` consecutive bars.

    Returns
    -------
    float64 array ``[n, len(REGISTRY)]``, NaN where an indicator is not yet defined.
    """
    bars = {name: pd.Series(values[i], copy=False) for i, name in enumerate(PRICE_COLUMNS)}
    close = values[3]
    out = np.empty((values.shape[1], len(REGISTRY)), order="F")
    with sharing():
        for j, spec in enumerate(REGISTRY):
            out[:, j] = _transform(spec, shared(as_columns, _call(spec, bars)), close)
    return out


def finish(matrix: np.ndarray) -> np.ndarray:
    """Drop the first WARMUP_BARS rows, cast to float32, and set every non-finite value to 0.

    The result is column-major, so each feature column is contiguous: pyarrow then encodes it
    without a strided copy (a third faster to write as Parquet).
    """
    with np.errstate(over="ignore", invalid="ignore"):
        kept = matrix[WARMUP_BARS:].astype(np.float32, order="F")
    kept[~np.isfinite(kept)] = 0.0
    return kept


def _kept_dates(dates: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(dates[WARMUP_BARS:], name="date")


def _feature_frame(matrix: np.ndarray, dates: np.ndarray) -> pd.DataFrame:
    columns = pd.Index(FEATURE_NAMES)
    frame = pd.DataFrame(matrix, index=_kept_dates(dates), columns=columns, copy=False)
    frame.attrs[FEATURE_VERSION_ATTR] = FEATURE_VERSION  # stored with the file (storage.py)
    return frame


def _empty_frame(dates: np.ndarray) -> pd.DataFrame:
    return _feature_frame(np.empty((0, len(FEATURE_NAMES)), dtype=np.float32), dates[:0])


def _check_columns(ohlcv: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in ohlcv.columns]
    if missing:
        raise DataError(
            f"OHLCV frame lacks column(s) {missing}; it needs {list(columns)} "
            "(the long format of ploutos_core.data.load_ohlcv)"
        )


def _check_bars(ticker: str, dates: np.ndarray, values: np.ndarray) -> None:
    steps = np.diff(dates.astype("datetime64[ns]").view(np.int64))
    if (steps <= 0).any():
        row = int(np.argmax(steps <= 0)) + 1
        raise DataError(
            f"ticker {ticker}: dates are not strictly increasing at its row {row} "
            f"({dates[row]}); sort by date and drop duplicate dates"
        )
    finite = np.isfinite(values)
    if not finite.all():
        column, row = np.argwhere(~finite)[0]
        raise DataError(
            f"ticker {ticker}: {PRICE_COLUMNS[column]} is not a finite number at its row {row} "
            f"({dates[row]}); repair or drop that bar"
        )


def _ticker_name(ohlcv: pd.DataFrame) -> str:
    if "ticker" not in ohlcv.columns or ohlcv.empty:
        return "<unnamed>"
    tickers = ohlcv["ticker"].unique()
    if len(tickers) > 1:
        raise DataError(
            f"compute_features takes one ticker's rows, got {len(tickers)} tickers "
            f"({', '.join(map(str, tickers[:5]))}, ...); use compute_features_many"
        )
    return str(tickers[0])


def compute_features(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """The registry's features for one ticker.

    Parameters
    ----------
    ohlcv:
        One ticker's rows in the long format of ``load_ohlcv`` (``date``, ``open``, ``high``,
        ``low``, ``close``, ``volume``; ``ticker`` optional), dates strictly increasing.

    Returns
    -------
    DataFrame indexed by ``date`` with exactly ``FEATURE_NAMES`` as float32 columns, the first
    ``WARMUP_BARS`` rows dropped, finite everywhere; empty (same columns) when the ticker has at
    most ``WARMUP_BARS`` rows.
    """
    _check_columns(ohlcv, ("date", *PRICE_COLUMNS))
    ticker = _ticker_name(ohlcv)
    dates = ohlcv["date"].to_numpy()
    values = np.vstack([ohlcv[c].to_numpy(dtype=np.float64) for c in PRICE_COLUMNS])
    _check_bars(ticker, dates, values)
    if len(dates) <= WARMUP_BARS:
        return _empty_frame(dates)
    return _feature_frame(finish(feature_matrix(values)), dates)


def finished_matrix(values: np.ndarray) -> np.ndarray:
    """One ticker's finished float32 feature matrix from its float64 ``[5, n]`` OHLCV array
    (no rows when ``n`` is at most the warm-up)."""
    if values.shape[1] <= WARMUP_BARS:
        return np.empty((0, len(FEATURE_NAMES)), np.float32)
    return finish(feature_matrix(values))


def _split_by_ticker(ohlcv: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Ticker -> (dates, float64 [5, n]) in order of first appearance."""
    codes, tickers = pd.factorize(ohlcv["ticker"], sort=False)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(tickers) + 1))
    dates = ohlcv["date"].to_numpy()[order]
    values = np.vstack([ohlcv[c].to_numpy(dtype=np.float64)[order] for c in PRICE_COLUMNS])
    return {
        str(ticker): (dates[lo:hi], np.ascontiguousarray(values[:, lo:hi]))
        for ticker, lo, hi in zip(tickers, bounds[:-1], bounds[1:], strict=True)
    }


def feature_dates(ohlcv: pd.DataFrame) -> dict[str, pd.DatetimeIndex]:
    """Ticker -> the index its feature frame will have (its dates after the warm-up), in the
    frame's ticker order, without computing any feature."""
    _check_columns(ohlcv, ("date", "ticker"))
    return {
        str(ticker): _kept_dates(dates.to_numpy())
        for ticker, dates in ohlcv.groupby("ticker", sort=False)["date"]
    }


def compute_features_many(
    ohlcv: pd.DataFrame, *, workers: int | None = None
) -> dict[str, pd.DataFrame]:
    """:func:`compute_features` for every ticker of a long frame, in parallel over processes.

    Parameters
    ----------
    ohlcv:
        Long OHLCV frame (``load_ohlcv`` format) with any number of tickers.
    workers:
        Worker processes; ``None`` uses ``os.cpu_count()``, 1 computes in this process. A
        daemonic process (a Celery worker's pool process, a ``multiprocessing`` pool worker)
        cannot start processes, so it always computes in itself: on a cluster, tickers spread
        over workers by runs instead (``PLOUTOS_FEATURES_PER_RUN``).

    Returns
    -------
    Ticker -> feature frame, in the frame's ticker order.

    Notes
    -----
    Workers are forked from a forkserver (safe in a multi-threaded caller; see
    :mod:`~ploutos_core.features.parallel`), which, like ``spawn``, imports the calling script as
    ``__mp_main__``: a script calling this with ``workers > 1`` needs the
    ``if __name__ == "__main__":`` guard.
    """
    _check_columns(ohlcv, ("date", "ticker", *PRICE_COLUMNS))
    per_ticker = _split_by_ticker(ohlcv)
    for ticker, (dates, values) in per_ticker.items():
        _check_bars(ticker, dates, values)
    arrays = [values for _, values in per_ticker.values()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(arrays)))
    if workers == 1 or multiprocessing.current_process().daemon:
        matrices = [finished_matrix(values) for values in arrays]
    else:
        matrices = compute_in_workers(finished_matrix, arrays, workers)
    return {
        ticker: _feature_frame(matrix, dates) if len(matrix) else _empty_frame(dates)
        for (ticker, (dates, _)), matrix in zip(per_ticker.items(), matrices, strict=True)
    }
