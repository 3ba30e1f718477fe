"""Small markets for tests: the synthetic OHLCV of ``make_market`` with random features.

Random features keep environment, training and backtest tests fast (no indicators) while the
prices, listings, delistings and missing days stay realistic.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ploutos_core.data.sample import make_market
from ploutos_core.market import MarketData, build_market


def random_feature_frames(
    ohlcv: pd.DataFrame, feature_names: Sequence[str], *, seed: int = 0, warmup: int = 5
) -> dict[str, pd.DataFrame]:
    """Standard-normal float32 features on each ticker's dates after ``warmup`` bars."""
    rng = np.random.default_rng(seed)
    frames = {}
    for ticker, rows in ohlcv.groupby("ticker", sort=True, observed=True):
        dates = pd.DatetimeIndex(rows["date"].to_numpy()[warmup:], name="date")
        values = rng.standard_normal((len(dates), len(feature_names))).astype(np.float32)
        frames[str(ticker)] = pd.DataFrame(values, index=dates, columns=list(feature_names))
    return frames


def random_feature_market(
    n_tickers: int,
    n_days: int,
    feature_names: Sequence[str],
    *,
    seed: int = 0,
    warmup: int = 5,
    **market_options: bool,
) -> MarketData:
    """``make_market(n_tickers, n_days)`` with :func:`random_feature_frames` as its features."""
    ohlcv = make_market(n_tickers, n_days, seed=seed, **market_options)
    frames = random_feature_frames(ohlcv, feature_names, seed=seed, warmup=warmup)
    return build_market(frames, ohlcv, feature_names=tuple(feature_names))
