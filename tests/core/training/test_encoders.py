"""The ticker encoder reads each ticker's own slice of the observation and treats tickers alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ploutos_core.config import EnvConfig
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.env.layout import ObservationLayout, observation_size
from ploutos_core.market import MarketData
from ploutos_core.training.encoders import TickerEncoder
from tests.support.markets import random_feature_market

FEATURES = ("f0", "f1", "f2", "f3")


@pytest.fixture(scope="module")
def market() -> MarketData:
    return random_feature_market(5, 120, FEATURES, seed=2)


@pytest.fixture(scope="module")
def observations(market: MarketData) -> np.ndarray:
    """Observations after a few steps of buying, so positions are not all zero."""
    venv = PortfolioVecEnv(market, EnvConfig(episode_length=30), n_envs=3, seed=1)
    venv.reset()
    rng = np.random.default_rng(0)
    for _ in range(6):
        obs, *_ = venv.step(rng.integers(0, 3, (3, market.N)))
    assert np.abs(obs[:, market.N * len(FEATURES) :]).sum() > 0
    return obs


def encoder(market: MarketData, widths: list[int]) -> TickerEncoder:
    torch.manual_seed(0)
    space = PortfolioVecEnv(market, EnvConfig(), n_envs=1).observation_space
    return TickerEncoder(space, market.N, len(FEATURES), widths)


def test_each_ticker_gets_its_own_features_and_position(
    market: MarketData, observations: np.ndarray
) -> None:
    per_ticker = encoder(market, [8]).per_ticker(torch.from_numpy(observations)).numpy()
    n, f = market.N, len(FEATURES)
    assert per_ticker.shape == (3, n, f + 3)
    for i in range(n):
        np.testing.assert_array_equal(per_ticker[:, i, :f], observations[:, i * f : (i + 1) * f])
        np.testing.assert_array_equal(per_ticker[:, i, f], observations[:, n * f + i])
        np.testing.assert_array_equal(per_ticker[:, i, f + 1], observations[:, n * f + n + i])
        np.testing.assert_array_equal(per_ticker[:, i, f + 2], observations[:, n * f + 2 * n + i])


def test_the_same_layers_encode_every_ticker(market: MarketData, observations: np.ndarray) -> None:
    """Swapping two tickers' slices of the observation swaps their codes and nothing else."""
    model = encoder(market, [8, 6])
    n, f, k = market.N, len(FEATURES), 6
    swapped = observations.copy()
    for start, width in ((0, f), (n * f, 1), (n * f + n, 1), (n * f + 2 * n, 1)):
        a = slice(start + 0 * width, start + 1 * width)
        b = slice(start + 3 * width, start + 4 * width)
        swapped[:, a], swapped[:, b] = observations[:, b], observations[:, a]
    with torch.no_grad():
        codes = model(torch.from_numpy(observations)).numpy()
        codes_swapped = model(torch.from_numpy(swapped)).numpy()
    assert codes.shape == (3, n * k + 4)
    same = {"rtol": 1e-5, "atol": 1e-6}  # float32 rounding of a batched matrix product
    np.testing.assert_allclose(codes_swapped[:, 0:k], codes[:, 3 * k : 4 * k], **same)
    np.testing.assert_allclose(codes_swapped[:, 3 * k : 4 * k], codes[:, 0:k], **same)
    np.testing.assert_allclose(codes_swapped[:, k : 3 * k], codes[:, k : 3 * k], **same)
    portfolio = ObservationLayout(n, f).portfolio
    np.testing.assert_array_equal(codes[:, -4:], observations[:, portfolio])


def test_a_mismatched_universe_is_refused(market: MarketData) -> None:
    space = PortfolioVecEnv(market, EnvConfig(), n_envs=1).observation_space
    assert space.shape == (observation_size(market.N, len(FEATURES)),)
    with pytest.raises(ValueError, match="6 tickers x 4 features"):
        TickerEncoder(space, 6, len(FEATURES), [8])
