"""Performance metrics of an equity curve, and trade statistics from its fills.

Conventions (the README copies them):

- An equity series is one value per bar, and its first value is the starting capital (the bar on
  which the first decision is taken, before any fill). A year has 252 bars.
- Per-bar simple returns ``r_i = e_i / e_{i-1} - 1``, ``n = len(equity) - 1`` of them.
- ``total_return = e_last / e_0 - 1``.
- ``cagr = (e_last / e_0) ** (252 / n) - 1``.
- ``volatility = std(r, ddof=1) * sqrt(252)``.
- ``sharpe = mean(r) / std(r, ddof=1) * sqrt(252)``, zero risk-free rate; 0 when the standard
  deviation is 0 (a flat curve).
- ``sortino = mean(r) / downside_dev * sqrt(252)`` with ``downside_dev = sqrt(mean(min(r, 0)**2))``
  over *all* bars (bars without a loss count as zeros, not dropped). 0 when ``downside_dev`` is 0
  and ``mean(r) <= 0``; ``inf`` when no bar lost money and ``mean(r) > 0``.
- ``max_drawdown = min_t (e_t / max_{s<=t} e_s - 1)``, a fraction <= 0. The running maximum
  includes ``e_0``, so a loss on the very first bar is a drawdown.
- ``calmar = cagr / |max_drawdown|``; without a drawdown it is 0 when ``cagr <= 0`` and ``inf``
  otherwise.
- With a single return, ``volatility``, ``sharpe`` and ``sortino`` are 0 (a sample standard
  deviation needs two).

Trade statistics (:func:`trade_stats`), from the fills (``date, ticker, side, quantity, price,
cost``; quantity > 0, side ``"buy"`` or ``"sell"``) and the per-bar equity and gross exposure:

- ``n_trades``: number of fills (a buy and the sell that closes it are two trades).
- ``n_closed_trades``: number of sells; each realizes a P&L against the average cost of the
  position, buy costs included: ``pnl = q * price - sell_cost - q * avg_cost`` where ``avg_cost``
  is (buy notional + buy costs) per share held.
- ``win_rate``: share of closed trades with ``pnl > 0``; 0 without closed trades.
- ``profit_factor``: sum of positive P&L over the absolute sum of negative P&L; 0 without a
  winning closed trade, ``inf`` with winners and no loser.
- ``average_exposure``: mean over all bars of gross exposure / equity (gross exposure = sum over
  tickers of |shares| x close).
- ``annual_turnover``: traded notional (buys and sells) / 2 / mean equity, times ``252 / n``: 1.0
  means the whole portfolio was replaced once a year.
- ``total_costs``: sum of all fill costs, in currency.

Non-finite values (``inf``) survive in the Python dicts; :func:`json_safe` turns them into ``None``
for JSON, whose standard has no infinity.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ploutos_core.market.dates import BARS_PER_YEAR

METRIC_NAMES = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
)
TRADE_STAT_NAMES = (
    "n_trades",
    "n_closed_trades",
    "win_rate",
    "profit_factor",
    "average_exposure",
    "annual_turnover",
    "total_costs",
)
FILL_COLUMNS = ("date", "ticker", "side", "quantity", "price", "cost")


def _as_equity_array(equity: pd.Series | np.ndarray) -> np.ndarray:
    values = np.asarray(equity, dtype=np.float64).reshape(-1)
    if values.size < 2:
        raise ValueError(f"an equity series needs at least 2 values, got {values.size}")
    if not np.all(np.isfinite(values)) or np.any(values <= 0):
        bad = int(np.flatnonzero(~np.isfinite(values) | (values <= 0))[0])
        raise ValueError(f"equity must be finite and positive; value {values[bad]!r} at bar {bad}")
    return values


def drawdown(equity: pd.Series | np.ndarray) -> np.ndarray:
    """Per-bar drawdown ``e_t / max_{s<=t} e_s - 1`` (<= 0), the running max including ``e_0``."""
    values = np.asarray(equity, dtype=np.float64).reshape(-1)
    return values / np.maximum.accumulate(values) - 1.0


def metrics(equity: pd.Series | np.ndarray) -> dict[str, float]:
    """Return-based metrics of an equity curve (conventions in the module docstring).

    Parameters
    ----------
    equity:
        One value per bar, the first being the starting capital; at least two values, all finite
        and positive.

    Returns
    -------
    dict
        ``total_return``, ``cagr``, ``volatility``, ``sharpe``, ``sortino``, ``max_drawdown``,
        ``calmar`` as Python floats.
    """
    values = _as_equity_array(equity)
    returns = values[1:] / values[:-1] - 1.0
    n = returns.size
    growth = values[-1] / values[0]
    total_return = growth - 1.0
    cagr = growth ** (BARS_PER_YEAR / n) - 1.0
    annual = math.sqrt(BARS_PER_YEAR)
    mean = float(returns.mean())

    std = float(returns.std(ddof=1)) if n > 1 else 0.0
    volatility = std * annual
    sharpe = mean / std * annual if std > 0 else 0.0

    downside_dev = math.sqrt(float(np.mean(np.minimum(returns, 0.0) ** 2)))
    if n < 2:
        sortino = 0.0
    elif downside_dev > 0:
        sortino = mean / downside_dev * annual
    else:
        sortino = math.inf if mean > 0 else 0.0

    max_drawdown = float(drawdown(values).min())
    calmar = cagr / abs(max_drawdown) if max_drawdown < 0 else (math.inf if cagr > 0 else 0.0)

    return {
        "total_return": float(total_return),
        "cagr": float(cagr),
        "volatility": float(volatility),
        "sharpe": float(sharpe),
        "sortino": float(sortino),
        "max_drawdown": max_drawdown,
        "calmar": float(calmar),
    }


def empty_fills() -> pd.DataFrame:
    """A fills frame with no rows and the documented columns and dtypes."""
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype="datetime64[ns]"),
            "ticker": pd.Series([], dtype=pd.StringDtype()),
            "side": pd.Series([], dtype=pd.StringDtype()),
            "quantity": pd.Series([], dtype=np.float64),
            "price": pd.Series([], dtype=np.float64),
            "cost": pd.Series([], dtype=np.float64),
        }
    )


def closed_trade_pnl(fills: pd.DataFrame) -> np.ndarray:
    """P&L of every sell against the average cost of the position it reduces (buy costs included).

    Fills are processed in date order; a ticker's sells and buys on one date cannot both occur
    (one net fill per ticker and bar), so the order within a date does not matter. The loop runs
    over dates, vectorized over tickers.
    """
    if fills.empty:
        return np.empty(0)
    date_codes, _ = pd.factorize(fills["date"], sort=True)
    ticker_codes, tickers = pd.factorize(fills["ticker"])
    n_dates, n_tickers = int(date_codes.max()) + 1, len(tickers)
    sign = np.where(fills["side"].to_numpy() == "buy", 1.0, -1.0)
    quantity = np.zeros((n_dates, n_tickers))
    price = np.zeros((n_dates, n_tickers))
    cost = np.zeros((n_dates, n_tickers))
    quantity[date_codes, ticker_codes] = sign * fills["quantity"].to_numpy(np.float64)
    price[date_codes, ticker_codes] = fills["price"].to_numpy(np.float64)
    cost[date_codes, ticker_codes] = fills["cost"].to_numpy(np.float64)

    held = np.zeros(n_tickers)
    basis = np.zeros(n_tickers)  # buy notional + buy costs of the shares held
    pnl: list[np.ndarray] = []
    for d in range(n_dates):
        q, p, c = quantity[d], price[d], cost[d]
        buys = q > 0
        basis[buys] += q[buys] * p[buys] + c[buys]
        held[buys] += q[buys]
        sells = np.flatnonzero(q < 0)
        if sells.size:
            sold = np.minimum(-q[sells], held[sells])
            fraction = np.divide(sold, held[sells], out=np.zeros(sells.size), where=held[sells] > 0)
            released = basis[sells] * fraction
            pnl.append(-q[sells] * p[sells] - c[sells] - released)
            basis[sells] -= released
            held[sells] -= sold
    return np.concatenate(pnl) if pnl else np.empty(0)


def trade_stats(
    fills: pd.DataFrame,
    equity: pd.Series | np.ndarray,
    gross_exposure: pd.Series | np.ndarray,
) -> dict[str, float]:
    """Trade statistics of a run (definitions in the module docstring).

    Parameters
    ----------
    fills:
        One row per fill with columns ``date, ticker, side, quantity, price, cost``.
    equity:
        Per-bar equity, first value the starting capital.
    gross_exposure:
        Per-bar sum of |shares| x close over tickers, same length as ``equity``.
    """
    values = _as_equity_array(equity)
    exposure = np.asarray(gross_exposure, dtype=np.float64).reshape(-1)
    if exposure.shape != values.shape:
        raise ValueError(
            f"gross_exposure has {exposure.size} bars but equity has {values.size}; "
            "pass the per-bar series of the same run"
        )
    n_returns = values.size - 1
    pnl = closed_trade_pnl(fills)
    gains = float(pnl[pnl > 0].sum())
    losses = float(-pnl[pnl < 0].sum())
    profit_factor = gains / losses if losses > 0 else (math.inf if gains > 0 else 0.0)
    notional = float((fills["quantity"] * fills["price"]).abs().sum()) if len(fills) else 0.0
    return {
        "n_trades": float(len(fills)),
        "n_closed_trades": float(pnl.size),
        "win_rate": float((pnl > 0).mean()) if pnl.size else 0.0,
        "profit_factor": float(profit_factor),
        "average_exposure": float(np.mean(exposure / values)),
        "annual_turnover": notional / 2.0 / float(values.mean()) * BARS_PER_YEAR / n_returns,
        "total_costs": float(fills["cost"].sum()) if len(fills) else 0.0,
    }


def json_safe(obj: object) -> object:
    """``obj`` with every non-finite float replaced by ``None`` (nested dicts and lists too)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, Mapping):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(value) for value in obj]
    return obj
