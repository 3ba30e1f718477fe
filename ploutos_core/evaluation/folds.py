"""Training and test windows over a market's trading dates, purged and embargoed.

Two schemes (``FoldConfig.scheme``):

- **walk-forward**: ``n_folds`` consecutive test windows tile the end of the data; each fold trains
  on the bars before its test window (from the first bar, ``expanding``, or the last
  ``min_train_days`` bars, ``rolling``), never on later bars.
- **combinatorial purged cross-validation** (CPCV; M. López de Prado, *Advances in Financial
  Machine Learning*, 2018, ch. 12): the dates are cut into ``n_groups`` contiguous groups and every
  choice of ``n_test_groups`` of them is one split; the other groups train, including those after
  the test groups.

Around every test window, ``purge_days`` bars before it and ``embargo_days`` bars after it are
used by no training set: features and rewards look back (and episodes run forward) over several
bars, so bars that close to a test window carry information about it (López de Prado 2018,
sections 7.4.1-7.4.2). Walk-forward training never uses bars after a test window, so there the
embargo changes nothing.

Bars are indices into the date array; every range is half-open, ``[start, stop)``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ploutos_core.config import FoldConfig
from ploutos_core.errors import ConfigError, DataError
from ploutos_core.market.dates import iso_day

BarRanges = tuple[tuple[int, int], ...]
PathSegments = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Fold:
    """One training set and one test set of bars, with their first and last dates (ISO).

    ``train_bars`` and ``test_bars`` are sorted, disjoint half-open ranges of bar indices: one
    range each in walk-forward, possibly several in CPCV (whose ``train_start``/``train_end``
    then span gaps).
    """

    index: int
    train_start: str
    train_end: str
    test_start: str
    test_end: str
    train_bars: BarRanges
    test_bars: BarRanges

    def train_indices(self) -> np.ndarray:
        """Every training bar, ascending."""
        return _indices(self.train_bars)

    def test_indices(self) -> np.ndarray:
        """Every test bar, ascending."""
        return _indices(self.test_bars)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the ranges become lists."""
        return asdict(self) | {
            "train_bars": [list(r) for r in self.train_bars],
            "test_bars": [list(r) for r in self.test_bars],
        }


def make_folds(dates: np.ndarray, config: FoldConfig) -> list[Fold]:
    """The folds of ``config.scheme`` over ``dates``."""
    if config.scheme == "cpcv":
        return combinatorial_purged_folds(dates, config)
    return walk_forward_folds(dates, config)


def walk_forward_folds(dates: np.ndarray, config: FoldConfig) -> list[Fold]:
    """``config.n_folds`` walk-forward folds whose test windows tile the end of ``dates``.

    Test windows hold ``config.test_days`` bars each (or, when null, the bars after the first
    training window and its purge split evenly; the remainder lengthens the first training
    window). Fold ``i`` trains on the bars before its test window minus the last
    ``purge_days``: all of them (``expanding``) or the last ``min_train_days`` (``rolling``).

    Raises
    ------
    ConfigError
        When the dates are too few for ``min_train_days + purge_days + n_folds * test_days``.
    """
    days = _checked_days(dates)
    n, k, purge, min_train = len(days), config.n_folds, config.purge_days, config.min_train_days
    test_days = config.test_days or max((n - min_train - purge) // k, 0)
    needed = min_train + purge + k * max(test_days, 1)
    if test_days < 1 or needed > n:
        shown = config.test_days if config.test_days else "at least 1"
        raise ConfigError(
            f"walk-forward folds need folds.min_train_days ({min_train}) + folds.purge_days "
            f"({purge}) + folds.n_folds ({k}) x folds.test_days ({shown}) = {needed} trading "
            f"dates; {_span(days)}. Lower n_folds, test_days, min_train_days or purge_days, "
            "or supply more data"
        )
    first_test = n - k * test_days
    folds = []
    for i in range(k):
        test_start = first_test + i * test_days
        train_stop = test_start - purge
        train_start = 0 if config.window == "expanding" else train_stop - min_train
        folds.append(
            _fold(days, i, ((train_start, train_stop),), ((test_start, test_start + test_days),))
        )
    return folds


def combinatorial_purged_folds(dates: np.ndarray, config: FoldConfig) -> list[Fold]:
    """López de Prado's CPCV splits: every choice of ``n_test_groups`` of ``n_groups`` groups.

    The dates are cut into ``config.n_groups`` contiguous groups of (nearly) equal size; there
    are ``C(n_groups, n_test_groups)`` folds, in lexicographic order of their test groups.
    Adjacent test groups form one test window. Training takes every other bar except the
    ``purge_days`` before and the ``embargo_days`` after each test window (López de Prado,
    *Advances in Financial Machine Learning*, 2018, section 12.4).

    Raises
    ------
    ConfigError
        When a group would be shorter than ``purge_days + embargo_days + 1`` bars, which could
        leave a split without training bars or a purge spilling over a whole group.
    """
    days = _checked_days(dates)
    n, groups = len(days), config.n_groups
    edges = _group_edges(days, config)
    folds = []
    for i, chosen in enumerate(itertools.combinations(range(groups), config.n_test_groups)):
        tested = np.zeros(n, dtype=bool)
        for g in chosen:
            tested[edges[g] : edges[g + 1]] = True
        test = _ranges(tested)
        train = np.ones(n, dtype=bool)
        for start, stop in test:
            train[max(start - config.purge_days, 0) : stop + config.embargo_days] = False
        folds.append(_fold(days, i, _ranges(train), test))
    return folds


def cpcv_paths(dates: np.ndarray, config: FoldConfig) -> list[PathSegments]:
    """The backtest paths of CPCV: ``n_test_groups * C(n_groups, n_test_groups) / n_groups``
    complete out-of-sample histories stitched from the folds of
    :func:`combinatorial_purged_folds` (López de Prado 2018, section 12.4.1).

    Every group is tested in ``C(n_groups - 1, n_test_groups - 1)`` folds; path ``j`` takes
    each group from the ``j``-th of them, in fold order. A path is a tuple of
    ``(fold_index, start, stop)`` segments covering every bar once, in time order: the caller
    concatenates the returns of each segment's fold model over its bars.
    """
    groups, k = config.n_groups, config.n_test_groups
    edges = _group_edges(_checked_days(dates), config)
    tested_in: list[list[int]] = [[] for _ in range(groups)]
    for i, chosen in enumerate(itertools.combinations(range(groups), k)):
        for g in chosen:
            tested_in[g].append(i)
    return [
        tuple((tested_in[g][j], edges[g], edges[g + 1]) for g in range(groups))
        for j in range(math.comb(groups - 1, k - 1))
    ]


def _group_edges(days: np.ndarray, config: FoldConfig) -> list[int]:
    """First bar of each of ``n_groups`` nearly equal contiguous groups, then the bar count."""
    n, groups = len(days), config.n_groups
    min_group = config.purge_days + config.embargo_days + 1
    if n // groups < min_group:
        raise ConfigError(
            f"cpcv needs folds.n_groups ({groups}) groups of at least folds.purge_days "
            f"({config.purge_days}) + folds.embargo_days ({config.embargo_days}) + 1 = "
            f"{min_group} bars, {groups * min_group} trading dates; {_span(days)}. Lower "
            "n_groups, purge_days or embargo_days, or supply more data"
        )
    return [int(chunk[0]) for chunk in np.array_split(np.arange(n), groups)] + [n]


def _checked_days(dates: np.ndarray) -> np.ndarray:
    days = np.asarray(dates).astype("datetime64[D]")
    if days.ndim != 1 or len(days) == 0:
        raise DataError("folds need a one-dimensional, non-empty array of trading dates")
    if np.any(np.diff(days) <= np.timedelta64(0, "D")):
        bad = int(np.flatnonzero(np.diff(days) <= np.timedelta64(0, "D"))[0])
        raise DataError(
            f"trading dates must be strictly increasing; {iso_day(days[bad + 1])} follows "
            f"{iso_day(days[bad])} at position {bad + 1}"
        )
    return days


def _span(days: np.ndarray) -> str:
    return f"the data has {len(days)} from {iso_day(days[0])} to {iso_day(days[-1])}"


def _fold(days: np.ndarray, index: int, train: BarRanges, test: BarRanges) -> Fold:
    return Fold(
        index=index,
        train_start=iso_day(days[train[0][0]]),
        train_end=iso_day(days[train[-1][1] - 1]),
        test_start=iso_day(days[test[0][0]]),
        test_end=iso_day(days[test[-1][1] - 1]),
        train_bars=train,
        test_bars=test,
    )


def _ranges(mask: np.ndarray) -> BarRanges:
    """The maximal runs of True in ``mask`` as half-open ranges."""
    padded = np.concatenate(([False], mask, [False])).astype(np.int8)
    changes = np.flatnonzero(np.diff(padded))
    return tuple((int(a), int(b)) for a, b in zip(changes[::2], changes[1::2], strict=True))


def _indices(ranges: BarRanges) -> np.ndarray:
    if not ranges:
        return np.empty(0, dtype=np.int64)
    return np.concatenate([np.arange(a, b, dtype=np.int64) for a, b in ranges])
