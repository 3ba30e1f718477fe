"""The reference environment: the training guide's original design, written honestly.

One gymnasium env per portfolio, per-ticker series held in a list (the original kept a dict of
per-ticker frames; here they are NumPy rows, which is already faster than ``DataFrame.iloc``), and
a ``step`` that loops over the tickers in Python to execute orders, mark equity and build the
observation. It follows exactly the rules of :mod:`ploutos_core.env.core` (same observation, fills,
costs, reward), so the benchmarks compare speed, not different work, and the tests can check the
vectorized core against this independent, ticker-by-ticker implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from ploutos_core.config import EnvConfig
from ploutos_core.env.core import MIN_ORDER_FRACTION
from ploutos_core.env.rewards import VARIANCE_FLOOR_FRACTION
from ploutos_core.market import MarketData


@dataclass(frozen=True)
class TickerSeries:
    """One ticker over the calendar (the original's per-ticker frame): feature rows as an array,
    prices and the tradable flag as Python lists (scalar reads from lists are the fast path in
    Python)."""

    features: np.ndarray
    open: list[float]
    close: list[float]
    tradable: list[bool]
    last_tradable: int


def ticker_series(market: MarketData) -> list[TickerSeries]:
    """Split the market into per-ticker series (copies, as the original held them)."""
    series = []
    for n in range(market.N):
        bars = np.flatnonzero(market.tradable[:, n])
        series.append(
            TickerSeries(
                features=market.features[:, n, :].copy(),
                open=market.open[:, n].astype(np.float64).tolist(),
                close=market.close[:, n].astype(np.float64).tolist(),
                tradable=market.tradable[:, n].tolist(),
                last_tradable=int(bars[-1]) if len(bars) else -1,
            )
        )
    return series


class ReferencePortfolioEnv(gym.Env[np.ndarray, np.ndarray]):
    """A single portfolio whose step loops over tickers in Python.

    Parameters
    ----------
    series
        Per-ticker series from :func:`ticker_series` (shared by the envs of one process).
    dates
        The market's calendar.
    config
        Same settings as the vectorized environment.
    seed
        Seeds ``np_random``, which draws the episode starts as the vectorized env does.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self,
        series: list[TickerSeries],
        dates: np.ndarray,
        config: EnvConfig,
        seed: int | None = None,
    ) -> None:
        self.series = series
        self.config = config
        self.n_bars = len(dates)
        self.n_features = series[0].features.shape[1]
        n = len(series)
        self.observation_space = spaces.Box(
            -np.inf, np.inf, shape=(n * (self.n_features + 3) + 4,), dtype=np.float32
        )
        self.action_space = spaces.MultiDiscrete([3] * n)
        candidates = [t for t in range(self.n_bars - 1) if any(s.tradable[t] for s in series)]
        full = [t for t in candidates if t <= self.n_bars - 1 - config.episode_length]
        self.starts = np.array(full or candidates)
        if seed is not None:
            self._np_random, self._np_random_seed = gym.utils.seeding.np_random(seed)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        n = len(self.series)
        self.t = int(self.starts[self.np_random.integers(0, len(self.starts), size=1)[0]])
        self.steps = 0
        self.cash = self.config.initial_cash
        self.equity = self.cash
        self.peak = self.cash
        self.history = [self.cash]  # equity of every step of the episode
        self.shares = [0.0] * n
        self.basis = [0.0] * n
        self.dsr_a = 0.0
        self.dsr_b = self.config.reward.prior_volatility**2
        self.episode_reward = 0.0
        return self._observation(), {"equity": self.equity}

    def _observation(self) -> np.ndarray:
        n, t = len(self.series), self.t
        features = np.concatenate([s.features[t] for s in self.series])
        weights, unrealized = [0.0] * n, [0.0] * n
        for i, s in enumerate(self.series):
            if self.shares[i] > 0.0 and s.tradable[t]:
                value = self.shares[i] * s.close[t]
                weights[i] = value / self.equity
                unrealized[i] = value / self.basis[i] - 1.0
        tradable = [1.0 if s.tradable[t] else 0.0 for s in self.series]
        window = self.history[-(self.config.window + 1) :]
        reward = self.config.reward
        floor = (VARIANCE_FLOOR_FRACTION * reward.prior_volatility) ** 2
        sharpe = self.dsr_a / max(self.dsr_b - self.dsr_a**2, floor) ** 0.5 * 252**0.5
        portfolio = [
            self.cash / self.equity,
            self.equity / window[0] - 1.0,
            1.0 - self.equity / max(window),
            sharpe if self.config.observe_reward_state else 0.0,
        ]
        values = weights + unrealized + tradable + portfolio
        return np.concatenate([features, np.array(values, np.float32)])

    def _differential_sharpe(self, r: float) -> float:
        reward = self.config.reward
        floor = (VARIANCE_FLOOR_FRACTION * reward.prior_volatility) ** 2
        a, b = self.dsr_a, self.dsr_b
        d_a, d_b = r - a, r * r - b
        variance = max(b - a * a, floor)
        dsr = (b * d_a - 0.5 * a * d_b) / variance**1.5
        self.dsr_a, self.dsr_b = a + reward.eta * d_a, b + reward.eta * d_b
        return dsr

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        config, rate = self.config, self.config.costs.rate
        t0, t1 = self.t, self.t + 1
        action = np.asarray(action).tolist()
        traded = 0.0
        for i, s in enumerate(self.series):
            if self.shares[i] <= 0.0:
                continue
            if s.last_tradable <= t0:
                price = s.close[t0]
            elif s.tradable[t1] and action[i] == 2:
                price = s.open[t1]
            else:
                continue
            proceeds = self.shares[i] * price
            self.cash += proceeds * (1.0 - rate)
            traded += proceeds
            self.shares[i] = 0.0
            self.basis[i] = 0.0
        buys = [i for i, s in enumerate(self.series) if s.tradable[t1] and action[i] == 1]
        want = config.buy_fraction * self.cash
        budget = len(buys) * want * (1.0 + rate)
        order = want * self.cash / budget if budget > self.cash else want
        if order < MIN_ORDER_FRACTION * config.initial_cash:
            order = 0.0
        equity_open = self.cash
        for i, s in enumerate(self.series):
            if self.shares[i] > 0.0:
                equity_open += self.shares[i] * (s.open[t1] if s.tradable[t1] else s.close[t0])
        for i in buys:
            price = self.series[i].open[t1]
            room = config.max_position_weight * equity_open - self.shares[i] * price
            notional = max(min(order, room), 0.0)
            self.cash -= notional * (1.0 + rate)
            self.shares[i] += notional / price
            self.basis[i] += notional
            traded += notional
        self.cash = max(self.cash, 0.0)
        equity = self.cash
        for i, s in enumerate(self.series):
            equity += self.shares[i] * s.close[t1]
        r = equity / self.equity - 1.0
        turnover = traded / self.equity
        self.peak = max(self.peak, equity)
        drawdown = 1.0 - equity / self.peak
        reward = self._differential_sharpe(r)
        reward -= (
            config.reward.drawdown_penalty * drawdown + config.reward.turnover_penalty * turnover
        )
        reward = min(max(reward, -config.reward.clip), config.reward.clip)
        self.equity, self.t = equity, t1
        self.history.append(equity)
        self.steps += 1
        self.episode_reward += reward
        terminated = equity < config.min_equity_fraction * config.initial_cash
        truncated = not terminated and (
            t1 >= self.n_bars - 1 or self.steps >= config.episode_length
        )
        info: dict[str, Any] = {"equity": equity}
        if terminated or truncated:
            info["episode"] = {"r": self.episode_reward, "l": self.steps, "t": 0.0}
        return self._observation(), float(reward), terminated, truncated, info
