"""The vectorized portfolio core: ``n_envs`` long-only portfolios over one shared market.

Every array of state is shaped ``[n_envs]`` or ``[n_envs, n_tickers]``; a step is a fixed number
of NumPy operations whatever the number of tickers. :class:`~ploutos_core.env.PortfolioVecEnv` and
:class:`~ploutos_core.env.PortfolioEnv` are thin faces over it.

Execution of the actions decided on bar ``t`` (its observation uses data up to bar ``t``'s close):

1. Delisting: a held ticker with no tradable bar after ``t`` in the market the environment runs
   on is sold at its last close (``close[t]``, forward-filled), paying the cost rate like any
   sale. This happens before the orders, whatever the action.
2. Sells (action 2) on tickers tradable at ``t + 1`` close the whole position at ``open[t+1]``;
   proceeds minus cost go to cash.
3. Buys (action 1) on tickers tradable at ``t + 1``: each wants ``buy_fraction * cash`` (cash
   after the sells). When the wanted buys plus their costs exceed the cash they are scaled down
   proportionally. Each is then capped so that the position's value at ``open[t+1]`` does not
   exceed ``max_position_weight`` of the equity valued at ``open[t+1]`` (untradable holdings at
   their last close). Fractional shares; the entry price is the size-weighted average of the
   fill prices (costs excluded). When the amount per buy is below ``MIN_ORDER_FRACTION`` of the
   initial cash (the cash is spent), no buy is made.
4. Cost of every fill: ``|notional| * costs.rate``, deducted from cash.
5. Orders on tickers not tradable at ``t + 1`` are ignored (hold).
6. Equity is marked at ``close[t+1]`` (forward-filled over missing days):
   ``equity = cash + sum(shares * close[t+1])``.
7. Reward: Differential Sharpe Ratio of ``R = equity[t+1] / equity[t] - 1`` minus the optional
   drawdown and turnover penalties, clipped (:mod:`ploutos_core.env.rewards`).

Observation at bar ``t`` (layout in :mod:`ploutos_core.env.layout`): the features of every
ticker, the position weights ``shares * close[t] / equity`` and unrealized returns
``close[t] / entry_price - 1`` (both zero for tickers without a position or not tradable at
``t``), the tradable flags, then the cash weight ``cash / equity``, the trailing return
``equity / equity[t - W] - 1`` and the trailing drawdown ``1 - equity / max(equity[t - W..t])``
over the last ``W`` bars (``trailing_window``, default ``episode_length``; an episode's first
bars reach back to its start), and the running Sharpe estimate ``A / sqrt(B - A**2) * sqrt(252)``
of the reward's moments (0 with ``observe_reward_state: false``). The portfolio values therefore
mean the same in a training episode and in a backtest that runs for years, and the value
function sees the state the Differential Sharpe reward depends on.

Episodes start at a bar drawn by the caller's generator among the valid starts (a tradable ticker
and room for at least one step; when the period allows, only starts leaving room for a full
``episode_length``), last ``episode_length`` steps, are truncated at the last bar of the market,
and terminate when equity falls below ``min_equity_fraction`` of the starting cash. With
``start_date`` every episode starts at the first valid bar on or after that date; with
``run_to_end`` episodes run to the last bar, whatever ``episode_length``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ploutos_core.config import EnvConfig
from ploutos_core.env.layout import ObservationLayout
from ploutos_core.env.rewards import DifferentialSharpe, shaped_reward
from ploutos_core.errors import ConfigError, DataError
from ploutos_core.market import MarketData
from ploutos_core.market.dates import BARS_PER_YEAR, as_datetime64, iso_day

HOLD, BUY, SELL = 0, 1, 2
Policy = Callable[[np.ndarray], np.ndarray]
"""Observations ``float32 [1, obs_size]`` -> actions ``[1, n_tickers]`` (0 hold, 1 buy, 2 sell)."""
_TINY = np.finfo(np.float64).tiny
MIN_ORDER_FRACTION = 1e-6
"""Buys smaller than this fraction of the initial cash are dropped: once the cash is spent, what
is left is rounding dust, and orders of dust would open meaningless positions."""


class StepResult(NamedTuple):
    """Per-env outcome of one step, each ``[n_envs]``."""

    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    equity: np.ndarray
    returns: np.ndarray


class _Fill(NamedTuple):
    """The outcome of one bar's orders, each ``[E, N]`` but ``cash [E]``."""

    sold: np.ndarray
    proceeds: np.ndarray
    notional: np.ndarray
    bought: np.ndarray
    cash: np.ndarray
    cost_basis: np.ndarray
    shares: np.ndarray


class PortfolioCore:
    """State and dynamics of ``n_envs`` portfolios (see the module docstring for the rules).

    Parameters
    ----------
    market
        Shared read-only market arrays (the period the environment may use).
    config
        Episode, cash, order sizing, costs and reward settings.
    n_envs
        Number of independent portfolios.
    start_date
        Start every episode at the first valid bar on or after this date (backtest mode).
    run_to_end
        Run episodes to the last bar of ``market`` instead of ``episode_length`` steps.

    Attributes
    ----------
    t : np.ndarray
        ``int64 [E]`` current bar of each env.
    cash, equity : np.ndarray
        ``float64 [E]``.
    shares, cost_basis : np.ndarray
        ``float64 [E, N]`` shares held and the notional paid for them (costs excluded);
        :attr:`entry_price` is their ratio.
    last_fill_shares, last_fill_price, last_fill_cost : np.ndarray
        ``float64 [E, N]`` fills of the last step (signed shares, + bought, - sold; price and
        cost 0 where nothing filled), computed on access. They survive a reset, so a caller can
        read the fills of an episode's final step after an automatic reset.
    fill_index : np.ndarray
        ``int64 [E]`` bar at which the last step's fills happened (``t`` after the step).
    flat_features : np.ndarray
        ``float32 [T, N * F]`` view (not a copy) of ``market.features``, one row per bar.

    Notes
    -----
    Besides views of the market, the core holds two float64 ``[T, N]`` price tables, the close
    and the value at the open (``2 * T * N * 8`` bytes, 20 MB at 500 tickers x 2520 bars, once
    per core whatever ``n_envs``), so that the hot path does no dtype conversions.
    """

    def __init__(
        self,
        market: MarketData,
        config: EnvConfig,
        n_envs: int,
        *,
        start_date: str | np.datetime64 | None = None,
        run_to_end: bool = False,
    ) -> None:
        if n_envs < 1:
            raise ConfigError(f"n_envs must be >= 1, got {n_envs}")
        self.market = market
        self.config = config
        self.n_envs = n_envs
        self.run_to_end = run_to_end
        T, N, F = market.T, market.N, market.F
        self.layout = ObservationLayout(N, F)
        self.obs_size = self.layout.size
        self.flat_features = market.features.reshape(T, N * F)
        tradable = market.tradable
        ever = tradable.any(axis=0)
        last_tradable = np.where(ever, T - 1 - np.argmax(tradable[::-1], axis=0), -1)
        # Tickers that stop trading before the last bar, and their last tradable bar.
        self._stopping = np.flatnonzero(last_tradable < T - 1)
        self._stop_bar = last_tradable[self._stopping]
        self._close = market.close.astype(np.float64)
        # What a holding is worth at the open of bar t: open[t] where the ticker trades, else its
        # last close. Orders fill only where it trades, i.e. at open[t]; a stopped ticker's
        # forced sale gets its last close. Before listing (price 0, nothing held or bought) 1.0
        # keeps notional / price finite.
        last_close = np.vstack([market.open[:1], market.close[:-1]])
        at_open = np.where(tradable, market.open, last_close)
        self._open_value = np.where(at_open > 0.0, at_open, 1.0).astype(np.float64)
        self._rate = config.costs.rate
        self._min_order = MIN_ORDER_FRACTION * config.initial_cash
        self.starts = self._valid_starts(start_date)
        E = n_envs
        self.t = np.zeros(E, dtype=np.int64)
        self.steps = np.zeros(E, dtype=np.int64)
        self.cash = np.zeros(E)
        self.equity = np.zeros(E)
        self.peak = np.zeros(E)
        # Equity of the last trailing_window + 1 steps, the current step's at steps % (W + 1).
        self._history = np.zeros((E, config.window + 1))
        self.shares = np.zeros((E, N))
        self.cost_basis = np.zeros((E, N))
        self._sold = np.zeros((E, N))
        self._bought = np.zeros((E, N))
        self._fill_price = np.zeros((E, N))
        self._proceeds = np.zeros((E, N))
        self._notional = np.zeros((E, N))
        self.fill_index = np.zeros(E, dtype=np.int64)
        self.dsr = DifferentialSharpe(E, config.reward.eta, config.reward.prior_volatility)
        self._episode_reward = np.zeros(E)
        self._episode_turnover = np.zeros(E)
        self._episode_costs = np.zeros(E)
        self._return_mean = np.zeros(E)
        self._return_m2 = np.zeros(E)
        self.reset(np.arange(E), np.full(E, self.starts[0]))

    def _valid_starts(self, start_date: str | np.datetime64 | None) -> np.ndarray:
        market = self.market
        # A portfolio followed to the end may start on the last bar: it is observed there (the
        # next session's orders) and never stepped. An episode needs a bar after its start.
        last_start = market.T if self.run_to_end and start_date is not None else market.T - 1
        candidates = np.nonzero(market.tradable[:last_start].any(axis=1))[0]
        if len(candidates) == 0:
            raise DataError(
                "the market has no bar with a tradable ticker followed by another bar; "
                "give the environment a longer period or tickers with features in it"
            )
        if start_date is not None:
            first = np.searchsorted(market.dates[candidates], as_datetime64(start_date))
            if first == len(candidates):
                raise DataError(
                    f"no bar on or after {start_date} can start an episode: the last is "
                    f"{iso_day(market.dates[candidates[-1]])}"
                )
            return candidates[first : first + 1]
        if self.run_to_end:
            return candidates[:1]
        full = candidates[candidates <= market.T - 1 - self.config.episode_length]
        return full if len(full) else candidates

    def draw_starts(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """``k`` start bars drawn uniformly from the valid starts with ``rng``."""
        return self.starts[rng.integers(0, len(self.starts), size=k)]

    def reset(self, envs: np.ndarray, starts: np.ndarray) -> None:
        """Start new episodes for ``envs`` at bars ``starts``: all cash, no position."""
        cash = self.config.initial_cash
        self.t[envs] = starts
        self.steps[envs] = 0
        self.cash[envs] = cash
        self.equity[envs] = cash
        self.peak[envs] = cash
        self._history[envs] = cash
        self.shares[envs] = 0.0
        self.cost_basis[envs] = 0.0
        self.dsr.reset(envs)
        for accumulator in (
            self._episode_reward,
            self._episode_turnover,
            self._episode_costs,
            self._return_mean,
            self._return_m2,
        ):
            accumulator[envs] = 0.0

    @property
    def entry_price(self) -> np.ndarray:
        """``float64 [E, N]`` size-weighted average fill price of each position (0 without one)."""
        return np.divide(
            self.cost_basis, self.shares, out=np.zeros_like(self.shares), where=self.shares > 0.0
        )

    @property
    def last_fill_shares(self) -> np.ndarray:
        """``float64 [E, N]`` shares filled in the last step: + bought, - sold."""
        return self._bought - self._sold

    @property
    def last_fill_price(self) -> np.ndarray:
        """``float64 [E, N]`` price of the last step's fills (0 where nothing filled)."""
        filled = (self._sold > 0.0) | (self._bought > 0.0)
        return np.where(filled, self._fill_price, 0.0)

    @property
    def last_fill_cost(self) -> np.ndarray:
        """``float64 [E, N]`` cost of the last step's fills: ``|notional| * costs.rate``."""
        return (self._proceeds + self._notional) * self._rate

    def observe(self, envs: np.ndarray | None = None) -> np.ndarray:
        """Observations of ``envs`` (all by default) at their current bar, a new float32 array."""
        sel: slice | np.ndarray = slice(None) if envs is None else envs
        t = self.t[sel]
        N = self.market.N
        nf = self.flat_features.shape[1]
        obs = np.empty((len(t), self.obs_size), dtype=np.float32)
        # One contiguous row copy per env: faster than a fancy-indexed gather of [E, N * F].
        for row, bar in enumerate(t.tolist()):
            obs[row, :nf] = self.flat_features[bar]
        shares = self.shares[sel]
        tradable = self.market.tradable[t]
        held = ((shares > 0.0) & tradable).astype(np.float64)
        value = shares * self._close[t]
        value *= held
        equity = self.equity[sel]
        obs[:, nf : nf + N] = value * (1.0 / equity)[:, None]
        # value / cost basis = close / entry price where held; 0 elsewhere (value is 0 there).
        unrealized = value / np.maximum(self.cost_basis[sel], _TINY)
        unrealized -= held
        obs[:, nf + N : nf + 2 * N] = unrealized
        obs[:, self.layout.tradable] = tradable
        history = self._history[sel]
        start = history[np.arange(len(t)), (self.steps[sel] + 1) % history.shape[1]]
        portfolio = obs[:, self.layout.portfolio]
        portfolio[:, 0] = self.cash[sel] / equity
        portfolio[:, 1] = equity / start - 1.0
        portfolio[:, 2] = 1.0 - equity / history.max(axis=1)
        portfolio[:, 3] = self.dsr.sharpe(sel) if self.config.observe_reward_state else 0.0
        return obs

    def step(self, actions: np.ndarray) -> StepResult:
        """Execute ``actions`` (``[n_envs, n_tickers]`` of 0 hold, 1 buy, 2 sell) for one bar.

        This is the hot path of training: masks are float arrays that multiply (faster than
        ``np.where`` or boolean multiplies) and the rare stopped tickers are handled on the few
        entries concerned.
        """
        config = self.config
        rate = self._rate
        actions = np.asarray(actions).reshape(self.n_envs, self.market.N)
        t0 = self.t
        t1 = t0 + 1
        tradable1 = self.market.tradable[t1]
        open1 = self._open_value[t1]
        shares = self.shares
        delisted = self._delisted(shares > 0.0, t0)
        fill = self._fill(actions, tradable1, open1, delisted)
        sold, proceeds, notional, bought = fill.sold, fill.proceeds, fill.notional, fill.bought
        cash, basis, new_shares = fill.cash, fill.cost_basis, fill.shares
        sell_total, buy_total = proceeds.sum(axis=1), notional.sum(axis=1)

        equity0 = self.equity
        equity1 = cash + (new_shares * self._close[t1]).sum(axis=1)
        returns = equity1 / equity0 - 1.0
        traded = sell_total + buy_total
        turnover = traded / equity0
        peak = np.maximum(self.peak, equity1)
        drawdown = 1.0 - equity1 / peak
        reward = shaped_reward(self.dsr.step(returns), drawdown, turnover, config.reward)

        self._sold, self._bought, self._fill_price = sold, bought, open1
        self._proceeds, self._notional = proceeds, notional
        self.fill_index = t1.copy()
        self.t = t1
        self.steps += 1
        self._history[np.arange(self.n_envs), self.steps % self._history.shape[1]] = equity1
        self.cash = cash
        self.shares = new_shares
        self.cost_basis = basis
        self.equity = equity1
        self.peak = peak

        self._episode_reward += reward
        self._episode_turnover += turnover
        self._episode_costs += traded * rate
        delta = returns - self._return_mean
        self._return_mean += delta / self.steps
        self._return_m2 += delta * (returns - self._return_mean)

        terminated = equity1 < config.min_equity_fraction * config.initial_cash
        at_end = t1 >= self.market.T - 1
        if not self.run_to_end:
            at_end |= self.steps >= config.episode_length
        truncated = at_end & ~terminated
        return StepResult(reward, terminated, truncated, equity1, returns)

    def _fill(
        self,
        actions: np.ndarray,
        tradable1: np.ndarray,
        open1: np.ndarray,
        delisted: np.ndarray | None,
    ) -> _Fill:
        """Rules 1-5 of the module docstring: ``actions`` filled at the prices ``open1`` where
        ``tradable1``, forced sales of ``delisted`` first; the state does not change."""
        config = self.config
        rate = self._rate
        shares = self.shares
        selling = (shares > 0.0) & tradable1
        selling &= actions == SELL
        if delisted is not None:
            # A stopped ticker is not tradable at t + 1: its open value is its last close.
            selling |= delisted
        sold_mask = selling.astype(np.float64)
        sold = shares * sold_mask
        proceeds = sold * open1
        cash = self.cash + proceeds.sum(axis=1) * (1.0 - rate)
        shares = shares - sold
        basis = self.cost_basis - self.cost_basis * sold_mask

        buying = tradable1 & (actions == BUY)
        buy_mask = buying.astype(np.float64)
        want = config.buy_fraction * cash
        budget = buy_mask.sum(axis=1) * want * (1.0 + rate)
        scale = np.divide(cash, budget, out=np.ones_like(cash), where=budget > cash)
        order = want * scale
        order[order < self._min_order] = 0.0
        at_open = shares * open1
        equity_open = cash + at_open.sum(axis=1)
        room = (config.max_position_weight * equity_open)[:, None] - at_open
        notional = np.minimum(order[:, None], room)
        notional *= buy_mask
        np.maximum(notional, 0.0, out=notional)
        cash -= notional.sum(axis=1) * (1.0 + rate)
        np.maximum(cash, 0.0, out=cash)  # spending all the cash can leave -1e-11 of rounding
        bought = notional / open1
        basis += notional
        return _Fill(sold, proceeds, notional, bought, cash, basis, shares + bought)

    def preview(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(shares [E, N], cash [E])`` after ``actions`` on the current bar, filled by the rules
        of :meth:`step` at the current close (the next open is not known yet) where a ticker
        trades now; no forced sale (whether a ticker stops trading is not known yet). For a
        portfolio's target weights before the next bar exists; the state does not change."""
        actions = np.asarray(actions).reshape(self.n_envs, self.market.N)
        t = self.t
        close = np.where(self._close[t] > 0.0, self._close[t], 1.0)
        fill = self._fill(actions, self.market.tradable[t], close, None)
        return fill.shares, fill.cash

    def _delisted(self, held: np.ndarray, t0: np.ndarray) -> np.ndarray | None:
        """``[E, N]`` held positions in tickers with no tradable bar after ``t0``, or None."""
        if len(self._stopping) == 0:
            return None
        gone = held[:, self._stopping] & (self._stop_bar <= t0[:, None])
        if not gone.any():
            return None
        delisted = np.zeros_like(held)
        delisted[:, self._stopping] = gone
        return delisted

    def episode_info(self, env: int) -> dict[str, Any]:
        """Statistics of ``env``'s episode so far, in SB3 Monitor format plus our extras.

        ``episode_sharpe`` is ``mean(R) / std(R, ddof=1) * sqrt(252)`` of the per-bar returns (0
        with fewer than two bars or a zero deviation), ``episode_turnover`` the sum of the per-bar
        turnovers (traded notional / equity before the bar) and ``episode_costs`` the costs paid,
        in currency.
        """
        n = int(self.steps[env])
        m2 = float(self._return_m2[env])
        sharpe = 0.0
        if n > 1 and m2 > 0.0:
            sharpe = float(self._return_mean[env]) / np.sqrt(m2 / (n - 1)) * np.sqrt(BARS_PER_YEAR)
        return {
            "episode": {"r": float(self._episode_reward[env]), "l": n, "t": 0.0},
            "episode_sharpe": float(sharpe),
            "episode_turnover": float(self._episode_turnover[env]),
            "episode_costs": float(self._episode_costs[env]),
        }
