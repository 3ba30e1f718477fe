"""Market arrays: alignment on the union calendar, forward fill, tradable mask, loading, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ploutos_core.data.sample import make_market
from ploutos_core.errors import DataError
from ploutos_core.market import MarketData, build_market, load_market
from ploutos_core.storage import (
    FEATURE_VERSION_ATTR,
    SOURCE_FINGERPRINT_ATTR,
    write_parquet_atomic,
)
from tests.support.markets import random_feature_frames

NAMES = ("alpha", "beta", "gamma")
WARMUP = 5


def feature_frames(ohlcv: pd.DataFrame, *, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Random float32 features on each ticker's OHLCV dates after a short warm-up."""
    return random_feature_frames(ohlcv, NAMES, seed=seed, warmup=WARMUP)


@pytest.fixture(scope="module")
def ohlcv() -> pd.DataFrame:
    return make_market(6, 160, seed=2)


@pytest.fixture(scope="module")
def frames(ohlcv: pd.DataFrame) -> dict[str, pd.DataFrame]:
    return feature_frames(ohlcv)


@pytest.fixture(scope="module")
def market(ohlcv: pd.DataFrame, frames: dict[str, pd.DataFrame]) -> MarketData:
    return build_market(frames, ohlcv, NAMES)


def write_partitions(
    tmp_path: Path, ohlcv: pd.DataFrame, frames: dict[str, pd.DataFrame]
) -> tuple[Path, Path]:
    features_dir = tmp_path / "features"
    for ticker, frame in frames.items():
        write_parquet_atomic(features_dir / f"{ticker}.parquet", frame)
    ohlcv_path = write_parquet_atomic(tmp_path / "raw_ohlcv.parquet", ohlcv)
    return features_dir, ohlcv_path


def assert_same_market(a: MarketData, b: MarketData) -> None:
    assert a.tickers == b.tickers
    assert a.feature_names == b.feature_names
    for name in ("dates", "features", "open", "close", "tradable"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_arrays_follow_the_union_calendar(ohlcv, frames, market: MarketData) -> None:
    calendar = np.unique(ohlcv["date"].to_numpy())
    np.testing.assert_array_equal(market.dates, calendar)
    assert market.tickers == tuple(sorted(frames))
    assert (len(calendar), 6, len(NAMES)) == (market.T, market.N, market.F)
    for name in ("open", "close"):
        wide = ohlcv.pivot(index="date", columns="ticker", values=name).reindex(calendar)
        expected = wide[list(market.tickers)].ffill().fillna(0.0).to_numpy(np.float32)
        np.testing.assert_array_equal(getattr(market, name), expected, err_msg=name)


def test_tradable_and_features_come_from_the_feature_rows(frames, market: MarketData) -> None:
    dates = pd.DatetimeIndex(market.dates)
    for n, ticker in enumerate(market.tickers):
        frame = frames[ticker]
        rows = dates.get_indexer(frame.index)
        expected = np.zeros(market.T, dtype=bool)
        expected[rows] = True
        np.testing.assert_array_equal(market.tradable[:, n], expected, err_msg=ticker)
        np.testing.assert_array_equal(market.features[rows, n], frame.to_numpy())
        assert not market.features[~expected, n].any()


def test_sample_market_gaps_show_in_the_mask(ohlcv, market: MarketData) -> None:
    late = ohlcv.groupby("ticker")["date"].min().idxmax()
    last_dates = ohlcv.groupby("ticker")["date"].max()
    gone = last_dates.idxmin()
    n_gone = market.tickers.index(gone)
    stop = int(np.searchsorted(market.dates, last_dates[gone].to_datetime64()))
    assert stop < market.T - 1
    assert not market.tradable[stop + 1 :, n_gone].any()
    assert (market.close[stop + 1 :, n_gone] == market.close[stop, n_gone]).all()
    n_late = market.tickers.index(late)
    first = int(np.argmax(market.open[:, n_late] > 0))
    assert (market.open[:first, n_late] == 0).all()
    assert not market.tradable[: first + WARMUP, n_late].any()


def test_load_market_equals_build_market(tmp_path, ohlcv, frames, market: MarketData) -> None:
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, frames)
    assert_same_market(load_market(features_dir, ohlcv_path, feature_names=NAMES), market)


def test_load_market_casts_float64_feature_files(tmp_path, ohlcv, frames, market) -> None:
    wide = {t: f.astype(np.float64) for t, f in frames.items()}
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, wide)
    assert_same_market(load_market(features_dir, ohlcv_path, feature_names=NAMES), market)


def test_load_market_keeps_the_given_ticker_order(tmp_path, ohlcv, frames) -> None:
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, frames)
    chosen = sorted(frames)[::-2]
    loaded = load_market(features_dir, ohlcv_path, chosen, feature_names=NAMES)
    subset = ohlcv[ohlcv["ticker"].isin(chosen)].reset_index(drop=True)
    expected = build_market({t: frames[t] for t in chosen}, subset, NAMES)
    order = [expected.tickers.index(t) for t in chosen]
    assert loaded.tickers == tuple(chosen)
    np.testing.assert_array_equal(loaded.dates, expected.dates)
    np.testing.assert_array_equal(loaded.close, expected.close[:, order])
    np.testing.assert_array_equal(loaded.features, expected.features[:, order])


def test_missing_feature_files_are_named(tmp_path, ohlcv, frames) -> None:
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, frames)
    absent = sorted(frames)[1:3]
    for ticker in absent:
        (features_dir / f"{ticker}.parquet").unlink()
    with pytest.raises(DataError, match=f"{absent[0]}, {absent[1]}"):
        load_market(features_dir, ohlcv_path, feature_names=NAMES)


def test_unknown_tickers_are_named(tmp_path, ohlcv, frames) -> None:
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, frames)
    with pytest.raises(DataError, match="NOPE"):
        load_market(features_dir, ohlcv_path, ["NOPE"], feature_names=NAMES)
    with pytest.raises(DataError, match="no features for tickers"):
        build_market({t: f for t, f in list(frames.items())[1:]}, ohlcv, NAMES)
    extra = dict(frames, ZZZ=next(iter(frames.values())))
    with pytest.raises(DataError, match="ZZZ"):
        build_market(extra, ohlcv, NAMES)


def test_missing_feature_column_is_named(tmp_path, ohlcv, frames) -> None:
    ticker = sorted(frames)[0]
    broken = dict(frames, **{ticker: frames[ticker].drop(columns="beta")})
    with pytest.raises(DataError, match=f"{ticker} lack columns beta"):
        build_market(broken, ohlcv, NAMES)
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, broken)
    with pytest.raises(DataError, match=rf"{ticker}\.parquet lacks columns beta"):
        load_market(features_dir, ohlcv_path, feature_names=NAMES)


def test_non_finite_features_are_rejected(ohlcv, frames) -> None:
    ticker = sorted(frames)[2]
    frame = frames[ticker].copy()
    frame.iloc[3, 2] = np.nan
    with pytest.raises(DataError, match=f"{ticker}: NaN or inf in feature columns gamma"):
        build_market(dict(frames, **{ticker: frame}), ohlcv, NAMES)


def test_stale_features_are_rejected(ohlcv, frames) -> None:
    ticker = sorted(frames)[0]
    frame = frames[ticker]
    shifted = frame.set_axis(frame.index + pd.Timedelta(days=400))
    with pytest.raises(DataError, match="stale"):
        build_market(dict(frames, **{ticker: shifted}), ohlcv, NAMES)


def test_duplicate_ohlcv_rows_are_rejected(ohlcv, frames) -> None:
    doubled = pd.concat([ohlcv, ohlcv.iloc[[10]]], ignore_index=True)
    ticker, date = ohlcv.iloc[10][["ticker", "date"]]
    with pytest.raises(DataError, match=f"{ticker} {date.date()}"):
        build_market(frames, doubled, NAMES)


def test_ticker_without_features_is_never_tradable(ohlcv, frames) -> None:
    ticker = sorted(frames)[1]
    empty = dict(frames, **{ticker: frames[ticker].iloc[:0]})
    market = build_market(empty, ohlcv, NAMES)
    n = market.tickers.index(ticker)
    assert not market.tradable[:, n].any()
    assert not market.features[:, n].any()
    assert (market.close[:, n] > 0).any()


def test_period_is_an_inclusive_zero_copy_view(market: MarketData) -> None:
    start, end = market.dates[10], market.dates[50]
    view = market.period(str(start.astype("datetime64[D]")), end)
    np.testing.assert_array_equal(view.dates, market.dates[10:51])
    assert np.shares_memory(view.features, market.features)
    np.testing.assert_array_equal(view.tradable, market.tradable[10:51])
    assert market.period(None, end).T == 51
    assert market.period(start).T == market.T - 10
    with pytest.raises(DataError, match="no bars between"):
        market.period("1990-01-01", "1990-12-31")


def test_arrays_are_read_only(market: MarketData) -> None:
    for name in ("features", "open", "close", "tradable", "dates"):
        with pytest.raises(ValueError, match="read-only"):
            getattr(market, name)[0] = 0
    assert market.nbytes == sum(
        getattr(market, n).nbytes for n in ("dates", "features", "open", "close", "tradable")
    )


def test_shapes_and_dtypes_are_validated(market: MarketData) -> None:
    with pytest.raises(ValueError, match="features must be float32"):
        MarketData(
            dates=market.dates,
            tickers=market.tickers,
            feature_names=market.feature_names,
            features=market.features.astype(np.float64),
            open=market.open,
            close=market.close,
            tradable=market.tradable,
        )


def test_features_that_end_before_the_raw_bars_are_stale(ohlcv, frames) -> None:
    """New bars in the raw data, features not refreshed: refused, not read as delistings."""
    behind = dict(frames)
    tickers = sorted(frames)[:3]
    for ticker in tickers:
        behind[ticker] = frames[ticker].iloc[:-5]
    stale = rf"{tickers[0]} has 5 OHLCV bar\(s\) without a feature row"
    with pytest.raises(DataError, match=stale):
        build_market(behind, ohlcv, NAMES)


def versioned(frames: dict[str, pd.DataFrame], versions: dict[str, str]) -> dict:
    out = {}
    for ticker, frame in frames.items():
        copy = frame.copy()
        copy.attrs[FEATURE_VERSION_ATTR] = versions.get(ticker, "v1")
        copy.attrs[SOURCE_FINGERPRINT_ATTR] = f"fp-{ticker}"
        out[ticker] = copy
    return out


def test_the_feature_version_comes_from_the_files(tmp_path, ohlcv, frames) -> None:
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, versioned(frames, {}))
    loaded = load_market(features_dir, ohlcv_path, feature_names=NAMES)
    assert loaded.feature_version == "v1"
    assert loaded.period(loaded.dates[10]).feature_version == "v1"
    assert build_market(frames, ohlcv, NAMES, feature_version="mine").feature_version == "mine"


def test_files_of_several_feature_versions_are_refused(tmp_path, ohlcv, frames) -> None:
    odd = sorted(frames)[1]
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, versioned(frames, {odd: "v0"}))
    with pytest.raises(DataError, match=rf"different feature definitions \(version v0: {odd};"):
        load_market(features_dir, ohlcv_path, feature_names=NAMES)


def test_features_of_changed_raw_rows_are_stale(tmp_path, ohlcv, frames) -> None:
    features_dir, ohlcv_path = write_partitions(tmp_path, ohlcv, versioned(frames, {}))
    current = {t: f"fp-{t}" for t in frames}
    load_market(features_dir, ohlcv_path, feature_names=NAMES, fingerprints=current)
    changed = sorted(frames)[2]
    current[changed] = "new"
    with pytest.raises(DataError, match=rf"features of {changed} were computed from other raw"):
        load_market(features_dir, ohlcv_path, feature_names=NAMES, fingerprints=current)
