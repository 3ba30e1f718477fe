"""Observation and reward normalization: SB3's ``VecNormalize``, normalizing float32 in float32.

Saved statistics (``vecnormalize.pkl``) pickle the class by its path, this module's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecNormalize

__all__ = ["Float32VecNormalize"]


class Float32VecNormalize(VecNormalize):
    """``VecNormalize`` that normalizes float32 observations in float32.

    SB3 keeps its running statistics in float64, normalizes in float64 and casts the result to
    float32: at 500 tickers that is 6.6 ms of a 35 ms rollout step on a CPU, against 0.6 ms in
    float32 (measured). The statistics stay float64 and are updated exactly as SB3 updates them;
    only the normalization arithmetic is float32, so results match SB3's to float32 rounding.
    Saved, loaded (``VecNormalize.load``) and used like ``VecNormalize``.
    """

    def _normalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        if obs.dtype != np.float32:
            return super()._normalize_obs(obs, obs_rms)
        mean = obs_rms.mean.astype(np.float32)
        scale = (1.0 / np.sqrt(obs_rms.var + self.epsilon)).astype(np.float32)
        normalized = obs - mean
        normalized *= scale
        return np.clip(normalized, -self.clip_obs, self.clip_obs, out=normalized)

    def normalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> Any:
        # SB3 deep-copies the observation first; _normalize_obs already returns a new array.
        if self.norm_obs and isinstance(obs, np.ndarray) and obs.dtype == np.float32:
            return self._normalize_obs(obs, self.obs_rms)
        return super().normalize_obs(obs)
