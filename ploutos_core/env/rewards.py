"""The Differential Sharpe Ratio reward (Moody & Saffell) and its optional penalties.

With exponential moving estimates ``A`` and ``B`` of the first and second moments of the per-bar
portfolio return ``R`` (adaptation rate ``eta``)::

    dA_t = R_t - A_{t-1}
    dB_t = R_t**2 - B_{t-1}
    D_t  = (B_{t-1} * dA_t - 0.5 * A_{t-1} * dB_t) / (B_{t-1} - A_{t-1}**2) ** 1.5
    A_t  = A_{t-1} + eta * dA_t
    B_t  = B_{t-1} + eta * dB_t

Start of an episode: ``A_0 = 0`` and ``B_0 = prior_volatility**2``, i.e. the estimates start from a
zero-mean return with a typical per-bar volatility instead of from zero variance, where ``D`` would
divide by zero. The first reward is therefore ``R_1 / prior_volatility``, a return measured in
units of the prior volatility. The variance ``B - A**2`` is also floored at
``(VARIANCE_FLOOR_FRACTION * prior_volatility)**2``: a long run of identical returns drives the
variance estimate towards zero, and the floor keeps ``D`` finite there (it then decays to 0).

The environment's reward is ``clip(D - drawdown_penalty * drawdown - turnover_penalty * turnover,
-clip, clip)`` (:func:`shaped_reward`); both penalties are off by default.
"""

from __future__ import annotations

import numpy as np

from ploutos_core.config import RewardConfig
from ploutos_core.market.dates import BARS_PER_YEAR

VARIANCE_FLOOR_FRACTION = 0.01


class DifferentialSharpe:
    """Stateful Differential Sharpe Ratio over ``n`` independent return streams (one per sub-env).

    Parameters
    ----------
    n
        Number of streams.
    eta
        Adaptation rate of the moment estimates, in (0, 1).
    prior_volatility
        Per-bar volatility the second-moment estimate starts from (``B_0 = prior_volatility**2``).
    """

    def __init__(self, n: int, eta: float = 0.01, prior_volatility: float = 0.01) -> None:
        if not 0.0 < eta < 1.0:
            raise ValueError(f"eta must be in (0, 1), got {eta}")
        if prior_volatility <= 0.0:
            raise ValueError(f"prior_volatility must be > 0, got {prior_volatility}")
        self.eta = float(eta)
        self.prior_variance = float(prior_volatility) ** 2
        self.variance_floor = (VARIANCE_FLOOR_FRACTION * float(prior_volatility)) ** 2
        self.A = np.zeros(n)
        self.B = np.full(n, self.prior_variance)

    def reset(self, indices: np.ndarray | slice = slice(None)) -> None:
        """Restart the estimates of the streams at ``indices`` (all by default)."""
        self.A[indices] = 0.0
        self.B[indices] = self.prior_variance

    def sharpe(self, indices: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The running Sharpe ratio estimate ``A / sqrt(B - A**2)`` of the streams at ``indices``,
        annualized (``* sqrt(BARS_PER_YEAR)``), the variance floored as in :meth:`step`."""
        a, b = self.A[indices], self.B[indices]
        variance = np.maximum(b - a * a, self.variance_floor)
        return a / np.sqrt(variance) * np.sqrt(BARS_PER_YEAR)

    def step(self, returns: np.ndarray) -> np.ndarray:
        """Consume one return per stream; return ``D_t`` per stream and update ``A`` and ``B``."""
        returns = np.asarray(returns, dtype=np.float64)
        d_a = returns - self.A
        d_b = returns * returns - self.B
        variance = np.maximum(self.B - self.A * self.A, self.variance_floor)
        dsr = (self.B * d_a - 0.5 * self.A * d_b) / (variance * np.sqrt(variance))
        self.A += self.eta * d_a
        self.B += self.eta * d_b
        return dsr


def differential_sharpe_ratio(
    returns: np.ndarray, eta: float = 0.01, prior_volatility: float = 0.01
) -> np.ndarray:
    """DSR series of a return series, computed by the same code as the environment's reward.

    Parameters
    ----------
    returns
        Per-bar returns, shape ``[T]`` or ``[T, n]`` (``n`` independent streams).
    eta
        Adaptation rate of the moment estimates.
    prior_volatility
        Per-bar volatility the variance estimate starts from (see the module docstring).

    Returns
    -------
    np.ndarray
        ``D_t`` for every bar, same shape as ``returns``, float64.
    """
    returns = np.asarray(returns, dtype=np.float64)
    if returns.ndim not in (1, 2):
        raise ValueError(f"returns must be 1-D or 2-D, got shape {returns.shape}")
    series = returns.reshape(len(returns), -1)
    stream = DifferentialSharpe(series.shape[1], eta, prior_volatility)
    out = np.empty_like(series)
    for t in range(len(series)):
        out[t] = stream.step(series[t])
    return out.reshape(returns.shape)


def shaped_reward(
    dsr: np.ndarray, drawdown: np.ndarray, turnover: np.ndarray, config: RewardConfig
) -> np.ndarray:
    """The environment's reward: DSR minus the weighted penalties, clipped to ``[-clip, clip]``.

    Parameters
    ----------
    dsr
        Differential Sharpe Ratio of the bar.
    drawdown
        Current drawdown as a non-negative fraction, ``1 - equity / running peak``.
    turnover
        Traded notional of the bar divided by the equity before it.
    config
        Penalty weights and the clip bound.
    """
    reward = dsr - config.drawdown_penalty * drawdown - config.turnover_penalty * turnover
    return np.clip(reward, -config.clip, config.clip)
