"""The yardsticks a strategy is compared with over the same bars and costs: an equal-weight
buy-and-hold of the tradable universe, and cash.
"""

from __future__ import annotations

import numpy as np

from ploutos_core.backtest.metrics import (
    empty_fills,
)
from ploutos_core.backtest.simulate import BacktestRun, _fills_frame
from ploutos_core.config import EnvConfig
from ploutos_core.market import MarketData


def buy_and_hold_benchmark(market: MarketData, env_config: EnvConfig) -> BacktestRun:
    """Equal-weight buy-and-hold of the tradable universe, with the environment's costs.

    Sizing rule: the starting capital is split into ``M`` equal sleeves, one per ticker that is
    tradable on at least one bar from the second bar of the period on (the first bar at whose
    open an order can fill, see the module docstring; when the first bar has no tradable
    ticker, the bar after the first one that has, as for the strategy). A sleeve buys its
    ticker at the open of the ticker's first such tradable bar, notional and cost together
    spending the sleeve exactly (``notional = sleeve / (1 + rate)``). Sleeves of tickers that
    list later wait in cash until they list, so the benchmark never rebalances and never
    borrows; tickers present from the start are each ``1/M`` of the capital, not
    ``1/(number listed at the start)``. A ticker with no tradable bar after bar ``L`` inside
    the period is sold at ``close[L]`` on the next bar, paying costs, exactly as the
    environment closes delisted positions; the proceeds stay in cash. Holdings are marked at
    each bar's (forward-filled) close.

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
    bars = np.arange(T)[:, None]
    tradable = market.tradable.copy()
    # Like the core: the run starts on the first bar with a tradable ticker; fills come after it.
    active = np.flatnonzero(market.tradable[:-1].any(axis=1))
    tradable[: (active[0] + 1 if active.size else T)] = False
    listed = tradable.any(axis=0)
    n_sleeves = int(listed.sum())
    equity = np.full(T, capital)
    if n_sleeves == 0 or T < 2:
        return BacktestRun(
            market.dates,
            market.tickers,
            equity,
            equity.copy(),
            np.zeros(T),
            np.zeros((T, N)),
            empty_fills(),
        )
    columns = np.flatnonzero(listed)
    first = np.argmax(tradable, axis=0)[columns]
    last = (T - 1 - np.argmax(market.tradable[::-1], axis=0))[columns]
    sleeve = capital / n_sleeves
    notional = sleeve / (1.0 + rate)
    buy_price = market.open[first, columns].astype(np.float64)
    quantity = notional / buy_price
    delisted = last < T - 1
    sell_price = market.close[last, columns].astype(np.float64)
    proceeds = quantity * sell_price * delisted
    held = (bars >= first) & (bars <= last)
    positions = np.zeros((T, N))
    positions[:, columns] = held * quantity
    spent = np.bincount(first, minlength=T) * sleeve
    sell_bar = np.minimum(last + 1, T - 1)
    received = np.bincount(sell_bar, weights=proceeds * (1.0 - rate), minlength=T)
    cash = capital - np.cumsum(spent) + np.cumsum(received)
    close = market.close.astype(np.float64)
    gross = np.einsum("tn,tn->t", positions, close)
    equity = cash + gross
    sold = np.flatnonzero(delisted)
    fills = _fills_frame(
        market.dates,
        market.tickers,
        np.concatenate([first, last[sold] + 1]),
        np.concatenate([columns, columns[sold]]),
        np.concatenate([quantity, -quantity[sold]]),
        np.concatenate([buy_price, sell_price[sold]]),
        np.concatenate([np.full(columns.size, notional * rate), proceeds[sold] * rate]),
    )
    return BacktestRun(market.dates, market.tickers, equity, cash, gross, positions, fills)


def cash_benchmark(market: MarketData, env_config: EnvConfig) -> BacktestRun:
    """Staying in cash (zero interest): equity equal to the starting capital on every bar."""
    T = market.T
    capital = np.full(T, env_config.initial_cash)
    return BacktestRun(
        market.dates,
        market.tickers,
        capital,
        capital.copy(),
        np.zeros(T),
        np.zeros((T, market.N)),
        empty_fills(),
    )
