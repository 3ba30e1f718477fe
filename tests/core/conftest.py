"""A tiny trained model shared by the artifact, backtest and command-line tests of the core."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest

from ploutos_core.data.sample import make_market
from ploutos_core.market import MarketData, build_market
from ploutos_core.training import TrainingResult, train
from tests.support.configs import tiny_training
from tests.support.markets import random_feature_frames

FEATURES = tuple(f"f{i}" for i in range(6))


@dataclass(frozen=True)
class TinyModel:
    """A model trained for seconds on 5 tickers with random features, and what it was made of."""

    result: TrainingResult
    market: MarketData
    features: dict[str, pd.DataFrame]
    ohlcv: pd.DataFrame


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    ohlcv = make_market(5, 330, seed=21)
    features = random_feature_frames(ohlcv, FEATURES, seed=21)
    market = build_market(features, ohlcv, feature_names=FEATURES)
    config = tiny_training(
        seed=3,
        total_timesteps=1024,
        net_arch=[16, 16],
        checkpoint_freq=512,
        split={"test_fraction": 0.25, "embargo_days": 5},
        env={"episode_length": 60},
    )
    result = train(config, market, tmp_path_factory.mktemp("tiny_model") / "model")
    return TinyModel(result, market, features, ohlcv)
