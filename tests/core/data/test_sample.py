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
    make_control_market,
    make_market,
    make_planted_market,
    make_sample_market,
    planted_regimes,
    ticker_names,
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


def bar_returns_by_regime(frame: pd.DataFrame, seed: int) -> tuple[float, float, float]:
    """Mean daily log return on the bars of the true up and of the down regimes, and the daily
    volatility (all tickers together)."""
    close = frame.pivot(index="date", columns="ticker", values="close")
    n_tickers, n_days = close.shape[1], close.shape[0]
    regimes = pd.DataFrame(
        planted_regimes(n_tickers, n_days, seed=seed), columns=ticker_names(n_tickers)
    )[close.columns].to_numpy()
    returns = np.log(close).diff().to_numpy()
    up, down = returns[1:][regimes[1:] == 1], returns[1:][regimes[1:] == -1]
    return float(up.mean()), float(down.mean()), float(np.nanstd(returns))


PLANTED = {"late_listing": False, "delisting": False, "missing_days": False}


def test_planted_and_control_markets_are_deterministic_by_seed() -> None:
    for make in (make_planted_market, make_control_market):
        pd.testing.assert_frame_equal(make(6, 300, seed=4), make(6, 300, seed=4))
        assert not make(6, 300, seed=4).equals(make(6, 300, seed=5))
    assert np.array_equal(planted_regimes(6, 300, seed=4), planted_regimes(6, 300, seed=4))


def test_regimes_alternate_in_runs_of_the_mean_length() -> None:
    regimes = planted_regimes(30, 4000, seed=2, mean_days=40)
    assert set(np.unique(regimes)) == {-1, 1}
    switches = (np.diff(regimes, axis=0) != 0).sum()
    assert 30 * 4000 / switches == pytest.approx(40, rel=0.1)
    assert abs(regimes.mean()) < 0.1  # symmetric: as much up as down


def test_planted_drift_is_present_and_absent_in_the_control() -> None:
    strength = 0.2
    up, down, vol = bar_returns_by_regime(
        make_planted_market(20, 2000, seed=3, strength=strength, **PLANTED), seed=3
    )
    # The gap is 2 * strength * (mean sigma), a little under 2 * strength * the pooled
    # volatility (calm and turbulent days mixed): about 0.85 of it.
    assert up - down == pytest.approx(2 * strength * vol, rel=0.25)
    up, down, _ = bar_returns_by_regime(make_control_market(20, 2000, seed=3, **PLANTED), 3)
    assert abs(up - down) < 0.25 * 2 * strength * vol


def test_control_is_make_market_and_planting_keeps_the_volatility() -> None:
    control = make_control_market(8, 800, seed=6)
    pd.testing.assert_frame_equal(control, make_market(8, 800, seed=6))
    planted = make_planted_market(8, 800, seed=6)
    assert planted[["date", "ticker"]].equals(control[["date", "ticker"]])
    vols = [
        np.log(f.pivot(index="date", columns="ticker", values="close")).diff().std().mean()
        for f in (planted, control)
    ]
    assert vols[0] == pytest.approx(vols[1], rel=0.05)


def test_planted_market_is_valid_ohlcv(tmp_path: Path) -> None:
    frame = make_planted_market(7, 400, seed=8, strength=0.5)
    path = tmp_path / "planted.csv"
    path.write_bytes(csv_bytes(frame))
    result = read_ohlcv(path)
    assert result.repairs == [] and result.dropped == {}
    pd.testing.assert_frame_equal(result.frame, frame, check_exact=False, rtol=1e-12)
    o, h, lo, c = (frame[k].to_numpy() for k in ("open", "high", "low", "close"))
    assert (lo > 0).all() and (lo <= np.minimum(o, c)).all() and (np.maximum(o, c) <= h).all()
