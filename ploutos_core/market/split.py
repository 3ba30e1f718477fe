"""The date split: training period, embargo gap and test period of a market's trading dates.

Training fits on the first period only; the backtest runs on the second.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ploutos_core.config import SplitConfig
from ploutos_core.errors import ConfigError
from ploutos_core.market.dates import iso_day

__all__ = ["Split", "split_periods"]


@dataclass(frozen=True)
class Split:
    """Inclusive training and test periods as ISO dates (YYYY-MM-DD)."""

    train_start: str
    train_end: str
    test_start: str
    test_end: str



def split_periods(dates: np.ndarray, split: SplitConfig) -> Split:
    """Split sorted trading dates into a training period, an embargo gap and a test period.

    With ``split.train_end`` the training period ends on the last date <= ``train_end``;
    otherwise the test period is the last ``test_fraction`` of the dates. ``embargo_days``
    bars between the two are used by neither. The embargo is not what keeps the test period's
    features from looking back into training bars: they do (a 199-bar warm-up reaches far
    further), and that is harmless, it is past data. It is there for what straddles the
    boundary: rewards and returns of the last training episodes that depend on bars after the
    training end (a position opened on the last training bar is marked at later closes), and the
    serial correlation of returns, which would make the first test bars a continuation of the
    last training ones (López de Prado's purging and embargo).

    Parameters
    ----------
    dates:
        Strictly increasing trading dates (``MarketData.dates``).
    split:
        The split settings.

    Raises
    ------
    ConfigError
        When either period would be empty (or training shorter than two bars).
    """
    days = np.asarray(dates).astype("datetime64[D]")
    n = len(days)
    if n == 0:
        raise ConfigError("cannot split an empty date range: the market has no trading dates")
    span = f"the data has {n} trading dates from {iso_day(days[0])} to {iso_day(days[-1])}"
    if split.train_end is not None:
        n_train = int(np.searchsorted(days, np.datetime64(split.train_end, "D"), side="right"))
        where = f"split.train_end {split.train_end}"
    else:
        n_test = max(1, round(n * split.test_fraction))
        n_train = n - n_test - split.embargo_days
        where = f"split.test_fraction {split.test_fraction} and split.embargo_days"
    test_first = n_train + split.embargo_days
    if n_train < 2:
        raise ConfigError(
            f"{where} leave {max(n_train, 0)} training dates ({span}); move split.train_end "
            "later or lower split.test_fraction / split.embargo_days"
        )
    if test_first >= n:
        raise ConfigError(
            f"{where} with split.embargo_days={split.embargo_days} leave no test dates "
            f"({span}; training ends {iso_day(days[n_train - 1])}); move split.train_end earlier "
            "or lower split.embargo_days"
        )
    return Split(
        iso_day(days[0]), iso_day(days[n_train - 1]), iso_day(days[test_first]), iso_day(days[-1])
    )
