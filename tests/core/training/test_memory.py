"""The memory guard: the estimate grows with the knobs; a run that does not fit is refused."""

from __future__ import annotations

import pytest
import torch

from ploutos_core.errors import ResourceLimitError
from ploutos_core.training.memory import check_memory, estimate_memory
from tests.support.configs import tiny_training as tiny_config


def test_memory_estimate_grows_with_the_knobs() -> None:
    base = estimate_memory(tiny_config(), n_tickers=500, n_features=85, n_dates=2000)
    more_envs = estimate_memory(tiny_config(n_envs=8), n_tickers=500, n_features=85, n_dates=2000)
    more_tickers = estimate_memory(tiny_config(), n_tickers=1000, n_features=85, n_dates=2000)
    assert more_envs.rollout_buffer == pytest.approx(2 * base.rollout_buffer)
    assert more_tickers.rollout_buffer > 1.9 * base.rollout_buffer
    assert more_tickers.policy > 1.9 * base.policy
    # 500 tickers x 85 features, 4 envs x 64 steps: 256 samples of 44,004 floats, twice.
    assert base.rollout_buffer >= 2 * 256 * 44_004 * 4


def test_the_ticker_encoder_shrinks_the_policy_estimate() -> None:
    shape = {"n_tickers": 500, "n_features": 85, "n_dates": 2000}
    flat = estimate_memory(tiny_config(policy="flat"), **shape)
    encoded = estimate_memory(tiny_config(ticker_encoder=[16]), **shape)
    assert encoded.rollout_buffer == flat.rollout_buffer
    # First layers: 44,004 x 32 per network flat; 88 x 16 shared, then 8,004 x 32 per network:
    # 2 x 36,000 x 32 fewer weights, 7 floats each; plus a minibatch's 500 x 16 codes.
    saved = 2 * 36_000 * 32 * 7 * 4 - (88 * 16 + 16) * 7 * 4 - 128 * 500 * 16 * 4 * 3
    assert flat.policy - encoded.policy == pytest.approx(saved, rel=1e-3)


def test_check_memory_refuses_what_does_not_fit() -> None:
    config = tiny_config()
    estimate = estimate_memory(config, n_tickers=500, n_features=85, n_dates=2000)
    check_memory(estimate, config, torch.device("cpu"), available=estimate.host)
    with pytest.raises(ResourceLimitError, match="n_envs=4 x n_steps=64"):
        check_memory(estimate, config, torch.device("cpu"), available=estimate.host - 1)
