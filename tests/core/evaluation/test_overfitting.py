"""PBO by CSCV: about 1/2 for pure noise, about 0 when one trial truly dominates, None for a single
trial, and the vectorized statistic equals a direct loop over the combinations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from ploutos_core.evaluation.overfitting import probability_of_backtest_overfitting


def direct_pbo(returns: np.ndarray, s: int) -> tuple[float, np.ndarray]:
    """The paper's algorithm written plainly (Bailey et al., section 2.2)."""
    blocks = np.array_split(np.arange(len(returns)), s)
    logits = []
    for combo in itertools.combinations(range(s), s // 2):
        rows = np.concatenate([blocks[i] for i in combo])
        rest = np.setdiff1d(np.arange(len(returns)), rows)
        train, test = returns[rows], returns[rest]
        best = np.argmax(train.mean(0) / train.std(0, ddof=1))
        ranks = stats.rankdata(test.mean(0) / test.std(0, ddof=1))
        omega = ranks[best] / (returns.shape[1] + 1)
        logits.append(np.log(omega / (1 - omega)))
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits


def test_the_estimate_equals_the_direct_algorithm() -> None:
    returns = np.random.default_rng(0).normal(0, 0.01, size=(120, 7))
    estimate = probability_of_backtest_overfitting(returns, n_submatrices=8)
    pbo, logits = direct_pbo(returns, 8)
    assert estimate is not None
    assert estimate.pbo == pytest.approx(pbo)
    np.testing.assert_allclose(estimate.logits, logits)
    assert len(estimate.logits) == 70


def test_pure_noise_trials_are_overfit_half_the_time() -> None:
    rng = np.random.default_rng(1)
    pbos = []
    for _ in range(30):
        estimate = probability_of_backtest_overfitting(rng.normal(0, 0.01, size=(600, 20)), 10)
        assert estimate is not None
        pbos.append(estimate.pbo)
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.07)


def test_one_truly_better_trial_is_not_overfit() -> None:
    rng = np.random.default_rng(2)
    returns = rng.normal(0, 0.01, size=(1000, 20))
    returns[:, 7] += 0.003
    estimate = probability_of_backtest_overfitting(returns, 16)
    assert estimate is not None
    assert estimate.pbo < 0.05
    assert estimate.to_dict()["n_trials"] == 20


def test_fewer_than_two_trials_have_no_pbo() -> None:
    assert probability_of_backtest_overfitting(np.zeros((100, 1))) is None
    assert probability_of_backtest_overfitting(np.zeros((100, 0))) is None


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.zeros((100, 3)), 5)
    with pytest.raises(ValueError, match="cannot form 16 blocks"):
        probability_of_backtest_overfitting(np.zeros((20, 3)), 16)
    with pytest.raises(ValueError, match=r"\[time, trials\]"):
        probability_of_backtest_overfitting(np.zeros(100))
