"""Rule-based policies for :func:`~ploutos_core.backtest.simulate`: yardsticks that run through
the same environment, order sizing and costs as a trained agent.

:func:`momentum_rule` is the rule that knows the pattern of
:func:`~ploutos_core.data.sample.make_planted_market`: long the tickers whose trailing momentum is
positive, flat the others. It reads prices from the market arrays by bar, never the observation,
so it does not depend on the observation's layout.
"""

from __future__ import annotations

import numpy as np

from ploutos_core.env.core import BUY, HOLD, SELL, Policy
from ploutos_core.market import MarketData
from ploutos_core.market.dates import as_datetime64

MOMENTUM_WINDOW = 20
"""Default look-back of :func:`momentum_rule`, in bars (half the planted regimes' mean length)."""


def momentum_actions(market: MarketData, window: int = MOMENTUM_WINDOW) -> np.ndarray:
    """``int64 [T, N]`` actions of the momentum rule on every bar of ``market``.

    On bar ``t``, from closes up to ``t`` only: buy (the environment tops the position up to its
    cap, bar after bar) where ``close[t] > close[t - window]``, sell (close the position) where
    it is lower, hold where the ticker is not tradable at ``t`` or has no close ``window`` bars
    back (not listed yet, or ``t < window``).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 bar, got {window}")
    actions = np.full((market.T, market.N), HOLD, dtype=np.int64)
    now, then = market.close[window:], market.close[:-window]
    known = market.tradable[window:] & (then > 0)
    actions[window:][known & (now > then)] = BUY
    actions[window:][known & (now < then)] = SELL
    return actions


def momentum_rule(
    market: MarketData,
    start: str | np.datetime64,
    window: int = MOMENTUM_WINDOW,
) -> Policy:
    """The momentum rule as a policy for ``simulate(market.period(start, end), ...)``.

    ``market`` is the whole history, so the rule's look-back reaches before ``start``. The
    policy counts its calls: ``simulate`` calls it once per bar in bar order from the period's
    first bar with a tradable ticker (the environment's first valid start), so call ``i`` is
    that bar plus ``i``. It returns :func:`momentum_actions` of that bar as ``[1, N]``.
    """
    actions = momentum_actions(market, window)
    first = int(np.searchsorted(market.dates, as_datetime64(start)))
    active = np.flatnonzero(market.tradable[first:-1].any(axis=1))
    return replay(actions, first + (int(active[0]) if active.size else 0))


def replay(actions: np.ndarray, bar: int) -> Policy:
    """A policy returning ``actions[bar + i]`` (``[1, N]``) on its ``i``-th call: ``simulate``
    calls it once per bar, in bar order, from the period's first valid bar."""
    calls = 0

    def policy(_observation: np.ndarray) -> np.ndarray:
        nonlocal calls
        row = actions[bar + calls]
        calls += 1
        return row[None, :]

    return policy
