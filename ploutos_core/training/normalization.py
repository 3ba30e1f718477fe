"""Observation and reward normalization: SB3's ``VecNormalize`` with observation statistics pooled
per feature across tickers, over the tradable (ticker, bar) cells only.

Per-element statistics (SB3's) give every ticker its own mean and variance for each feature. A
ticker without a tradable bar in the training period then has inputs of exactly 0 throughout
training, its variance collapses to about 1e-8, and in the test period every one of its inputs is
clipped to the bound: the policy trades it on garbage, silently. Pooled statistics have one mean
and variance per feature (and per position value), fitted on the cells where a ticker trades, so
a ticker that lists after training is normalized like every other one; untradable cells are 0
after normalization, not before. The portfolio values keep per-element statistics, and their
range in training is recorded so a backtest can say when it leaves that range.

The statistics do not depend on the number of tickers: the same normalization reads a universe
of any size (a policy that shares its weights across tickers can trade another universe).
Saved statistics (``vecnormalize.pkl``) pickle these classes by their path, this module's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from ploutos_core.env.layout import PORTFOLIO_VALUES, POSITION_VALUES, ObservationLayout

__all__ = ["PooledObsStats", "PooledVecNormalize"]


class PooledObsStats(RunningMeanStd):
    """Running statistics of observations, pooled per feature across tradable tickers.

    A ``RunningMeanStd`` because ``VecNormalize`` asserts that type; its own ``mean`` and ``var``
    are unused scalars. The statistics are in :attr:`features` (``[F]``), :attr:`positions`
    (``[POSITION_VALUES]``) and :attr:`portfolio` (``[PORTFOLIO_VALUES]``), updated exactly as
    SB3 updates its own (Chan's parallel algorithm, float64).

    Parameters
    ----------
    n_features:
        Features per ticker (the universe size follows from each observation's length).
    epsilon:
        Initial count, as SB3's.
    """

    def __init__(self, n_features: int, epsilon: float = 1e-4) -> None:
        super().__init__(epsilon=epsilon, shape=())
        self.n_features = n_features
        self.features = RunningMeanStd(epsilon, (n_features,))
        self.positions = RunningMeanStd(epsilon, (POSITION_VALUES,))
        self.portfolio = RunningMeanStd(epsilon, (PORTFOLIO_VALUES,))
        self.portfolio_low = np.full(PORTFOLIO_VALUES, np.inf)
        self.portfolio_high = np.full(PORTFOLIO_VALUES, -np.inf)

    def layout(self, size: int) -> ObservationLayout:
        return ObservationLayout.of(size, self.n_features)

    def update(self, arr: np.ndarray) -> None:
        """Add a batch of observations ``[B, size]``."""
        obs = np.asarray(arr).reshape(-1, np.shape(arr)[-1])
        features, positions, tradable, portfolio = self.layout(obs.shape[1]).split(obs)
        mask = tradable.reshape(-1) > 0.5
        count = int(mask.sum())
        if count:
            _update_masked(self.features, features.reshape(-1, self.n_features), mask, count)
            _update_masked(self.positions, positions.reshape(-1, POSITION_VALUES), mask, count)
        self.portfolio.update(portfolio.astype(np.float64))
        np.minimum(self.portfolio_low, portfolio.min(axis=0), out=self.portfolio_low)
        np.maximum(self.portfolio_high, portfolio.max(axis=0), out=self.portfolio_high)

    def normalize(self, obs: np.ndarray, clip: float, epsilon: float) -> np.ndarray:
        """``obs`` (``[size]`` or ``[B, size]``) normalized in float32, clipped to ``[-clip,
        clip]``; untradable tickers' features and position values are 0, the flags unchanged."""
        batch = np.asarray(obs, dtype=np.float32).reshape(-1, np.shape(obs)[-1])
        layout = self.layout(batch.shape[1])
        out = np.empty_like(batch)
        mask = batch[:, layout.tradable]
        out[:, layout.features] = _scaled(
            batch[:, layout.features].reshape(len(batch), -1, self.n_features),
            self.features, epsilon, clip, mask[:, :, None],
        ).reshape(len(batch), -1)
        positions = batch[:, layout.positions].reshape(len(batch), POSITION_VALUES, -1)
        out[:, layout.positions] = _scaled(
            positions.swapaxes(1, 2), self.positions, epsilon, clip, mask[:, :, None]
        ).swapaxes(1, 2).reshape(len(batch), -1)
        out[:, layout.tradable] = mask
        out[:, layout.portfolio] = _scaled(
            batch[:, layout.portfolio], self.portfolio, epsilon, clip, None
        )
        return out.reshape(np.shape(obs))

    def is_finite(self) -> bool:
        """Whether every statistic is finite (NaN in the observations makes them NaN)."""
        parts = (self.features, self.positions, self.portfolio)
        return all(np.isfinite(p.mean).all() and np.isfinite(p.var).all() for p in parts)

    def copy(self) -> PooledObsStats:
        new = PooledObsStats(self.n_features)
        for name in ("features", "positions", "portfolio"):
            setattr(new, name, getattr(self, name).copy())
        new.portfolio_low = self.portfolio_low.copy()
        new.portfolio_high = self.portfolio_high.copy()
        return new


def _update_masked(stats: RunningMeanStd, values: np.ndarray, mask: np.ndarray, count: int) -> None:
    """Update ``stats`` with the rows of ``values`` ``[M, k]`` where ``mask``, without gathering
    them: two matrix-vector products give the sums."""
    weights = mask.astype(np.float32)
    total = (weights @ values).astype(np.float64)
    squares = (weights @ (values * values)).astype(np.float64)
    mean = total / count
    var = np.maximum(squares / count - mean * mean, 0.0)
    stats.update_from_moments(mean, var, count)


def _scaled(
    values: np.ndarray,
    stats: RunningMeanStd,
    epsilon: float,
    clip: float,
    mask: np.ndarray | None,
) -> np.ndarray:
    mean = stats.mean.astype(np.float32)
    scale = (1.0 / np.sqrt(stats.var + epsilon)).astype(np.float32)
    normalized = values - mean
    normalized *= scale
    np.clip(normalized, -clip, clip, out=normalized)
    if mask is not None:
        normalized *= mask
    return normalized


class PooledVecNormalize(VecNormalize):
    """``VecNormalize`` whose observation statistics are :class:`PooledObsStats`.

    Rewards are normalized exactly as SB3 does. Saved, loaded (``VecNormalize.load``) and used
    like ``VecNormalize``; the normalization arithmetic is float32.

    Parameters
    ----------
    venv:
        The environment (its observation follows :mod:`ploutos_core.env.layout`).
    n_features:
        Features per ticker.
    **kwargs:
        ``VecNormalize``'s (``clip_obs``, ``clip_reward``, ``gamma``, ``norm_reward``, ...).
    """

    def __init__(self, venv: VecEnv, n_features: int, **kwargs: Any) -> None:
        super().__init__(venv, **kwargs)
        self.obs_rms = PooledObsStats(n_features, self.epsilon)

    def _normalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        assert isinstance(obs_rms, PooledObsStats)
        return obs_rms.normalize(obs, self.clip_obs, self.epsilon)

    def _unnormalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        raise NotImplementedError("pooled normalization is not inverted; use get_original_obs()")

    def normalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> Any:
        # SB3 deep-copies the observation first; _normalize_obs already returns a new array.
        if self.norm_obs and isinstance(obs, np.ndarray):
            return self._normalize_obs(obs, self.obs_rms)
        return super().normalize_obs(obs)
