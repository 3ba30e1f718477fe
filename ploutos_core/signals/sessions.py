"""Which sessions the paper portfolio may book, and the session an order decided now fills in.

A session is a bar date of the market (the union calendar of the universe). Orders decided on a
bar fill at the next session's open, as in the backtest.

**Settled sessions.** The backtest closes a position in a ticker that stops trading at its last
close, because it knows the ticker has no later bar. Paper trading cannot know that the day a
bar is missing: the bar may be late. So a session is booked only once every ticker's status is
known there: a ticker that traded before the session either has a bar on it or later (a missing
day, confirmed by a later bar), or has had no bar for ``stopped_after_sessions`` sessions up to
the data's end (it counts as stopped trading, and its position is closed at its last close, as
the backtest does). The sessions after the last bar of a ticker that is neither wait: they are
reported as late, never guessed.

**The next session** after the last bar is not in the data yet: it is the next weekday (the next
calendar day when the data has bars on weekends, as crypto data has). Exchange holidays are not
known to Ploutos: on a holiday, the orders fill at the first session that comes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ploutos_core.market import MarketData
from ploutos_core.market.dates import iso_day


@dataclass(frozen=True)
class Settlement:
    """How far a market's sessions can be booked.

    Attributes
    ----------
    last_settled : int
        Index of the last bar that can be booked (``T - 1`` when nothing is late).
    late : dict[str, str]
        Per ticker whose status is unknown, the date of its last bar: every session after it
        waits for its next bar (or for it to count as stopped).
    """

    last_settled: int
    late: dict[str, str]

    def describe(self, market: MarketData) -> str:
        """The late tickers and what the user can do, for messages."""
        if not self.late:
            return "no ticker is late"
        listed = ", ".join(f"{t} (last bar {d})" for t, d in sorted(self.late.items()))
        return (
            f"no bar yet after {iso_day(market.dates[self.last_settled])} for {listed}, while the "
            f"data reaches {iso_day(market.dates[-1])}: add their bars to the data, or wait until "
            "they count as stopped trading (stopped_after_sessions in config/paper.yaml)"
        )


def settlement(market: MarketData, stopped_after_sessions: int) -> Settlement:
    """Which bars of ``market`` can be booked (see the module docstring)."""
    tradable = market.tradable
    T = market.T
    ever = tradable.any(axis=0)
    last = np.where(ever, T - 1 - np.argmax(tradable[::-1], axis=0), -1)
    unresolved = ever & (last < T - 1) & (T - 1 - last < stopped_after_sessions)
    if not unresolved.any():
        return Settlement(T - 1, {})
    late = {market.tickers[n]: iso_day(market.dates[last[n]]) for n in np.flatnonzero(unresolved)}
    return Settlement(int(last[unresolved].min()), late)


def next_session(dates: np.ndarray, index: int) -> str:
    """The session in which an order decided on ``dates[index]`` fills (ISO date).

    The next bar of ``dates`` when there is one; after the last bar, the next weekday, or the
    next calendar day when ``dates`` hold a weekend day.
    """
    if index + 1 < len(dates):
        return iso_day(dates[index + 1])
    day = pd.Timestamp(dates[index])
    trades_weekends = bool((pd.DatetimeIndex(dates).day_of_week >= 5).any())
    step = pd.Timedelta(days=1) if trades_weekends else pd.offsets.BDay(1)
    return (day + step).date().isoformat()
