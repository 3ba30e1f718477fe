"""Run any policy as one continuous portfolio over a market period, recording every bar and fill.

Timing. A decision taken on bar ``t``'s observation fills at ``open[t+1]`` and is marked at
``close[t+1]``. Every equity series therefore starts with the starting capital on the first bar of
the period (nothing can have been filled yet) and the first fills happen at the second bar's open:
the first open of the period at which any order can execute. The benchmarks buy at that same open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ploutos_core.backtest.metrics import (
    empty_fills,
    metrics,
    trade_stats,
)
from ploutos_core.config import EnvConfig
from ploutos_core.env import PortfolioCore
from ploutos_core.env.core import Policy
from ploutos_core.market import MarketData


@dataclass(frozen=True)
class BacktestRun:
    """One portfolio over a market period: per-bar state and every fill.

    Attributes
    ----------
    dates : np.ndarray
        ``datetime64[ns] [T]``, the bars of the period.
    tickers : tuple[str, ...]
        ``[N]``, the columns of ``positions``.
    equity, cash, gross_exposure : np.ndarray
        ``float64 [T]`` marked at each bar's close; ``equity[0]`` is the starting capital;
        gross exposure is ``sum(|shares| * close)``.
    positions : np.ndarray
        ``float64 [T, N]`` shares held after each bar.
    fills : pd.DataFrame
        ``date, ticker, side ("buy"/"sell"), quantity (> 0), price, cost``, in date order.
    """

    dates: np.ndarray
    tickers: tuple[str, ...]
    equity: np.ndarray
    cash: np.ndarray
    gross_exposure: np.ndarray
    positions: np.ndarray
    fills: pd.DataFrame

    def metrics(self) -> dict[str, float]:
        """Return metrics and trade statistics of this run, in one dict."""
        return {
            **metrics(self.equity),
            **trade_stats(self.fills, self.equity, self.gross_exposure),
        }

    def equity_frame(self) -> pd.DataFrame:
        """``equity``, ``cash`` and ``gross_exposure`` indexed by ``date``."""
        index = pd.DatetimeIndex(self.dates, name="date")
        return pd.DataFrame(
            {"equity": self.equity, "cash": self.cash, "gross_exposure": self.gross_exposure},
            index=index,
        )

    def positions_frame(self) -> pd.DataFrame:
        """Shares held per ticker (columns) and date (index)."""
        return pd.DataFrame(
            self.positions,
            index=pd.DatetimeIndex(self.dates, name="date"),
            columns=pd.Index(self.tickers, name="ticker"),
        )


def _fills_frame(
    dates: np.ndarray,
    tickers: tuple[str, ...],
    bars: np.ndarray,
    columns: np.ndarray,
    signed_shares: np.ndarray,
    price: np.ndarray,
    cost: np.ndarray,
) -> pd.DataFrame:
    if bars.size == 0:
        return empty_fills()
    order = np.lexsort((columns, bars))
    bars, columns = bars[order], columns[order]
    signed_shares, price, cost = signed_shares[order], price[order], cost[order]
    return pd.DataFrame(
        {
            "date": dates[bars].astype("datetime64[ns]"),
            "ticker": pd.array(np.asarray(tickers, dtype=object)[columns], dtype=pd.StringDtype()),
            "side": pd.array(np.where(signed_shares > 0, "buy", "sell"), dtype=pd.StringDtype()),
            "quantity": np.abs(signed_shares),
            "price": price.astype(np.float64),
            "cost": cost.astype(np.float64),
        }
    )


def _backtest_env_config(env_config: EnvConfig) -> EnvConfig:
    # The equity floor ends training episodes; a backtest follows one portfolio to the end.
    return env_config.model_copy(update={"min_equity_fraction": 0.0})


def simulate(market: MarketData, env_config: EnvConfig, policy: Policy) -> BacktestRun:
    """Run ``policy`` as one continuous portfolio from the first to the last bar of ``market``.

    The environment's core executes the orders (fills at the next open, costs, position caps,
    forced sales of delisted tickers) exactly as in training; this function only records its
    state after every bar and its ``last_fill_*`` arrays. The training-only equity floor
    (``min_equity_fraction``) is switched off so the portfolio is followed to the last bar.

    Parameters
    ----------
    market:
        The period to run over (e.g. ``market.period(test_start, test_end)``).
    env_config:
        Cash, order sizing and costs (the model's training config).
    policy:
        Called once per bar with the core's raw observation ``float32 [1, obs_size]``; returns
        actions ``[1, N]`` or ``[N]``. It is called in bar order, so a stateful policy may count
        its calls (bar ``i`` of the run is ``market.dates[i]``).

    Returns
    -------
    BacktestRun
        ``T`` bars; before the core's first valid bar (no tradable ticker yet) the portfolio is
        all cash.
    """
    return simulate_to_last_bar(market, env_config, policy)[0]


def simulate_to_last_bar(
    market: MarketData, env_config: EnvConfig, policy: Policy
) -> tuple[BacktestRun, PortfolioCore]:
    """:func:`simulate`, and the environment's core standing on the last bar of ``market``.

    The core's observation there (``core.observe()``) is the one the next decision is taken on:
    the orders for the session after the last bar (:mod:`ploutos_core.signals`). A market of a
    single bar gives an all-cash run of one bar and a core on it.
    """
    config = _backtest_env_config(env_config)
    core = PortfolioCore(market, config, 1, start_date=market.dates[0], run_to_end=True)
    T, N = market.T, market.N
    start = int(core.t[0])
    equity = np.full(T, config.initial_cash)
    cash = np.full(T, config.initial_cash)
    positions = np.zeros((T, N))
    fill_bars: list[np.ndarray] = []
    fill_columns: list[np.ndarray] = []
    fill_values: list[np.ndarray] = []  # rows: signed shares, price, cost
    for _ in range(start, T - 1):
        actions = np.asarray(policy(core.observe())).reshape(1, N)
        core.step(actions)
        bar = int(core.fill_index[0])
        equity[bar] = core.equity[0]
        cash[bar] = core.cash[0]
        positions[bar] = core.shares[0]
        filled = np.flatnonzero(core.last_fill_shares[0])
        if filled.size:
            fill_bars.append(np.full(filled.size, bar))
            fill_columns.append(filled)
            fill_values.append(
                np.stack(
                    [
                        core.last_fill_shares[0, filled],
                        core.last_fill_price[0, filled],
                        core.last_fill_cost[0, filled],
                    ]
                )
            )
    gross = np.einsum("tn,tn->t", np.abs(positions), market.close.astype(np.float64))
    fills = empty_fills()
    if fill_bars:
        signed, price, cost = np.concatenate(fill_values, axis=1)
        fills = _fills_frame(
            market.dates,
            market.tickers,
            np.concatenate(fill_bars),
            np.concatenate(fill_columns),
            signed,
            price,
            cost,
        )
    run = BacktestRun(market.dates, market.tickers, equity, cash, gross, positions, fills)
    return run, core


def accounting_error(run: BacktestRun, market: MarketData) -> float:
    """Largest relative gap, over bars, between equity and cash + shares x close.

    ``market`` must be the period the run covers. The strategy's equity comes from the
    environment's core and its positions from the same core, so this checks the recording and
    the core's bookkeeping; a correct run is at rounding level (< 1e-9).
    """
    if run.dates.size != market.T or not np.array_equal(market.dates, run.dates):
        raise ValueError("accounting_error needs the market period the run covers")
    holdings = np.einsum("tn,tn->t", run.positions, market.close.astype(np.float64))
    return float(np.max(np.abs(run.cash + holdings - run.equity) / run.equity))
