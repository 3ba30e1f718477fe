"""The yardsticks a strategy is compared with over the same bars and costs: a point-in-time
equal-weight buy-and-hold of the listed universe, and cash.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ploutos_core.backtest.metrics import (
    empty_fills,
)
from ploutos_core.backtest.simulate import BacktestRun, _fills_frame
from ploutos_core.config import EnvConfig
from ploutos_core.market import MarketData


def buy_and_hold_benchmark(market: MarketData, env_config: EnvConfig) -> BacktestRun:
    """Point-in-time equal-weight buy-and-hold of the listed universe, with the environment's costs.

    The rule, something a person could have run in real time (it never holds or reserves money
    for a ticker before that ticker lists):

    - On the first bar at whose open an order can fill (the bar after the first bar with a
      tradable ticker, as for the strategy) the capital is invested in equal parts in the
      tickers tradable then.
    - Whenever the listed set changes (a ticker trades for the first time, or one has no
      tradable bar left in the period) the portfolio is rebalanced, at that bar's open, to equal
      weights over the listed tickers tradable then; a listed ticker missing that day keeps its
      shares. A delisted holding is first sold at its last close, paying costs, exactly as the
      environment closes it.
    - Every traded notional pays ``costs.rate``; the weights are solved so that notional and
      costs together spend the portfolio exactly (no borrowing, no idle cash).
    - Nothing else trades: between membership changes the shares are held.

    Holdings are marked at each bar's (forward-filled) close.

    Parameters
    ----------
    market:
        The period (the same bars as the strategy's run).
    env_config:
        Starting capital and cost rate.
    """
    rate = env_config.costs.rate
    T, N = market.T, market.N
    capital = env_config.initial_cash
    active = np.flatnonzero(market.tradable[:-1].any(axis=1))
    if T < 2 or active.size == 0:
        return _all_cash(market, capital)
    start = int(active[0]) + 1
    tradable = market.tradable.copy()
    tradable[:start] = False
    ever = tradable.any(axis=0)
    first = np.where(ever, np.argmax(tradable, axis=0), T)
    last = np.where(ever, T - 1 - np.argmax(market.tradable[::-1], axis=0), -1)
    events = sorted({start, *first[(first > start) & (first < T)], *(last[last < T - 1] + 1)})
    close = market.close.astype(np.float64)
    open_ = market.open.astype(np.float64)
    shares = np.zeros(N)
    cash = capital
    positions = np.zeros((T, N))
    cash_path = np.full(T, capital)
    fills: list[tuple[int, int, float, float, float]] = []  # bar, ticker, signed qty, price, cost
    for b, end in zip(events, [*events[1:], T], strict=True):
        gone = np.flatnonzero((last == b - 1) & (shares > 0))
        for n in gone:
            proceeds = shares[n] * close[b - 1, n]
            cash += proceeds * (1.0 - rate)
            fills.append((b, n, -shares[n], close[b - 1, n], proceeds * rate))
            shares[n] = 0.0
        members = np.flatnonzero((first <= b) & (last >= b) & tradable[b])
        if members.size:
            current = shares[members] * open_[b, members]
            target = _equal_target(cash + current.sum(), current, rate)
            traded = target - current
            for n, delta in zip(members, traded, strict=True):
                if abs(delta) > MIN_TRADE * capital:
                    fills.append((b, n, delta / open_[b, n], open_[b, n], abs(delta) * rate))
            spent = target * members.size + rate * np.abs(traded).sum()
            cash = max(cash + current.sum() - spent, 0.0)  # 0 up to rounding
            shares[members] = target / open_[b, members]
        positions[b:end] = shares
        cash_path[b:end] = cash
    gross = np.einsum("tn,tn->t", positions, close)
    return BacktestRun(
        market.dates,
        market.tickers,
        cash_path + gross,
        cash_path,
        gross,
        positions,
        _fill_records(market, fills),
    )


MIN_TRADE = 1e-9
"""Rebalancing trades below this fraction of the capital are rounding, not trades."""


def _equal_target(wealth: float, current: np.ndarray, rate: float) -> float:
    """The value ``v`` per ticker with ``len(current) * v + rate * sum|v - current| = wealth``.

    The left side grows strictly with ``v`` (slope at least ``k * (1 - rate)``), so the fixed
    point iteration converges geometrically from the cost-free answer.
    """
    k = len(current)
    value = wealth / k
    for _ in range(100):
        updated = (wealth - rate * np.abs(value - current).sum()) / k
        if abs(updated - value) <= 1e-13 * max(abs(value), 1.0):
            return updated
        value = updated
    return value


def _fill_records(market: MarketData, fills: list) -> pd.DataFrame:
    if not fills:
        return empty_fills()
    bars, columns, signed, price, cost = (np.asarray(v) for v in zip(*fills, strict=True))
    return _fills_frame(
        market.dates, market.tickers, bars.astype(int), columns.astype(int), signed, price, cost
    )


def _all_cash(market: MarketData, capital: float) -> BacktestRun:
    equity = np.full(market.T, capital)
    return BacktestRun(
        market.dates,
        market.tickers,
        equity,
        equity.copy(),
        np.zeros(market.T),
        np.zeros((market.T, market.N)),
        empty_fills(),
    )


def cash_benchmark(market: MarketData, env_config: EnvConfig) -> BacktestRun:
    """Staying in cash (zero interest): equity equal to the starting capital on every bar."""
    return _all_cash(market, env_config.initial_cash)
