"""Input health: how much of what the policy sees in a backtest looks like nothing it saw in
training.

A normalized input at the clip bound is one the training statistics put ten standard deviations
(``clip_obs``) or more from the mean: the policy was never trained on it. A portfolio value outside
the range recorded in training is the same signal for the portfolio inputs. The backtest counts
both on every bar, per ticker over the bars it trades, so a user learns when a model is looking at
inputs unlike anything it was trained on, and on which ticker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ploutos_core.env.core import Policy
from ploutos_core.env.layout import PORTFOLIO_NAMES, ObservationLayout

CLIP_TOLERANCE = 1e-6
WARN_FRACTION = 0.05
"""A ticker with more of its inputs at the clip than this is flagged (the asset check warns)."""


@dataclass(frozen=True)
class InputHealth:
    """What :class:`InputHealthMonitor` found over a backtest.

    Attributes
    ----------
    clipped_fraction : float
        Share of all normalized inputs (tradable tickers' features and position values, and the
        portfolio values) at the clip bound.
    worst_ticker : str or None
        The ticker with the largest share of its inputs at the clip (None without a tradable bar).
    worst_clipped_fraction : float
    per_ticker : dict[str, float]
        Each ticker's share of inputs at the clip, over the bars it trades.
    new_tickers : dict[str, float]
        The same for tickers the model was not trained on (a policy shared across tickers can
        trade them).
    portfolio_out_of_range : dict[str, float]
        Per portfolio value, the share of bars outside its range in training.
    """

    clipped_fraction: float
    worst_ticker: str | None
    worst_clipped_fraction: float
    per_ticker: dict[str, float]
    new_tickers: dict[str, float] = field(default_factory=dict)
    portfolio_out_of_range: dict[str, float] = field(default_factory=dict)

    @property
    def flagged(self) -> list[str]:
        """Tickers above :data:`WARN_FRACTION`, worst first."""
        above = [t for t, f in self.per_ticker.items() if f > WARN_FRACTION]
        return sorted(above, key=lambda t: -self.per_ticker[t])

    def to_dict(self) -> dict[str, Any]:
        return {
            "clipped_fraction": self.clipped_fraction,
            "worst_ticker": self.worst_ticker,
            "worst_clipped_fraction": self.worst_clipped_fraction,
            "per_ticker": self.per_ticker,
            "new_tickers": self.new_tickers,
            "portfolio_out_of_range": self.portfolio_out_of_range,
            "warn_fraction": WARN_FRACTION,
        }


class InputHealthMonitor:
    """Counts clipped and out-of-range inputs of every observation a policy is given.

    Parameters
    ----------
    obs_stats:
        The model's frozen normalization (a ``PooledVecNormalize`` in evaluation mode).
    n_features:
        Features per ticker.
    """

    def __init__(self, obs_stats: Any, n_features: int) -> None:
        self.obs_stats = obs_stats
        self.n_features = n_features
        self._clipped: np.ndarray | None = None
        self._inputs: np.ndarray | None = None
        self._portfolio_out = np.zeros(len(PORTFOLIO_NAMES))
        self._portfolio_clipped = 0
        self._bars = 0

    def watch(self, policy: Policy) -> Policy:
        """``policy``, recording each observation before it acts on it."""

        def act(obs: np.ndarray) -> np.ndarray:
            self.observe(obs)
            return policy(obs)

        return act

    def observe(self, obs: np.ndarray) -> None:
        """Count one batch of raw observations ``[B, size]``."""
        raw = np.asarray(obs, dtype=np.float32).reshape(-1, np.shape(obs)[-1])
        layout = ObservationLayout.of(raw.shape[1], self.n_features)
        normalized = self.obs_stats.normalize_obs(raw)
        features, positions, tradable, portfolio = layout.split(normalized)
        clip = self.obs_stats.clip_obs - CLIP_TOLERANCE
        mask = tradable > 0.5
        at_clip = (np.abs(features) >= clip).sum(axis=2) + (np.abs(positions) >= clip).sum(axis=2)
        if self._clipped is None:
            self._clipped = np.zeros(layout.n_tickers)
            self._inputs = np.zeros(layout.n_tickers)
        self._clipped += (at_clip * mask).sum(axis=0)
        self._inputs += mask.sum(axis=0) * (features.shape[2] + positions.shape[2])
        self._portfolio_clipped += int((np.abs(portfolio) >= clip).sum())
        stats = self.obs_stats.obs_rms
        raw_portfolio = raw[:, layout.portfolio]
        outside = (raw_portfolio < stats.portfolio_low) | (raw_portfolio > stats.portfolio_high)
        self._portfolio_out += outside.sum(axis=0)
        self._bars += len(raw)

    def report(self, tickers: Sequence[str], trained_on: Sequence[str]) -> InputHealth:
        """The counts as fractions; ``trained_on`` is the model's training universe."""
        clipped = self._clipped if self._clipped is not None else np.zeros(len(tickers))
        inputs = self._inputs if self._inputs is not None else np.zeros(len(tickers))
        per_ticker = {
            t: float(c / n) if n else 0.0 for t, c, n in zip(tickers, clipped, inputs, strict=True)
        }
        traded = [t for t, n in zip(tickers, inputs, strict=True) if n]
        worst = max(traded, key=lambda t: per_ticker[t]) if traded else None
        portfolio_inputs = self._bars * len(PORTFOLIO_NAMES)
        total = float(inputs.sum()) + portfolio_inputs
        known = set(trained_on)
        all_clipped = float(clipped.sum() + self._portfolio_clipped)
        return InputHealth(
            clipped_fraction=all_clipped / total if total else 0.0,
            worst_ticker=worst,
            worst_clipped_fraction=per_ticker[worst] if worst else 0.0,
            per_ticker=per_ticker,
            new_tickers={t: f for t, f in per_ticker.items() if t not in known},
            portfolio_out_of_range={
                name: float(out / self._bars) if self._bars else 0.0
                for name, out in zip(PORTFOLIO_NAMES, self._portfolio_out, strict=True)
            },
        )
