"""ploutos_core.data.sample: a deterministic, realistic synthetic market and the bundled CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ploutos_core.data import OHLCV_COLUMNS, read_ohlcv
from ploutos_core.data.sample import (
    SAMPLE_END,
    SAMPLE_PATH,
    SAMPLE_START,
    SAMPLE_TICKERS,
    csv_bytes,
    main,
    make_market,
    make_sample_market,
    write_sample_csv,
)


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return make_sample_market()


def spans(frame: pd.DataFrame) -> pd.DataFrame:
    """Per ticker: first and last date, rows, and business days between first and last."""
    out = frame.groupby("ticker")["date"].agg(first="min", last="max", rows="size")
    first, last = (out[k].to_numpy().astype("datetime64[D]") for k in ("first", "last"))
    out["span"] = np.busday_count(first, last + np.timedelta64(1, "D"))
    return out


def test_same_arguments_give_the_same_frame() -> None:
    pd.testing.assert_frame_equal(make_market(7, 300, seed=4), make_market(7, 300, seed=4))
    assert not make_market(7, 300, seed=4).equals(make_market(7, 300, seed=5))


@settings(max_examples=40, deadline=None)
@given(
    n_tickers=st.integers(1, 30),
    n_days=st.integers(1, 300),
    seed=st.integers(0, 2**32 - 1),
    flags=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_frame_has_the_load_ohlcv_format_and_consistent_bars(
    n_tickers: int, n_days: int, seed: int, flags: tuple[bool, bool, bool]
) -> None:
    late, delist, missing = flags
    frame = make_market(
        n_tickers, n_days, seed=seed, late_listing=late, delisting=delist, missing_days=missing
    )
    assert tuple(frame.columns) == OHLCV_COLUMNS
    assert isinstance(frame.index, pd.RangeIndex)
    assert frame["date"].dtype == np.dtype("datetime64[ns]")
    assert frame["ticker"].dtype == pd.StringDtype()
    assert frame["ticker"].nunique() == n_tickers
    keys = list(zip(frame["ticker"], frame["date"], strict=True))
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert (frame["date"].dt.day_of_week < 5).all()
    o, h, lo, c, v = (frame[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert (lo > 0).all() and (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
    assert np.array_equal(np.round(c, 4), c)
    assert (v >= 100).all() and np.array_equal(np.rint(v), v)


def test_bundled_market_lists_late_delists_and_misses_days(sample: pd.DataFrame) -> None:
    s = spans(sample)
    start, end = pd.Timestamp(SAMPLE_START), pd.Timestamp(SAMPLE_END)
    assert len(s) == SAMPLE_TICKERS
    late = s[s["first"] > start]
    assert len(late) >= 1 and (late["first"] >= start + pd.DateOffset(years=2)).all()
    gone = s[s["last"] < end]
    assert len(gone) >= 1 and (gone["last"] <= end - pd.DateOffset(months=11)).all()
    holes = s["span"] - s["rows"]
    assert 1 <= (holes > 0).sum() < SAMPLE_TICKERS and holes.max() <= 3
    assert sample["date"].min() == start and sample["date"].max() == end


def test_switches_turn_listing_events_and_gaps_off() -> None:
    s = spans(make_market(20, 400, seed=9, late_listing=False, delisting=False, missing_days=False))
    assert s["first"].nunique() == 1 and s["last"].nunique() == 1
    assert (s["rows"] == 400).all()


def test_events_scale_with_the_number_of_tickers() -> None:
    s = spans(make_market(100, 400, seed=1))
    assert (s["first"] > s["first"].min()).sum() == 5
    assert (s["last"] < s["last"].max()).sum() == 5
    assert ((s["span"] - s["rows"]) > 0).sum() >= 15


def test_returns_are_correlated_by_market_and_sector() -> None:
    close = make_market(20, 1500, seed=3, late_listing=False, delisting=False).pivot(
        index="date", columns="ticker", values="close"
    )
    corr = np.log(close).diff().corr().to_numpy()
    upper = np.triu_indices(len(corr), 1)
    sector = np.array([name[:3] for name in close.columns])
    same = (sector[:, None] == sector[None, :])[upper]
    assert corr[upper].mean() > 0.15
    assert corr[upper][same].mean() > corr[upper][~same].mean() + 0.05


def test_volatility_clusters_and_volume_follows_big_moves() -> None:
    frame = make_market(20, 1500, seed=3, late_listing=False, delisting=False, missing_days=False)
    close = frame.pivot(index="date", columns="ticker", values="close")
    returns = np.log(close).diff().iloc[1:]
    market = returns.mean(axis=1).abs()
    assert market.autocorr(5) > 0.06  # regimes: calm and turbulent stretches
    volume = np.log(frame.pivot(index="date", columns="ticker", values="volume").iloc[1:])
    surprise = (returns.abs() / returns.std()).to_numpy().ravel()
    assert np.corrcoef((volume - volume.mean()).to_numpy().ravel(), surprise)[0, 1] > 0.3


def test_bundled_prices_span_a_wide_range(sample: pd.DataFrame) -> None:
    first = sample.groupby("ticker")["close"].first()
    assert first.min() < 10 and first.max() > 300


def test_bundled_csv_loads_cleanly_with_the_default_warmup(sample: pd.DataFrame) -> None:
    result = read_ohlcv(SAMPLE_PATH)
    assert result.dropped == {} and result.repairs == []
    pd.testing.assert_frame_equal(result.frame, sample, check_exact=False, rtol=1e-12)


def test_committed_csv_is_byte_identical_to_a_fresh_generation(tmp_path: Path) -> None:
    fresh = write_sample_csv(tmp_path / "sample.csv")
    assert fresh.read_bytes() == SAMPLE_PATH.read_bytes(), (
        "data/sample_ohlcv.csv is stale: python -m ploutos_core.data.sample "
        "--output data/sample_ohlcv.csv"
    )


def test_csv_format_is_fixed(sample: pd.DataFrame) -> None:
    lines = csv_bytes(sample.head(2)).decode().splitlines()
    assert lines[0] == "date,ticker,open,high,low,close,volume"
    date, ticker, *prices, volume = lines[1].split(",")
    assert date == SAMPLE_START and ticker == sample["ticker"].iloc[0]
    assert all(len(p.split(".")[1]) == 4 for p in prices) and volume.isdigit()


def test_command_line_writes_and_checks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "out" / "sample.csv"
    assert main(["--output", str(target)]) == 0
    assert main(["--check", "--output", str(target)]) == 0
    target.write_bytes(target.read_bytes()[:-10])
    assert main(["--check", "--output", str(target)]) == 1
    assert "regenerate" in capsys.readouterr().err


def test_bad_sizes_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_tickers"):
        make_market(0, 10)
