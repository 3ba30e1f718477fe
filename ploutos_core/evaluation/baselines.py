"""The baselines an agent must beat, each run through :func:`~ploutos_core.backtest.simulate`
with the agent's environment and costs (or, for buy-and-hold and cash, the benchmarks of
:mod:`ploutos_core.backtest.benchmarks` over the same bars and costs).

- ``buy_and_hold``: point-in-time equal-weight buy-and-hold of the listed universe.
- ``cash``: the starting capital, untouched.
- ``random``: every bar and ticker, hold / buy / sell with probabilities
  :data:`RANDOM_PROBABILITIES`, from a NumPy generator seeded with the run's seed.
- ``momentum``: cross-sectional 12-1 month momentum. On every rebalance bar (the period's first
  bar with a tradable ticker, then every :data:`REBALANCE_BARS` bars) the tradable tickers are
  ranked by their return from ``t - 252`` to ``t - 21``; the top :data:`TOP_QUANTILE` (at least
  one) becomes the target set, the others are sold. In between the target set does not change:
  its tickers are bought (the environment tops a position up to its cap, so a held position
  stays at its cap) and the others are held.
- ``mean_reversion``: short-term reversal. Each bar the tradable tickers with the worst
  :data:`REVERSAL_WINDOW`-bar return (the bottom :data:`TOP_QUANTILE`, at least one) are
  bought; a position is sold :data:`REVERSAL_HOLD_BARS` bars after it was opened.

Look-ahead. The rules read the market arrays by bar index (as
:func:`~ploutos_core.backtest.rules.momentum_rule` does): the action of bar ``t`` uses closes
and tradability up to ``t`` only. They may look back before the test period through the full
market passed in, never ahead. Their state (targets, open positions) starts on the period's
first bar, like the agent's portfolio.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ploutos_core.backtest.benchmarks import buy_and_hold_benchmark, cash_benchmark
from ploutos_core.backtest.rules import replay
from ploutos_core.backtest.simulate import BacktestRun, simulate
from ploutos_core.config import EnvConfig
from ploutos_core.env.core import BUY, HOLD, SELL, Policy
from ploutos_core.errors import ConfigError
from ploutos_core.market import MarketData

BASELINE_NAMES = ("buy_and_hold", "cash", "random", "momentum", "mean_reversion")
RANDOM_PROBABILITIES = (0.8, 0.1, 0.1)
"""Probabilities of hold, buy and sell of the random baseline."""
MOMENTUM_LOOKBACK = 252
"""Bars back to the start of the momentum return (twelve months)."""
MOMENTUM_SKIP = 21
"""Most recent bars skipped by the momentum return (one month: short-term reversal)."""
REBALANCE_BARS = 21
"""Bars between two momentum rebalances (a month)."""
TOP_QUANTILE = 0.2
"""Share of the ranked tickers the momentum (best) and mean-reversion (worst) rules buy."""
REVERSAL_WINDOW = 5
"""Bars of the return the mean-reversion rule ranks by."""
REVERSAL_HOLD_BARS = 5
"""Bars a mean-reversion position is held before it is sold."""


def _first_bar(full: MarketData, test: MarketData) -> int:
    """Index in ``full`` of the first bar ``simulate`` calls the policy on for ``test``."""
    if test.tickers != full.tickers:
        raise ValueError("the test market must have the full market's tickers, in its order")
    first = int(np.searchsorted(full.dates, test.dates[0]))
    if first >= full.T or full.dates[first] != test.dates[0]:
        raise ValueError("the test market's first date is not a date of the full market")
    active = np.flatnonzero(test.tradable[:-1].any(axis=1))
    return first + (int(active[0]) if active.size else 0)


def _quantile_count(n: int) -> int:
    return max(1, int(np.ceil(TOP_QUANTILE * n)))


def _trailing_return(close: np.ndarray, t: int, back: int, skip: int = 0) -> np.ndarray:
    """``close[t - skip] / close[t - back] - 1`` per ticker; NaN where unknown."""
    out = np.full(close.shape[1], np.nan)
    if t - back < 0:
        return out
    then, now = close[t - back].astype(np.float64), close[t - skip].astype(np.float64)
    ok = np.isfinite(then) & np.isfinite(now) & (then > 0)
    out[ok] = now[ok] / then[ok] - 1.0
    return out


def random_actions(market: MarketData, first: int, seed: int) -> np.ndarray:
    """``int64 [T, N]`` actions of the random baseline; rows before ``first`` are holds."""
    rng = np.random.default_rng(seed)
    actions = np.full((market.T, market.N), HOLD, dtype=np.int64)
    draws = rng.choice(
        np.array([HOLD, BUY, SELL]), size=(market.T - first, market.N), p=RANDOM_PROBABILITIES
    )
    actions[first:] = draws
    return actions


def momentum_12_1_actions(market: MarketData, first: int) -> np.ndarray:
    """``int64 [T, N]`` actions of the 12-1 momentum rule from bar ``first`` (see the module)."""
    actions = np.full((market.T, market.N), HOLD, dtype=np.int64)
    targets = np.zeros(market.N, dtype=bool)
    for t in range(first, market.T):
        tradable = market.tradable[t]
        if (t - first) % REBALANCE_BARS == 0:
            score = _trailing_return(market.close, t, MOMENTUM_LOOKBACK, MOMENTUM_SKIP)
            ranked = np.flatnonzero(tradable & np.isfinite(score))
            targets = np.zeros(market.N, dtype=bool)
            if ranked.size:
                best = ranked[np.argsort(-score[ranked], kind="stable")]
                targets[best[: _quantile_count(ranked.size)]] = True
            actions[t][tradable & ~targets] = SELL
        actions[t][tradable & targets] = BUY
    return actions


def mean_reversion_actions(market: MarketData, first: int) -> np.ndarray:
    """``int64 [T, N]`` actions of the short-term reversal rule from bar ``first``."""
    actions = np.full((market.T, market.N), HOLD, dtype=np.int64)
    opened = np.full(market.N, -1)  # bar each open position was bought, -1: none
    for t in range(first, market.T):
        tradable = market.tradable[t]
        due = (opened >= 0) & (t - opened >= REVERSAL_HOLD_BARS) & tradable
        actions[t][due] = SELL
        opened[due] = -1
        score = _trailing_return(market.close, t, REVERSAL_WINDOW)
        ranked = np.flatnonzero(tradable & np.isfinite(score) & ~due)
        if ranked.size:
            worst = ranked[np.argsort(score[ranked], kind="stable")]
            buy = worst[: _quantile_count(ranked.size)]
            actions[t][buy] = BUY
            opened[buy] = np.where(opened[buy] >= 0, opened[buy], t)
    return actions


def baseline_policy(
    name: str, full_market: MarketData, test_market: MarketData, seed: int
) -> Policy:
    """The rule ``name`` (``random``, ``momentum`` or ``mean_reversion``) as a policy for
    ``simulate(test_market, ...)``; ``full_market`` is the whole history it may look back on."""
    first = _first_bar(full_market, test_market)
    if name == "random":
        actions = random_actions(full_market, first, seed)
    elif name == "momentum":
        actions = momentum_12_1_actions(full_market, first)
    elif name == "mean_reversion":
        actions = mean_reversion_actions(full_market, first)
    else:
        raise ConfigError(
            f"{name!r} is not a rule baseline; choose random, momentum or mean_reversion"
        )
    return replay(actions, first)


def run_baselines(
    names: Sequence[str],
    full_market: MarketData,
    test_market: MarketData,
    env_config: EnvConfig,
    seed: int,
) -> dict[str, BacktestRun]:
    """Each baseline of ``names`` over ``test_market`` with ``env_config``'s capital and costs.

    ``test_market`` is a period of ``full_market`` (same tickers); the rules look back through
    ``full_market``. ``seed`` seeds the random baseline (the others are deterministic).
    """
    runs = {}
    for name in names:
        if name == "buy_and_hold":
            runs[name] = buy_and_hold_benchmark(test_market, env_config)
        elif name == "cash":
            runs[name] = cash_benchmark(test_market, env_config)
        elif name in BASELINE_NAMES:
            policy = baseline_policy(name, full_market, test_market, seed)
            runs[name] = simulate(test_market, env_config, policy)
        else:
            raise ConfigError(f"unknown baseline {name!r}; choose from {', '.join(BASELINE_NAMES)}")
    return runs
