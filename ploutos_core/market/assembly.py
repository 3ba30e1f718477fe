"""Building :class:`~ploutos_core.market.MarketData` from per-ticker feature frames and the long
OHLCV table, in memory (:func:`build_market`) or from the stored Parquet files
(:func:`load_market`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ploutos_core.errors import DataError
from ploutos_core.market.arrays import MarketData
from ploutos_core.market.dates import iso_day
from ploutos_core.storage import (
    FEATURE_VERSION_ATTR,
    SOURCE_FINGERPRINT_ATTR,
    parquet_provenance,
)

_LISTED = 10

_READ_THREADS = 8


def _listing(items: Sequence[Any]) -> str:
    shown = ", ".join(str(item) for item in items[:_LISTED])
    return shown + (f" and {len(items) - _LISTED} more" if len(items) > _LISTED else "")


def _feature_names(feature_names: Sequence[str] | None) -> tuple[str, ...]:
    """The feature columns: the registry's unless ``feature_names`` is given."""
    if feature_names is not None:
        return tuple(feature_names)
    from ploutos_core.features import FEATURE_NAMES

    return tuple(FEATURE_NAMES)


def _day_ns(value: int | np.integer) -> str:
    return iso_day(np.datetime64(int(value), "ns"))


@dataclass(frozen=True)
class _FeatureBlock:
    """One ticker's feature rows: dates as int64 nanoseconds and values ``float32 [rows, F]``."""

    dates: np.ndarray
    values: np.ndarray
    provenance: Mapping[str, str] = field(default_factory=dict)


def _ohlcv_grid(
    dates_ns: np.ndarray,
    codes: np.ndarray,
    tickers: Sequence[str],
    open_: np.ndarray,
    close: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scatter long OHLCV rows onto ``[T, N]``: calendar, open, close (forward-filled), has_bar."""
    calendar = np.unique(dates_ns)
    T, N = len(calendar), len(tickers)
    rows = np.searchsorted(calendar, dates_ns)
    has_bar = np.zeros((T, N), dtype=bool)
    has_bar[rows, codes] = True
    if int(has_bar.sum()) != len(dates_ns):
        key = rows.astype(np.int64) * N + codes
        _, first, counts = np.unique(key, return_index=True, return_counts=True)
        dup = first[counts > 1]
        raise DataError(
            "the OHLCV data has duplicate (date, ticker) rows: "
            + _listing([f"{tickers[codes[i]]} {_day_ns(calendar[rows[i]])}" for i in dup])
            + "; load it through ploutos_core.data.load_ohlcv, which removes them"
        )
    prices = {}
    for name, values in (("open", open_), ("close", close)):
        grid = np.zeros((T, N), dtype=np.float32)
        grid[rows, codes] = values
        bad = has_bar & ~(np.isfinite(grid) & (grid > 0))
        if bad.any():
            t_bad, n_bad = np.nonzero(bad)
            raise DataError(
                f"non-positive or non-finite {name} prices: "
                + _listing(
                    [
                        f"{tickers[n]} {_day_ns(calendar[t])}"
                        for t, n in zip(t_bad, n_bad, strict=True)
                    ]
                )
            )
        prices[name] = grid
    last_bar = np.where(has_bar, np.arange(T)[:, None], 0)
    np.maximum.accumulate(last_bar, axis=0, out=last_bar)
    columns = np.arange(N)[None, :]
    listed = np.logical_or.accumulate(has_bar, axis=0)
    for name, grid in prices.items():
        filled = grid[last_bar, columns]
        filled[~listed] = 0.0
        prices[name] = filled
    return calendar.astype("datetime64[ns]"), prices["open"], prices["close"], has_bar


class _Assembler:
    """The OHLCV grid plus the feature and tradable arrays that per-ticker blocks are placed into.

    :meth:`place` touches only column ``n``, so blocks can be placed from several threads at once.
    """

    def __init__(
        self,
        dates_ns: np.ndarray,
        codes: np.ndarray,
        tickers: Sequence[str],
        open_: np.ndarray,
        close: np.ndarray,
        feature_names: Sequence[str],
        feature_version: str | None,
    ) -> None:
        self.calendar, self.open, self.close, self.has_bar = _ohlcv_grid(
            dates_ns, codes, tickers, open_, close
        )
        self.tickers = tuple(tickers)
        self.feature_names = tuple(feature_names)
        self.fallback_version = feature_version
        self.versions: dict[str, str | None] = {}
        self.fingerprints: dict[str, str | None] = {}
        T, N, F = len(self.calendar), len(tickers), len(feature_names)
        self.features = np.zeros((T, N, F), dtype=np.float32)
        self.tradable = np.zeros((T, N), dtype=bool)

    def place(self, n: int, block: _FeatureBlock, source: str) -> None:
        """Check ``block`` against ticker ``n``'s bars and write it into column ``n``."""
        if len(block.dates) == 0:
            return
        calendar_ns = self.calendar.view(np.int64)
        ticker = self.tickers[n]
        rows = np.minimum(np.searchsorted(calendar_ns, block.dates), len(calendar_ns) - 1)
        known = (calendar_ns[rows] == block.dates) & self.has_bar[rows, n]
        if not known.all():
            stray = [_day_ns(d) for d in block.dates[~known]]
            raise DataError(
                f"{source}: feature rows at dates without an OHLCV bar for {ticker} "
                f"({_listing(stray)}); the features are stale, recompute "
                "(re-materialize) them from the current OHLCV data"
            )
        if len(rows) > 1 and not (np.diff(rows) > 0).all():
            raise DataError(f"{source}: feature dates of {ticker} are not strictly increasing")
        finite = np.isfinite(block.values)
        if not finite.all():
            bad = [self.feature_names[j] for j in np.flatnonzero(~finite.all(axis=0))]
            raise DataError(
                f"{source}: NaN or inf in feature columns {_listing(bad)}; recompute the features"
            )
        bars = np.flatnonzero(self.has_bar[rows[0] :, n]) + rows[0]
        if len(bars) > len(rows):
            missing = [_day_ns(calendar_ns[b]) for b in np.setdiff1d(bars, rows)]
            raise DataError(
                f"{source}: {ticker} has {len(missing)} OHLCV bar(s) without a feature row "
                f"({_listing(missing)}): the features are stale, computed before these bars "
                "arrived; recompute (re-materialize) them from the current OHLCV data"
            )
        self.versions[ticker] = block.provenance.get(FEATURE_VERSION_ATTR, self.fallback_version)
        self.fingerprints[ticker] = block.provenance.get(SOURCE_FINGERPRINT_ATTR)
        if rows[-1] - rows[0] + 1 == len(rows):
            rows = slice(rows[0], rows[-1] + 1)
        self.features[rows, n] = block.values
        self.tradable[rows, n] = True

    def feature_version(self, source: str) -> str | None:
        """The one feature version of every placed block; several are an error."""
        by_version: dict[str | None, list[str]] = {}
        for ticker, version in self.versions.items():
            by_version.setdefault(version, []).append(ticker)
        if len(by_version) > 1:
            ordered = sorted(by_version.items(), key=str)
            groups = "; ".join(f"version {v}: {_listing(sorted(ts))}" for v, ts in ordered)
            raise DataError(
                f"{source}: the features were computed by different feature definitions "
                f"({groups}); recompute (re-materialize) the stale ones with the current code"
            )
        return next(iter(by_version), self.fallback_version)

    def check_fingerprints(self, expected: Mapping[str, str], source: str) -> None:
        """Refuse blocks computed from other raw rows than ``expected`` (ticker -> fingerprint)."""
        stale = sorted(t for t, fp in self.fingerprints.items() if expected.get(t, fp) != fp)
        if stale:
            raise DataError(
                f"{source}: the features of {_listing(stale)} were computed from other raw rows "
                "than raw_ohlcv holds now (stale); recompute them, e.g. `dagster asset "
                "materialize -m ploutos_pipeline.definitions --select features --partition-range "
                f"{stale[0]}...{stale[-1]}`, or turn on features_refresh_sensor"
            )

    def market(self, source: str = "the features") -> MarketData:
        return MarketData(
            dates=self.calendar,
            tickers=self.tickers,
            feature_names=self.feature_names,
            features=self.features,
            open=self.open,
            close=self.close,
            tradable=self.tradable,
            feature_version=self.feature_version(source),
        )


def _ohlcv_columns(ohlcv: pd.DataFrame) -> None:
    missing = [c for c in ("date", "ticker", "open", "close") if c not in ohlcv.columns]
    if missing:
        raise DataError(
            f"the OHLCV frame lacks columns {missing}; load it through ploutos_core.data.load_ohlcv"
        )


def build_market(
    features: Mapping[str, pd.DataFrame],
    ohlcv: pd.DataFrame,
    feature_names: Sequence[str] | None = None,
    feature_version: str | None = None,
) -> MarketData:
    """Build :class:`MarketData` from per-ticker feature frames and the long OHLCV frame.

    Parameters
    ----------
    features
        Ticker -> frame indexed by date with (at least) the ``feature_names`` columns, one entry for
        every ticker of ``ohlcv`` (an empty frame for a ticker without features).
    ohlcv
        Long frame with ``date, ticker, open, close`` columns (the format of
        ``ploutos_core.data.load_ohlcv``). Its tickers, sorted, are the universe.
    feature_names
        Feature columns in observation order; default ``ploutos_core.features.FEATURE_NAMES``.
    feature_version
        The version of frames that do not record one: the features' version is what
        ``ploutos_core.features.compute_features`` records in each frame (``FEATURE_VERSION``,
        kept in each Parquet file); frames of several versions are refused.

    Raises
    ------
    DataError
        Tickers without features (or features without OHLCV), missing feature columns, non-finite
        features, feature rows on dates without an OHLCV bar, duplicate or invalid OHLCV rows.
    """
    names = _feature_names(feature_names)
    _ohlcv_columns(ohlcv)
    codes, uniques = pd.factorize(ohlcv["ticker"], sort=True)
    tickers = [str(t) for t in uniques]
    missing = [t for t in tickers if t not in features]
    if missing:
        raise DataError(
            f"no features for tickers {_listing(missing)}; compute their feature partitions first"
        )
    extra = sorted(set(features) - set(tickers))
    if extra:
        raise DataError(f"features given for tickers absent from the OHLCV data: {_listing(extra)}")
    assembler = _Assembler(
        dates_ns=ohlcv["date"].to_numpy().astype("datetime64[ns]").view(np.int64),
        codes=codes,
        tickers=tickers,
        open_=ohlcv["open"].to_numpy(dtype=np.float32),
        close=ohlcv["close"].to_numpy(dtype=np.float32),
        feature_names=names,
        feature_version=feature_version,
    )
    for n, ticker in enumerate(tickers):
        frame = features[ticker]
        absent = [c for c in names if c not in frame.columns]
        if absent:
            raise DataError(
                f"features of {ticker} lack columns {_listing(absent)}; recompute the features"
            )
        block = _FeatureBlock(
            dates=pd.DatetimeIndex(frame.index).as_unit("ns").asi8,
            values=frame[list(names)].to_numpy(dtype=np.float32),
            provenance=frame.attrs,
        )
        assembler.place(n, block, f"features of {ticker}")
    return assembler.market()


def _read_feature_file(path: Path, feature_names: Sequence[str]) -> _FeatureBlock:
    columns = ["date", *feature_names]
    try:
        with pq.ParquetFile(path) as parquet:
            present = set(parquet.schema_arrow.names)
            absent = [c for c in columns if c not in present]
            if absent:
                raise DataError(
                    f"feature file {path} lacks columns {_listing(absent)}; recompute the features"
                )
            table = parquet.read(columns=columns, use_threads=False)
            provenance = parquet_provenance(parquet.schema_arrow.metadata)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DataError(f"cannot read feature file {path}: {exc}") from exc
    dates = table.column("date").to_numpy().astype("datetime64[ns]").view(np.int64)
    values = table.drop_columns(["date"])
    if any(column_type != pa.float32() for column_type in values.schema.types):
        values = values.cast(pa.schema([(name, pa.float32()) for name in feature_names]))
    if values.num_rows == 0:
        empty = np.zeros((0, len(feature_names)), dtype=np.float32)
        return _FeatureBlock(dates, empty, provenance)
    matrix = np.asarray(values.combine_chunks().to_tensor(null_to_nan=True, row_major=True))
    return _FeatureBlock(dates, matrix, provenance)


def load_market(
    features_dir: str | Path,
    ohlcv_path: str | Path,
    tickers: Sequence[str] | None = None,
    *,
    feature_names: Sequence[str] | None = None,
    feature_version: str | None = None,
    fingerprints: Mapping[str, str] | None = None,
) -> MarketData:
    """Read the cached feature partitions and the raw OHLCV Parquet into :class:`MarketData`.

    Parameters
    ----------
    features_dir
        Directory of ``<TICKER>.parquet`` feature files (frames indexed by ``date``).
    ohlcv_path
        The raw OHLCV Parquet (the long ``load_ohlcv`` frame).
    tickers
        Universe in column order (e.g. a trained model's tickers); default: every OHLCV ticker,
        sorted.
    feature_names, feature_version
        As for :func:`build_market`.
    fingerprints
        Ticker -> fingerprint of its rows in the current raw table
        (``ploutos_core.data.lineage.ticker_fingerprints``): a feature file computed from other
        rows is refused as stale. None: not checked (the dates still are).

    Raises
    ------
    DataError
        Tickers missing from the OHLCV data or without a feature file, plus every error of
        :func:`build_market`.
    """
    names = _feature_names(feature_names)
    features_dir = Path(features_dir)
    try:
        table = pq.read_table(
            ohlcv_path, columns=["date", "ticker", "open", "close"], read_dictionary=["ticker"]
        )
    except FileNotFoundError as exc:
        raise DataError(f"{ohlcv_path} does not exist; materialize raw_ohlcv first") from exc
    except (OSError, pa.ArrowInvalid, KeyError) as exc:
        raise DataError(
            f"cannot read OHLCV columns date, ticker, open, close from {ohlcv_path}: {exc}"
        ) from exc
    ticker_column = table.column("ticker").combine_chunks()
    dictionary = [str(s) for s in ticker_column.dictionary.to_pylist()]
    raw_codes = ticker_column.indices.to_numpy(zero_copy_only=False)
    if tickers is None:
        universe = sorted(dictionary)
    else:
        universe = [str(t) for t in tickers]
        absent = sorted(set(universe) - set(dictionary))
        if absent:
            raise DataError(f"tickers {_listing(absent)} are not in the OHLCV data {ohlcv_path}")
    position = {t: i for i, t in enumerate(universe)}
    remap = np.array([position.get(t, -1) for t in dictionary], dtype=np.int64)
    codes = remap[raw_codes]
    keep = codes >= 0
    paths = [features_dir / f"{t}.parquet" for t in universe]
    missing = [t for t, p in zip(universe, paths, strict=True) if not p.is_file()]
    if missing:
        raise DataError(
            f"no feature file in {features_dir} for tickers {_listing(missing)}; materialize "
            "their feature partitions first"
        )
    assembler = _Assembler(
        dates_ns=table.column("date").to_numpy().astype("datetime64[ns]").view(np.int64)[keep],
        codes=codes[keep],
        tickers=universe,
        open_=table.column("open").to_numpy().astype(np.float32)[keep],
        close=table.column("close").to_numpy().astype(np.float32)[keep],
        feature_names=names,
        feature_version=feature_version,
    )

    def place(n: int) -> None:
        assembler.place(n, _read_feature_file(paths[n], names), str(paths[n]))

    # Parquet decoding and the NumPy scatter release the GIL: threads use every core.
    with ThreadPoolExecutor(max_workers=_READ_THREADS) as pool:
        list(pool.map(place, range(len(universe))))
    if fingerprints is not None:
        assembler.check_fingerprints(fingerprints, str(features_dir))
    return assembler.market(str(features_dir))
