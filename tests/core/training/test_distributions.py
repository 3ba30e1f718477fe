"""The batched action distribution: the same distribution as SB3's multi-categorical."""

from __future__ import annotations

import pytest
import torch
from stable_baselines3.common.distributions import MultiCategoricalDistribution

from ploutos_core.training.distributions import BatchedMultiCategoricalDistribution


def test_batched_distribution_is_sb3_multicategorical() -> None:
    generator = torch.Generator().manual_seed(0)
    dims = [3] * 7
    logits = 3 * torch.randn(5, 21, generator=generator)
    ours = BatchedMultiCategoricalDistribution(dims).proba_distribution(logits)
    sb3 = MultiCategoricalDistribution(dims).proba_distribution(logits)
    actions = sb3.sample()
    torch.testing.assert_close(ours.log_prob(actions), sb3.log_prob(actions))
    torch.testing.assert_close(ours.log_prob(actions.float()), sb3.log_prob(actions))
    torch.testing.assert_close(ours.entropy(), sb3.entropy())
    assert torch.equal(ours.mode(), sb3.mode())
    assert ours.sample().shape == actions.shape == (5, 7)

    one = torch.tensor([[0.0, 1.0, -1.0, 2.0, 0.0, 0.0]])
    many = BatchedMultiCategoricalDistribution([3, 3]).proba_distribution(one.repeat(20_000, 1))
    drawn = many.sample()
    for ticker in range(2):
        frequencies = torch.bincount(drawn[:, ticker], minlength=3) / len(drawn)
        expected = torch.softmax(one[0, 3 * ticker : 3 * ticker + 3], dim=0)
        torch.testing.assert_close(frequencies, expected, atol=0.015, rtol=0)


def test_sampling_refuses_non_finite_probabilities() -> None:
    logits = torch.zeros(2, 6)
    logits[1, 4] = float("nan")
    distribution = BatchedMultiCategoricalDistribution([3, 3]).proba_distribution(logits)
    with pytest.raises(RuntimeError, match="NaN or inf"):
        distribution.sample()
