"""VecNormalize in float32: the same statistics and (to float32 rounding) observations as SB3's."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.config import EnvConfig
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.market import MarketData
from ploutos_core.training.normalization import Float32VecNormalize
from tests.support.markets import random_feature_market

FEATURES = tuple(f"f{i}" for i in range(6))


def test_float32_normalization_matches_vecnormalize() -> None:
    market: MarketData = random_feature_market(4, 300, FEATURES, seed=3)
    config = EnvConfig(episode_length=20)
    ours = Float32VecNormalize(PortfolioVecEnv(market, config, n_envs=3, seed=1), clip_obs=5.0)
    sb3 = VecNormalize(PortfolioVecEnv(market, config, n_envs=3, seed=1), clip_obs=5.0)
    np.testing.assert_allclose(ours.reset(), sb3.reset(), rtol=1e-5, atol=1e-5)
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.integers(0, 3, (3, market.N))
        obs, reward, _, infos = ours.step(action)
        obs_sb3, reward_sb3, _, infos_sb3 = sb3.step(action)
        assert obs.dtype == np.float32
        np.testing.assert_allclose(obs, obs_sb3, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(reward, reward_sb3)
        for info, info_sb3 in zip(infos, infos_sb3, strict=True):
            if "terminal_observation" in info:
                np.testing.assert_allclose(
                    info["terminal_observation"], info_sb3["terminal_observation"], atol=1e-5
                )
    np.testing.assert_array_equal(ours.obs_rms.mean, sb3.obs_rms.mean)
    np.testing.assert_array_equal(ours.obs_rms.var, sb3.obs_rms.var)
    assert np.abs(ours.normalize_obs(ours.get_original_obs())).max() <= 5.0
