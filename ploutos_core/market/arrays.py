"""Dense market arrays over the union calendar of the universe, built once and shared read-only.

Conventions:

- The calendar is the sorted union of the OHLCV dates of the universe's tickers.
- ``tradable[t, n]`` is True only where ticker ``n`` has an OHLCV row *and* a feature row at
  ``dates[t]`` (False before it lists, during its feature warm-up, on its missing days and after
  it stops trading).
- ``features[t, n]`` is zero wherever ``tradable[t, n]`` is False.
- ``open`` and ``close`` are forward-filled over days without a bar (including after the ticker's
  last bar) and zero before its first bar, so they are NaN-free.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ploutos_core.errors import DataError
from ploutos_core.market.dates import as_datetime64, iso_day


@dataclass(frozen=True)
class MarketData:
    """Read-only market arrays of a universe over its calendar (see the module docstring).

    The arrays are made read-only on construction so that every sub-environment can share them
    without copies.

    Parameters
    ----------
    dates
        ``datetime64[ns]`` calendar, ``[T]``, strictly increasing.
    tickers
        Ticker symbols, ``[N]``, in column order.
    feature_names
        Feature names, ``[F]``, in the order of the last axis of ``features``.
    features
        ``float32 [T, N, F]``, zero where not tradable.
    open, close
        ``float32 [T, N]``, forward-filled, zero before listing.
    tradable
        ``bool [T, N]``.
    feature_version
        ``ploutos_core.features.FEATURE_VERSION`` of the features (None when they do not come
        from the registry).
    """

    dates: np.ndarray
    tickers: tuple[str, ...]
    feature_names: tuple[str, ...]
    features: np.ndarray
    open: np.ndarray
    close: np.ndarray
    tradable: np.ndarray
    feature_version: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tickers", tuple(self.tickers))
        object.__setattr__(self, "feature_names", tuple(self.feature_names))
        T, N, F = len(self.dates), len(self.tickers), len(self.feature_names)
        expected = {
            "dates": ((T,), np.dtype("datetime64[ns]")),
            "features": ((T, N, F), np.dtype(np.float32)),
            "open": ((T, N), np.dtype(np.float32)),
            "close": ((T, N), np.dtype(np.float32)),
            "tradable": ((T, N), np.dtype(bool)),
        }
        for name, (shape, dtype) in expected.items():
            array = getattr(self, name)
            if array.shape != shape or array.dtype != dtype:
                raise ValueError(
                    f"MarketData.{name} must be {dtype} of shape {shape}, "
                    f"got {array.dtype} of shape {array.shape}"
                )
            array.setflags(write=False)
        if T > 1 and not (np.diff(self.dates.view(np.int64)) > 0).all():
            raise ValueError("MarketData.dates must be strictly increasing")

    @property
    def T(self) -> int:
        """Number of bars."""
        return len(self.dates)

    @property
    def N(self) -> int:
        """Number of tickers."""
        return len(self.tickers)

    @property
    def F(self) -> int:
        """Number of features per ticker."""
        return len(self.feature_names)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays."""
        arrays = (self.dates, self.features, self.open, self.close, self.tradable)
        return sum(a.nbytes for a in arrays)

    def period(
        self,
        start: str | np.datetime64 | pd.Timestamp | None = None,
        end: str | np.datetime64 | pd.Timestamp | None = None,
    ) -> MarketData:
        """The bars with ``start <= date <= end`` (None: unbounded), as zero-copy views."""
        lo = 0 if start is None else int(np.searchsorted(self.dates, as_datetime64(start)))
        hi = (
            self.T
            if end is None
            else int(np.searchsorted(self.dates, as_datetime64(end), side="right"))
        )
        if hi <= lo:
            covered = (
                f"{iso_day(self.dates[0])} to {iso_day(self.dates[-1])}" if self.T else "no bars"
            )
            raise DataError(f"no bars between {start} and {end}: the data covers {covered}")
        return MarketData(
            dates=self.dates[lo:hi],
            tickers=self.tickers,
            feature_names=self.feature_names,
            features=self.features[lo:hi],
            open=self.open[lo:hi],
            close=self.close[lo:hi],
            tradable=self.tradable[lo:hi],
            feature_version=self.feature_version,
        )
