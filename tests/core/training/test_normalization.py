"""Pooled normalization: one mean and variance per feature over tradable cells, untradable inputs 0
after normalization, rewards as SB3 normalizes them, and no saturated inputs for late listers."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.config import EnvConfig
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.env.layout import ObservationLayout
from ploutos_core.market import MarketData
from ploutos_core.training.normalization import PooledObsStats, PooledVecNormalize
from tests.support.markets import random_feature_market

FEATURES = tuple(f"f{i}" for i in range(6))
CLIP = 5.0


@pytest.fixture(scope="module")
def market() -> MarketData:
    """8 tickers, one listing late and one delisting, with random features."""
    return random_feature_market(8, 300, FEATURES, seed=3)


def rollout(venv, steps: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(raw observation, normalized observation) of every step of random actions."""
    rng = np.random.default_rng(seed)
    normalized = venv.reset()
    seen = [(venv.get_original_obs(), normalized)]
    for _ in range(steps):
        normalized, *_ = venv.step(rng.integers(0, 3, (venv.num_envs, venv.action_space.nvec.size)))
        seen.append((venv.get_original_obs(), normalized))
    return seen


def test_statistics_are_pooled_per_feature_over_tradable_cells(market: MarketData) -> None:
    venv = PooledVecNormalize(
        PortfolioVecEnv(market, EnvConfig(episode_length=30), n_envs=3, seed=1),
        market.F,
        clip_obs=CLIP,
    )
    seen = rollout(venv, 40)
    raw = np.concatenate([obs for obs, _ in seen])
    features, positions, tradable, portfolio = ObservationLayout(market.N, market.F).split(raw)
    cells = tradable > 0.5
    stats = venv.obs_rms
    np.testing.assert_allclose(stats.features.mean, features[cells].mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(stats.features.var, features[cells].var(axis=0), rtol=1e-4)
    np.testing.assert_allclose(stats.positions.mean, positions[cells].mean(axis=0), atol=1e-7)
    np.testing.assert_allclose(stats.portfolio.mean, portfolio.mean(axis=0), atol=1e-6)
    np.testing.assert_array_equal(stats.portfolio_low, portfolio.min(axis=0))
    np.testing.assert_array_equal(stats.portfolio_high, portfolio.max(axis=0))


def test_untradable_inputs_are_zero_after_normalization(market: MarketData) -> None:
    venv = PooledVecNormalize(
        PortfolioVecEnv(market, EnvConfig(episode_length=30), n_envs=3, seed=1),
        market.F,
        clip_obs=CLIP,
    )
    layout = ObservationLayout(market.N, market.F)
    idle_cells = 0
    for raw, normalized in rollout(venv, 120):
        features, positions, tradable, _ = layout.split(normalized)
        idle = tradable < 0.5
        idle_cells += int(idle.sum())
        assert not features[idle].any() and not positions[idle].any()
        np.testing.assert_array_equal(tradable, layout.split(raw)[2])
        assert np.abs(normalized).max() <= CLIP
    assert idle_cells > 0


def test_rewards_are_normalized_as_sb3_does(market: MarketData) -> None:
    config = EnvConfig(episode_length=20)
    ours = PooledVecNormalize(PortfolioVecEnv(market, config, n_envs=3, seed=1), market.F)
    sb3 = VecNormalize(PortfolioVecEnv(market, config, n_envs=3, seed=1))
    ours.reset(), sb3.reset()
    rng = np.random.default_rng(0)
    for _ in range(30):
        action = rng.integers(0, 3, (3, market.N))
        _, reward, _, _ = ours.step(action)
        _, reward_sb3, _, _ = sb3.step(action)
        np.testing.assert_array_equal(reward, reward_sb3)


def late_lister_clipped_fraction(normalization: type, market: MarketData) -> float:
    """Fit on the bars before the late lister trades; fraction of its normalized features at the
    clip bound on its tradable bars afterwards."""
    late = int(np.argmax(market.tradable.argmax(axis=0)))
    first = int(market.tradable[:, late].argmax())
    config = EnvConfig(episode_length=20)
    fit = market.period(None, market.dates[first - 1])
    args = (market.F,) if normalization is PooledVecNormalize else ()
    venv = normalization(PortfolioVecEnv(fit, config, n_envs=4, seed=0), *args, clip_obs=CLIP)
    rollout(venv, 200)
    venv.training = False
    test = market.period(market.dates[first], None)
    raw = PortfolioVecEnv(test, config, n_envs=1, seed=0).core
    layout = ObservationLayout(market.N, market.F)
    clipped = []
    for t in range(test.T):
        raw.t[:] = t
        normalized = venv.normalize_obs(raw.observe())
        if test.tradable[t, late]:
            features = layout.split(normalized)[0][0, late]
            clipped.append(np.mean(np.abs(features) >= CLIP - 1e-6))
    return float(np.mean(clipped))


def test_a_ticker_that_lists_after_training_is_not_saturated(market: MarketData) -> None:
    # Per-element statistics (SB3's) saturate it: its features were 0 all through training.
    assert late_lister_clipped_fraction(VecNormalize, market) > 0.9
    assert late_lister_clipped_fraction(PooledVecNormalize, market) < 0.01


def test_the_statistics_normalize_a_universe_of_another_size(market: MarketData) -> None:
    venv = PooledVecNormalize(
        PortfolioVecEnv(market, EnvConfig(episode_length=30), n_envs=2, seed=1), market.F
    )
    rollout(venv, 20)
    fewer = random_feature_market(3, 300, FEATURES, seed=4)
    obs = PortfolioVecEnv(fewer, EnvConfig(), n_envs=1).reset()
    normalized = venv.normalize_obs(obs)
    assert normalized.shape == obs.shape == (1, ObservationLayout(3, market.F).size)
    with pytest.raises(ValueError, match="not N tickers"):
        venv.normalize_obs(obs[:, :-1])


def test_statistics_copy_and_report_finiteness() -> None:
    stats = PooledObsStats(n_features=2)
    assert stats.is_finite()
    copy = stats.copy()
    copy.features.mean[0] = np.nan
    assert stats.is_finite() and not copy.is_finite()
