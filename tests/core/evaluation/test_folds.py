"""Folds: train and test never overlap, no training bar lies within the purge before or the
embargo after a test window, walk-forward never trains on the future, and too little data is a
ConfigError that names the numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ploutos_core.config import FoldConfig
from ploutos_core.errors import ConfigError, DataError
from ploutos_core.evaluation.folds import (
    Fold,
    combinatorial_purged_folds,
    cpcv_paths,
    make_folds,
    walk_forward_folds,
)


def trading_dates(n: int) -> np.ndarray:
    return pd.bdate_range("2020-01-01", periods=n).to_numpy().astype("datetime64[ns]")


def assert_purged_and_embargoed(fold: Fold, purge: int, embargo: int) -> None:
    train, test = fold.train_indices(), fold.test_indices()
    assert len(train) > 0 and len(test) > 0
    assert not np.intersect1d(train, test).size
    for start, stop in fold.test_bars:
        assert not np.any((train >= start - purge) & (train < stop + embargo))


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(20, 400),
    n_folds=st.integers(1, 6),
    min_train=st.integers(2, 200),
    purge=st.integers(0, 15),
    embargo=st.integers(0, 15),
    test_days=st.none() | st.integers(1, 60),
    window=st.sampled_from(["expanding", "rolling"]),
)
def test_walk_forward_folds_never_train_on_or_near_their_test_window(
    n: int,
    n_folds: int,
    min_train: int,
    purge: int,
    embargo: int,
    test_days: int | None,
    window: str,
) -> None:
    config = FoldConfig(
        n_folds=n_folds,
        min_train_days=min_train,
        purge_days=purge,
        embargo_days=embargo,
        test_days=test_days,
        window=window,
    )
    try:
        folds = walk_forward_folds(trading_dates(n), config)
    except ConfigError:
        assume(False)
    assert [f.index for f in folds] == list(range(n_folds))
    assert folds[-1].test_bars[0][1] == n
    for fold, after in zip(folds, folds[1:], strict=False):
        assert fold.test_bars[0][1] == after.test_bars[0][0]
    for fold in folds:
        assert_purged_and_embargoed(fold, purge, embargo)
        train = fold.train_indices()
        assert train.max() < fold.test_bars[0][0] - purge
        assert len(train) >= min_train
        if window == "rolling":
            assert len(train) == min_train


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(10, 400),
    groups=st.integers(2, 8),
    data=st.data(),
    purge=st.integers(0, 10),
    embargo=st.integers(0, 10),
)
def test_cpcv_folds_are_every_choice_of_test_groups_purged_and_embargoed(
    n: int, groups: int, data: st.DataObject, purge: int, embargo: int
) -> None:
    k = data.draw(st.integers(1, groups - 1))
    config = FoldConfig(
        scheme="cpcv", n_groups=groups, n_test_groups=k, purge_days=purge, embargo_days=embargo
    )
    try:
        folds = make_folds(trading_dates(n), config)
    except ConfigError:
        assume(False)
    assert len(folds) == math.comb(groups, k)
    times_tested = np.zeros(n, dtype=int)
    for fold in folds:
        assert_purged_and_embargoed(fold, purge, embargo)
        times_tested[fold.test_indices()] += 1
    # every bar is tested in C(N-1, k-1) splits (Lopez de Prado 2018, section 12.4)
    assert np.all(times_tested == math.comb(groups - 1, k - 1))


def test_a_known_walk_forward_layout() -> None:
    dates = trading_dates(20)
    config = FoldConfig(n_folds=2, min_train_days=8, purge_days=2, test_days=4)
    folds = walk_forward_folds(dates, config)
    assert [(f.train_bars, f.test_bars) for f in folds] == [
        (((0, 10),), ((12, 16),)),
        (((0, 14),), ((16, 20),)),
    ]
    rolling = walk_forward_folds(dates, config.model_copy(update={"window": "rolling"}))
    assert [f.train_bars for f in rolling] == [((2, 10),), ((6, 14),)]
    first = folds[0]
    assert (first.train_start, first.train_end) == ("2020-01-01", "2020-01-14")
    assert (first.test_start, first.test_end) == ("2020-01-17", "2020-01-22")
    assert first.to_dict()["test_bars"] == [[12, 16]]


def test_the_derived_test_window_splits_what_follows_the_first_training_window() -> None:
    folds = walk_forward_folds(
        trading_dates(103), FoldConfig(n_folds=3, min_train_days=50, purge_days=5)
    )
    assert [f.test_bars for f in folds] == [((55, 71),), ((71, 87),), ((87, 103),)]
    assert folds[0].train_bars == ((0, 50),)


def test_a_known_cpcv_split_purges_before_and_embargoes_after() -> None:
    config = FoldConfig(scheme="cpcv", n_groups=4, n_test_groups=1, purge_days=1, embargo_days=2)
    folds = combinatorial_purged_folds(trading_dates(20), config)
    assert [(f.test_bars, f.train_bars) for f in folds] == [
        (((0, 5),), ((7, 20),)),
        (((5, 10),), ((0, 4), (12, 20))),
        (((10, 15),), ((0, 9), (17, 20))),
        (((15, 20),), ((0, 14),)),
    ]


def test_too_little_data_names_the_numbers() -> None:
    config = FoldConfig(n_folds=5, min_train_days=504, purge_days=10, test_days=63)
    with pytest.raises(ConfigError) as info:
        walk_forward_folds(trading_dates(700), config)
    message = str(info.value)
    assert "504" in message and "10" in message and "63" in message
    assert "= 829 trading dates" in message and "the data has 700" in message
    with pytest.raises(ConfigError, match="test_days \\(at least 1\\)"):
        walk_forward_folds(trading_dates(510), FoldConfig(purge_days=10))
    with pytest.raises(ConfigError, match="cpcv needs folds.n_groups \\(6\\)"):
        make_folds(trading_dates(30), FoldConfig(scheme="cpcv", purge_days=10))


def test_unsorted_dates_are_a_data_error() -> None:
    dates = trading_dates(30)[::-1]
    with pytest.raises(DataError, match="strictly increasing"):
        walk_forward_folds(dates, FoldConfig(n_folds=2, min_train_days=5))


@pytest.mark.parametrize(("groups", "k"), [(6, 2), (5, 1), (4, 3)])
def test_cpcv_paths_use_each_tested_group_once_and_cover_the_dates(groups: int, k: int) -> None:
    dates = trading_dates(120)
    config = FoldConfig(scheme="cpcv", n_groups=groups, n_test_groups=k)
    folds = combinatorial_purged_folds(dates, config)
    paths = cpcv_paths(dates, config)
    assert len(paths) == k * math.comb(groups, k) // groups
    used = set()
    for path in paths:
        assert [start for _, start, _ in path][0] == 0 and path[-1][2] == 120
        for (_, _, stop), (_, start, _) in zip(path, path[1:], strict=False):
            assert stop == start
        for fold_index, start, stop in path:
            assert set(range(start, stop)) <= set(folds[fold_index].test_indices().tolist())
            used.add((fold_index, start))
    assert len(used) == len(paths) * groups
