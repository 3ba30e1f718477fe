"""The properties the asset checks verify: each holds on a good artifact, names what breaks it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ploutos_core.data import invariants
from ploutos_core.data.sample import make_market
from ploutos_core.features.invariants import feature_frame_violations

NAMES = ("alpha", "beta", "gamma")


@pytest.fixture
def ohlcv() -> pd.DataFrame:
    frame = make_market(3, 30, seed=2).sort_values(["ticker", "date"], kind="stable")
    return frame[list(invariants.OHLCV_DTYPES)].astype({"ticker": "string"}).reset_index(drop=True)


@pytest.fixture
def features() -> pd.DataFrame:
    index = pd.date_range("2020-01-01", periods=20, freq="B", name="date")
    values = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    return pd.DataFrame(values, index=index, columns=list(NAMES))


def test_good_artifacts_have_no_violations(ohlcv: pd.DataFrame, features: pd.DataFrame) -> None:
    assert invariants.ohlcv_schema_violations(ohlcv) == []
    assert invariants.ohlcv_order_violations(ohlcv) == []
    assert invariants.ohlcv_price_violations(ohlcv) == []
    assert invariants.ticker_violations(list(ohlcv["ticker"].unique())) == []
    assert feature_frame_violations(features, NAMES) == []


def test_ohlcv_violations_name_the_problem_and_the_rows(ohlcv: pd.DataFrame) -> None:
    assert "expected" in invariants.ohlcv_schema_violations(ohlcv.drop(columns="volume"))[0]
    wrong_dtype = ohlcv.astype({"volume": "float32"})
    assert invariants.ohlcv_schema_violations(wrong_dtype) == [
        "column volume has dtype float32, expected float64"
    ]
    shuffled = ohlcv.iloc[::-1].reset_index(drop=True)
    assert invariants.ohlcv_order_violations(shuffled) == [
        "rows are not sorted by ticker, then date"
    ]
    bad = ohlcv.copy()
    bad.loc[4, "high"] = bad.loc[4, "low"] / 2
    found = invariants.ohlcv_price_violations(bad)
    ticker, day = bad.loc[4, "ticker"], bad.loc[4, "date"].date()
    assert any(p.startswith("high below low") and f"{ticker} {day}" in p for p in found)
    assert invariants.ticker_violations(["AAA", "../x"]) == ["unsafe ticker symbols: ['../x']"]


def test_feature_frame_violations(features: pd.DataFrame) -> None:
    reordered = features[["beta", "alpha", "gamma"]]
    assert "columns differ" in feature_frame_violations(reordered, NAMES)[0]
    wide = features.astype({"beta": np.float64})
    assert feature_frame_violations(wide, NAMES) == ["columns not float32: ['beta']"]
    holes = features.copy()
    holes.iloc[3, 2] = np.inf
    assert feature_frame_violations(holes, NAMES) == [
        "NaN or inf in columns: ['gamma']"
    ]
    repeated = features.set_axis(features.index[[0, *range(19)]])
    assert feature_frame_violations(repeated, NAMES) == [
        "dates are not strictly increasing"
    ]
