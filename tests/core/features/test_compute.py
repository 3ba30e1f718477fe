"""Tests of the feature registry and its computation: shape, no look-ahead, scale invariance,
determinism, honest warm-ups, and values checked against independent NumPy computations."""

from __future__ import annotations

import multiprocessing
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pandas_ta as ta
import pytest

from ploutos_core.data.sample import make_market
from ploutos_core.errors import DataError
from ploutos_core.features import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    GROUPS,
    REGISTRY,
    WARMUP_BARS,
    compute_features,
    compute_features_many,
    custom,
    docs,
    feature_dates,
)
from ploutos_core.features.compute import (
    PRICE_COLUMNS,
    _call,
    _transform,
    as_columns,
    feature_matrix,
)
from ploutos_core.features.registry import TRANSFORMS
from ploutos_core.paths import PROJECT_ROOT
from ploutos_core.storage import parquet_bytes

DOCS_PATH = PROJECT_ROOT / "docs" / "FEATURES.md"
N_DAYS = 700


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return make_market(6, N_DAYS, seed=3)


@pytest.fixture(scope="module")
def one(market: pd.DataFrame) -> pd.DataFrame:
    """The longest ticker of the market, as compute_features receives it."""
    longest = market["ticker"].value_counts().idxmax()
    return market[market["ticker"] == longest].reset_index(drop=True)


@pytest.fixture(scope="module")
def features(one: pd.DataFrame) -> pd.DataFrame:
    return compute_features(one)


def _values(frame: pd.DataFrame) -> np.ndarray:
    return np.vstack([frame[c].to_numpy(dtype=np.float64) for c in PRICE_COLUMNS])


def _raw(frame: pd.DataFrame, name: str) -> np.ndarray:
    """One feature before warm-up rows are dropped (float64, NaN where undefined)."""
    return feature_matrix(_values(frame))[:, FEATURE_NAMES.index(name)]


# --- the registry ---------------------------------------------------------------------------


def test_registry_has_85_unique_features_in_the_issue_groups() -> None:
    assert len(FEATURE_NAMES) == 85
    assert len(set(FEATURE_NAMES)) == 85
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in FEATURE_NAMES)
    assert {spec.group for spec in REGISTRY} == set(GROUPS)
    assert all(spec.transform in TRANSFORMS for spec in REGISTRY)
    assert all(spec.meaning and spec.warmup >= 0 for spec in REGISTRY)


def test_issue_indicators_are_all_present() -> None:
    calls = {spec.func for spec in REGISTRY}
    # fmt: off
    required = {
        "ta.rsi", "ta.roc", "custom.momentum_atr", "ta.stoch", "custom.stochrsi", "ta.willr",
        "custom.cci", "ta.tsi", "custom.uo", "ta.ppo", "custom.macd", "custom.adx", "custom.aroon",
        "ta.sma", "ta.ema", "custom.ma_slope", "ta.bbands", "custom.atr", "custom.kc",
        "ta.donchian", "custom.realized_vol", "custom.obv_trend", "ta.mfi", "ta.cmf",
        "custom.ad_zscore", "custom.volume_ratio", "ta.zscore", "ta.log_return",
        "custom.body_ratio", "custom.gap", "ta.cdl_doji", "custom.engulfing",
    }
    # fmt: on
    assert required <= calls
    assert len({spec.params for spec in REGISTRY if spec.func == "ta.rsi"}) >= 3
    assert {"ret_1", "ret_5", "ret_20", "breakout_up_20", "dist_high_100"} <= set(FEATURE_NAMES)


def test_warmup_bars_is_the_longest_declared_warmup() -> None:
    assert max(spec.warmup for spec in REGISTRY) == WARMUP_BARS
    assert WARMUP_BARS <= 252


def test_feature_version_is_a_short_hash() -> None:
    assert re.fullmatch(r"[0-9a-f]{12}", FEATURE_VERSION)


def test_docs_are_generated_from_the_registry() -> None:
    assert DOCS_PATH.read_text() == docs.render(), (
        "docs/FEATURES.md is stale: run python -m ploutos_core.features.docs --write "
        "docs/FEATURES.md"
    )


def test_docs_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "FEATURES.md"
    stale.write_text(docs.render().replace("rsi_14", "rsi_15"))
    assert docs.main(["--check", str(stale)]) == 1
    assert docs.main(["--write", str(stale)]) == 0
    assert docs.main(["--check", str(stale)]) == 0


# --- the output contract --------------------------------------------------------------------


def test_output_contract(one: pd.DataFrame, features: pd.DataFrame) -> None:
    assert tuple(features.columns) == FEATURE_NAMES
    assert (features.dtypes == np.float32).all()
    assert features.index.name == "date"
    assert features.index.is_monotonic_increasing and features.index.is_unique
    assert len(features) == len(one) - WARMUP_BARS
    np.testing.assert_array_equal(features.index.to_numpy(), one["date"].to_numpy()[WARMUP_BARS:])
    assert np.isfinite(features.to_numpy()).all()


def test_every_feature_varies(features: pd.DataFrame) -> None:
    constant = [name for name in FEATURE_NAMES if features[name].nunique() < 2]
    assert not constant


@pytest.mark.parametrize("rows", [0, 5, WARMUP_BARS])
def test_too_short_history_gives_an_empty_frame(one: pd.DataFrame, rows: int) -> None:
    result = compute_features(one.iloc[:rows])
    assert result.empty
    assert tuple(result.columns) == FEATURE_NAMES
    assert (result.dtypes == np.float32).all()
    assert result.index.name == "date"


def test_one_bar_after_the_warmup_gives_one_finite_row(one: pd.DataFrame) -> None:
    result = compute_features(one.iloc[: WARMUP_BARS + 1])
    assert len(result) == 1
    assert np.isfinite(result.to_numpy()).all()


# --- correctness properties -----------------------------------------------------------------


@pytest.mark.parametrize("k", [WARMUP_BARS + 1, WARMUP_BARS + 2, WARMUP_BARS + 37, 450, N_DAYS - 1])
def test_no_lookahead(one: pd.DataFrame, features: pd.DataFrame, k: int) -> None:
    """Features on the first k bars equal the full computation's first rows, for every column."""
    prefix = compute_features(one.iloc[:k])
    full = features.iloc[: k - WARMUP_BARS]
    assert prefix.index.equals(full.index)
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(
            prefix[name].to_numpy(), full[name].to_numpy(), rtol=1e-6, atol=1e-6, err_msg=name
        )


def test_scale_invariance(one: pd.DataFrame, features: pd.DataFrame) -> None:
    """Prices x10 and volume x3 leave every feature unchanged (no documented exceptions)."""
    scaled = one.copy()
    scaled[["open", "high", "low", "close"]] *= 10.0
    scaled["volume"] *= 3.0
    result = compute_features(scaled)
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(
            result[name].to_numpy(),
            features[name].to_numpy(),
            rtol=1e-4,
            atol=1e-5,
            err_msg=name,
        )


def test_same_input_gives_byte_identical_parquet(one: pd.DataFrame) -> None:
    assert parquet_bytes(compute_features(one)) == parquet_bytes(compute_features(one.copy()))


def test_declared_warmups_are_honest(one: pd.DataFrame) -> None:
    """Each feature is defined after its warm-up and, started from a later bar, agrees with the
    full computation to within 1% of its spread once its warm-up has passed."""
    values = _values(one)
    full = feature_matrix(values)
    spread = np.nanstd(full, axis=0)
    for start in (1, 40, 151):
        part = feature_matrix(values[:, start:])
        for j, spec in enumerate(REGISTRY):
            assert not np.isnan(full[spec.warmup :, j]).any(), spec.name
            diff = np.abs(part[spec.warmup :, j] - full[start + spec.warmup :, j])
            assert (diff <= 0.01 * spread[j] + 1e-9).all(), (spec.name, start)


def test_shared_calls_change_nothing(one: pd.DataFrame) -> None:
    """Each feature computed on its own, without the per-ticker memo, equals the shared run."""
    values = _values(one)
    together = feature_matrix(values)
    bars = {c: pd.Series(values[i]) for i, c in enumerate(PRICE_COLUMNS)}
    for j, spec in enumerate(REGISTRY):
        alone = _transform(spec, as_columns(_call(spec, bars)), values[3])
        np.testing.assert_array_equal(alone, together[:, j], err_msg=spec.name)


def test_division_by_zero_gives_zero_not_nan(one: pd.DataFrame) -> None:
    """A flat, volume-less stretch after the warm-up: every value stays finite, and the
    volume z-score (0/0 inside pandas-ta) and our safe divisions read 0."""
    flat = one.copy()
    stretch = slice(WARMUP_BARS + 50, WARMUP_BARS + 90)
    level = flat.loc[stretch.start - 1, "close"]
    flat.loc[stretch, ["open", "high", "low", "close"]] = level
    flat.loc[stretch, "volume"] = 0.0
    result = compute_features(flat)
    assert np.isfinite(result.to_numpy()).all()
    inside = result.iloc[70:90]
    for name in ("vol_z_20", "cmf_20", "upper_wick", "body_ratio", "ret_1", "dc_pos_20"):
        assert (inside[name] == 0).all(), name
    assert parquet_bytes(result) == parquet_bytes(compute_features(flat))


# --- values against independent computations ------------------------------------------------


def _wilder(x: np.ndarray, length: int) -> np.ndarray:
    """Wilder's running mean as pandas-ta's rma: starts at the first value, alpha = 1/length."""
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        out[i] = out[i - 1] + (x[i] - out[i - 1]) / length
    return out


def test_rsi_14_by_hand(one: pd.DataFrame) -> None:
    close = one["close"].to_numpy()[:300]
    change = np.diff(close)
    gain = _wilder(np.maximum(change, 0), 14)
    loss = _wilder(np.maximum(-change, 0), 14)
    expected = 100 * gain / (gain + loss)
    np.testing.assert_allclose(_raw(one.iloc[:300], "rsi_14")[1:], expected, rtol=1e-10)


def test_bollinger_percent_b_by_hand(one: pd.DataFrame) -> None:
    close = one["close"].to_numpy()[:300]
    windows = np.lib.stride_tricks.sliding_window_view(close, 20)
    mean, std = windows.mean(axis=1), windows.std(axis=1, ddof=1)
    lower, upper = mean - 2 * std, mean + 2 * std
    expected = (close[19:] - lower) / (upper - lower)
    np.testing.assert_allclose(_raw(one.iloc[:300], "bb_pctb_20")[19:], expected, rtol=1e-9)


def test_atr_percent_by_hand(one: pd.DataFrame) -> None:
    head = one.iloc[:300]
    high, low, close = (head[c].to_numpy() for c in ("high", "low", "close"))
    prev = np.concatenate([[np.nan], close[:-1]])
    true_range = np.fmax(high - low, np.fmax(np.abs(high - prev), np.abs(low - prev)))
    # pandas-ta seeds the RMA with the mean of the first 14 true ranges
    atr = _wilder(np.concatenate([[true_range[:14].mean()], true_range[14:]]), 14)
    np.testing.assert_allclose(_raw(head, "atr_pct_14")[13:], 100 * atr / close[13:], rtol=1e-9)


def test_returns_volume_zscore_and_wicks_by_hand(one: pd.DataFrame) -> None:
    head = one.iloc[:300]
    o, h, lo, c, v = _values(head)
    np.testing.assert_allclose(_raw(head, "ret_20")[20:], np.log(c[20:] / c[:-20]), rtol=1e-12)
    windows = np.lib.stride_tricks.sliding_window_view(v, 20)
    z = (v[19:] - windows.mean(axis=1)) / windows.std(axis=1, ddof=1)
    np.testing.assert_allclose(_raw(head, "vol_z_20")[19:], z, rtol=1e-9)
    wick = (h - np.maximum(o, c)) / (h - lo)
    np.testing.assert_allclose(_raw(head, "upper_wick"), wick, rtol=1e-12)


def test_cci_by_hand(one: pd.DataFrame) -> None:
    head = one.iloc[:300]
    tp = (head["high"] + head["low"] + head["close"]).to_numpy() / 3
    windows = np.lib.stride_tricks.sliding_window_view(tp, 20)
    mad = np.abs(windows - windows.mean(axis=1, keepdims=True)).mean(axis=1)
    expected = (tp[19:] - windows.mean(axis=1)) / (0.015 * mad)
    np.testing.assert_allclose(_raw(head, "cci_20")[19:], expected, rtol=1e-9)


def test_pandas_ta_cci_is_still_broken(one: pd.DataFrame) -> None:
    """custom.cci exists because ta.cci computes tp - sma / (c * mad); when this fails,
    pandas-ta has fixed it and the registry can use ta.cci again."""
    head = one.iloc[:300]
    theirs = ta.cci(head["high"], head["low"], head["close"], length=20, talib=False).to_numpy()
    ours = _raw(head, "cci_20")
    assert not np.allclose(theirs[19:], ours[19:], rtol=1e-3)


@pytest.mark.parametrize(
    ("ours", "theirs", "columns"),
    [
        (
            lambda b: custom.aroon(b["high"], b["low"], length=25),
            lambda b: ta.aroon(b["high"], b["low"], length=25, talib=False),
            ["AROONU_25", "AROOND_25", "AROONOSC_25"],
        ),
        (
            lambda b: custom.adx(b["high"], b["low"], b["close"], length=14),
            lambda b: ta.adx(b["high"], b["low"], b["close"], length=14, talib=False),
            ["ADX_14", "DMP_14", "DMN_14"],
        ),
        (
            lambda b: custom.uo(b["high"], b["low"], b["close"]).to_frame("UO"),
            lambda b: ta.uo(b["high"], b["low"], b["close"], talib=False).to_frame("UO"),
            ["UO"],
        ),
        (
            lambda b: custom.macd(b["close"], fast=12, slow=26, signal=9),
            lambda b: ta.macd(b["close"], fast=12, slow=26, signal=9, talib=False),
            ["MACD_12_26_9", "MACDh_12_26_9", "MACDs_12_26_9"],
        ),
        (
            lambda b: custom.stochrsi(b["close"], length=14, rsi_length=14, k=3, d=3),
            lambda b: ta.stochrsi(b["close"], length=14, rsi_length=14, k=3, d=3, talib=False),
            ["STOCHRSIk_14_14_3_3", "STOCHRSId_14_14_3_3"],
        ),
        (
            lambda b: custom.kc(b["high"], b["low"], b["close"], length=20, scalar=2),
            lambda b: ta.kc(b["high"], b["low"], b["close"], length=20, scalar=2, talib=False),
            ["KCLe_20_2", "KCBe_20_2", "KCUe_20_2"],
        ),
        (
            lambda b: custom.atr(b["high"], b["low"], b["close"], length=14).to_frame("ATR"),
            lambda b: ta.atr(b["high"], b["low"], b["close"], length=14, talib=False).to_frame(
                "ATR"
            ),
            ["ATR"],
        ),
        (
            lambda b: custom.atr(b["high"], b["low"], b["close"], prenan=True).to_frame("ATR"),
            lambda b: ta.atr(b["high"], b["low"], b["close"], prenan=True, talib=False).to_frame(
                "ATR"
            ),
            ["ATR"],
        ),
        (
            lambda b: custom.adosc_volume(
                b["high"], b["low"], b["close"], b["volume"], fast=3, slow=10, length=20
            ).to_frame("ADOSC"),
            lambda b: (
                ta.adosc(b["high"], b["low"], b["close"], b["volume"], fast=3, slow=10, talib=False)
                / ta.sma(b["volume"], length=20, talib=False)
            ).to_frame("ADOSC"),
            ["ADOSC"],
        ),
    ],
    ids=["aroon", "adx", "uo", "macd", "stochrsi", "kc", "atr", "atr_prenan", "adosc"],
)
def test_fast_equivalents_equal_pandas_ta(one: pd.DataFrame, ours, theirs, columns) -> None:
    bars = {c: one[c].reset_index(drop=True) for c in PRICE_COLUMNS}
    mine, reference = ours(bars), theirs(bars)
    for column in columns:
        np.testing.assert_allclose(mine[column], reference[column], rtol=1e-12, err_msg=column)


# --- many tickers and input errors ----------------------------------------------------------


def test_many_equals_one_at_a_time(market: pd.DataFrame) -> None:
    short = market[market["ticker"] == market["ticker"].iloc[0]].iloc[:WARMUP_BARS]
    frame = pd.concat([market, short.assign(ticker="SHORT")], ignore_index=True)
    result = compute_features_many(frame, workers=2)
    assert list(result) == list(frame["ticker"].unique())
    assert result["SHORT"].empty and tuple(result["SHORT"].columns) == FEATURE_NAMES
    for ticker, rows in market.groupby("ticker", sort=False):
        expected = compute_features(rows.reset_index(drop=True))
        assert parquet_bytes(result[ticker]) == parquet_bytes(expected), ticker
    dates = feature_dates(frame)
    assert list(dates) == list(result)
    for ticker, index in dates.items():
        pd.testing.assert_index_equal(index, result[ticker].index)


def test_compute_features_rejects_several_tickers(market: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="compute_features_many"):
        compute_features(market)


def test_unsorted_dates_are_rejected(one: pd.DataFrame) -> None:
    swapped = one.copy()
    swapped.loc[[10, 11], "date"] = swapped.loc[[11, 10], "date"].to_numpy()
    with pytest.raises(DataError, match="strictly increasing at its row 11"):
        compute_features(swapped)


def test_missing_column_and_nan_price_are_rejected(one: pd.DataFrame) -> None:
    with pytest.raises(DataError, match="volume"):
        compute_features(one.drop(columns="volume"))
    broken = one.copy()
    broken.loc[42, "close"] = np.nan
    with pytest.raises(DataError, match="close is not a finite number at its row 42"):
        compute_features(broken)


def _features_in_a_daemon(ohlcv: pd.DataFrame, out: multiprocessing.Queue) -> None:
    try:
        out.put(compute_features_many(ohlcv, workers=2))
    except BaseException as exc:  # the parent reports it
        out.put(exc)


def test_a_daemonic_process_computes_the_features_itself() -> None:
    """A Celery worker's pool process is daemonic and may not start processes; there the
    features compute in the process itself, with the same result."""
    ohlcv = make_market(3, 400, seed=4)
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    daemon = context.Process(target=_features_in_a_daemon, args=(ohlcv, out), daemon=True)
    daemon.start()
    result = out.get(timeout=120)
    daemon.join(timeout=30)
    assert not isinstance(result, BaseException), repr(result)
    expected = compute_features_many(ohlcv, workers=1)
    assert result.keys() == expected.keys()
    for ticker, frame in expected.items():
        pd.testing.assert_frame_equal(result[ticker], frame)
