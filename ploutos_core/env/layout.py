"""The observation's layout, defined once: what :meth:`PortfolioCore.observe` writes and what the
normalization, the policies and the memory guard read.

A flat float32 vector of ``N * (F + POSITION_VALUES + 1) + PORTFOLIO_VALUES`` values:

1. every ticker's ``F`` features at bar ``t``, ticker-major (``[N, F]``);
2. the position values, value-major (``[POSITION_VALUES, N]``): every ticker's position weight
   ``shares * close / equity``, then every ticker's unrealized return ``close / entry - 1``;
3. the tradable flags (``[N]``): 1 where the ticker has a bar and features at ``t``, else 0;
4. the portfolio values (:data:`PORTFOLIO_NAMES`).

Features and position values of an untradable ticker are 0, and stay 0 after normalization, so a
ticker that is not listed yet looks the same to the policy whatever the statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POSITION_VALUES = 2
"""Per ticker: position weight, unrealized return."""
PORTFOLIO_NAMES = ("cash_weight", "trailing_return", "trailing_drawdown", "reward_sharpe")
"""Cash / equity; equity / equity ``trailing_window`` bars ago (or at the episode start) - 1;
1 - equity / the highest equity of that window; and the running Sharpe ratio estimate of the
Differential Sharpe reward's moments (annualized), the state the reward depends on."""
PORTFOLIO_VALUES = len(PORTFOLIO_NAMES)


def ticker_inputs(n_features: int) -> int:
    """Values an observation holds per ticker: its features, position values and tradable flag."""
    return n_features + POSITION_VALUES + 1


def observation_size(n_tickers: int, n_features: int) -> int:
    """Length of an observation of ``n_tickers`` tickers with ``n_features`` features each."""
    return n_tickers * ticker_inputs(n_features) + PORTFOLIO_VALUES


@dataclass(frozen=True)
class ObservationLayout:
    """Where each part of an observation of ``n_tickers`` x ``n_features`` lives.

    Parameters
    ----------
    n_tickers, n_features:
        The universe the observation describes.
    """

    n_tickers: int
    n_features: int

    @classmethod
    def of(cls, size: int, n_features: int) -> ObservationLayout:
        """The layout of an observation of length ``size``: the universe size follows from it.

        Raises
        ------
        ValueError
            When no number of tickers gives ``size``.
        """
        n_tickers, rest = divmod(size - PORTFOLIO_VALUES, ticker_inputs(n_features))
        if rest or n_tickers < 0:
            raise ValueError(
                f"an observation of {size} values is not N tickers x ({n_features} features + "
                f"{POSITION_VALUES} position values + a tradable flag) + {PORTFOLIO_VALUES} "
                "portfolio values"
            )
        return cls(n_tickers, n_features)

    @property
    def size(self) -> int:
        return observation_size(self.n_tickers, self.n_features)

    @property
    def features(self) -> slice:
        return slice(0, self.n_tickers * self.n_features)

    @property
    def positions(self) -> slice:
        start = self.n_tickers * self.n_features
        return slice(start, start + POSITION_VALUES * self.n_tickers)

    @property
    def tradable(self) -> slice:
        start = self.n_tickers * (self.n_features + POSITION_VALUES)
        return slice(start, start + self.n_tickers)

    @property
    def portfolio(self) -> slice:
        return slice(self.size - PORTFOLIO_VALUES, self.size)

    def split(self, obs: Any) -> tuple[Any, Any, Any, Any]:
        """Views of a batch ``[B, size]`` (NumPy array or torch tensor): features ``[B, N, F]``,
        position values ``[B, N, POSITION_VALUES]``, tradable flags ``[B, N]`` and portfolio
        values ``[B, PORTFOLIO_VALUES]``."""
        batch, n = obs.shape[0], self.n_tickers
        features = obs[:, self.features].reshape(batch, n, self.n_features)
        positions = obs[:, self.positions].reshape(batch, POSITION_VALUES, n).swapaxes(1, 2)
        return features, positions, obs[:, self.tradable], obs[:, self.portfolio]
