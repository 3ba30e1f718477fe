"""The date split: periods partition the dates around the embargo; empty periods are refused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ploutos_core.config import SplitConfig
from ploutos_core.errors import ConfigError
from ploutos_core.market.split import split_periods


@given(
    n=st.integers(20, 3000),
    fraction=st.floats(0.01, 0.9),
    embargo=st.integers(0, 15),
)
def test_split_by_fraction_partitions_the_dates(n: int, fraction: float, embargo: int) -> None:
    dates = np.datetime64("2010-01-01") + np.arange(n)
    split_config = SplitConfig(test_fraction=fraction, embargo_days=embargo)
    try:
        split = split_periods(dates, split_config)
    except ConfigError:
        assert max(1, round(n * fraction)) + embargo + 2 > n
        return
    index = {str(d): i for i, d in enumerate(dates)}
    n_train = index[split.train_end] + 1
    n_test = n - index[split.test_start]
    assert split.train_start == str(dates[0]) and split.test_end == str(dates[-1])
    assert index[split.test_start] - index[split.train_end] == embargo + 1
    assert n_test == max(1, round(n * fraction))
    assert n_train + embargo + n_test == n


def test_split_by_train_end_and_embargo() -> None:
    dates = pd.bdate_range("2020-01-01", periods=100).to_numpy()
    split = split_periods(dates, SplitConfig(train_end="2020-03-01", embargo_days=3))
    assert split.train_end == "2020-02-28"  # 2020-03-01 is a Sunday: last bar on or before it
    assert split.test_start == str(pd.Timestamp("2020-02-28") + pd.offsets.BDay(4))[:10]
    assert split.test_end == str(dates[-1])[:10]


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (SplitConfig(train_end="2019-01-01"), "leave 0 training dates"),
        (SplitConfig(train_end="2020-05-15", embargo_days=10), "leave no test dates"),
        (SplitConfig(test_fraction=0.9, embargo_days=50), "training dates"),
    ],
)
def test_split_refuses_empty_periods(split: SplitConfig, message: str) -> None:
    dates = pd.bdate_range("2020-01-01", periods=100).to_numpy()
    with pytest.raises(ConfigError, match=message):
        split_periods(dates, split)
