"""PSR and DSR against the Deflated Sharpe Ratio paper's worked example, the normal-returns
special case, and Monte Carlo calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from ploutos_core.evaluation.sharpe import (
    deflated_sharpe_ratio,
    deflated_sharpe_ratio_of,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probabilistic_sharpe_ratio_of,
    sharpe_ratio,
)

# The paper's example annualizes with 250 days a year (T = 1250 days is five years).
PAPER_DAYS_PER_YEAR = 250


def test_the_deflated_sharpe_ratio_papers_numerical_example() -> None:
    """Bailey & López de Prado (2014), section 4: annualized SR 2.5 over T = 1250 days, skewness
    -3, kurtosis 10, N = 100 trials whose annualized SRs have variance 0.5: DSR ~ 0.9004."""
    sharpe = 2.5 / math.sqrt(PAPER_DAYS_PER_YEAR)
    variance = 0.5 / PAPER_DAYS_PER_YEAR
    dsr = deflated_sharpe_ratio(
        sharpe, n_obs=1250, n_trials=100, trials_variance=variance, skewness=-3, kurtosis=10
    )
    assert dsr == pytest.approx(0.9004, abs=5e-4)


def test_with_normal_returns_the_psr_uses_the_classic_standard_error() -> None:
    # skew 0, kurtosis 3: sigma(SR) = sqrt((1 + SR^2 / 2) / (T - 1)) (Lo 2002)
    sr, benchmark, t = 0.1, 0.02, 500
    expected = stats.norm.cdf((sr - benchmark) / math.sqrt((1 + sr**2 / 2) / (t - 1)))
    assert probabilistic_sharpe_ratio(sr, benchmark, t) == pytest.approx(expected)
    assert probabilistic_sharpe_ratio(sr, sr, t) == 0.5


def test_negative_skew_and_fat_tails_lower_the_psr() -> None:
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 250)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 250, skewness=-2, kurtosis=9) < normal


def test_the_psr_is_calibrated_when_the_true_sharpe_equals_the_benchmark() -> None:
    rng = np.random.default_rng(0)
    true_sr, t = 0.05, 500
    returns = rng.normal(true_sr * 0.01, 0.01, size=(2000, t))
    sharpes = returns.mean(axis=1) / returns.std(axis=1, ddof=1)
    skews, kurts = stats.skew(returns, axis=1), stats.kurtosis(returns, axis=1) + 3
    psr = np.array(
        [
            probabilistic_sharpe_ratio(sr, true_sr, t, g3, g4)
            for sr, g3, g4 in zip(sharpes, skews, kurts, strict=True)
        ]
    )
    assert np.mean(psr > 0.95) == pytest.approx(0.05, abs=0.015)


def test_the_expected_maximum_sharpe_matches_the_maximum_of_normal_draws() -> None:
    rng = np.random.default_rng(1)
    for n in (10, 100, 1000):
        simulated = rng.normal(0.0, 0.3, size=(4000, n)).max(axis=1).mean()
        assert expected_maximum_sharpe(n, 0.09) == pytest.approx(simulated, rel=0.03)
    assert expected_maximum_sharpe(1, 0.09, mean=0.2) == 0.2


def test_more_trials_deflate_more() -> None:
    kwargs = {"sharpe": 0.1, "n_obs": 1000, "trials_variance": 0.002}
    assert deflated_sharpe_ratio(n_trials=1000, **kwargs) < deflated_sharpe_ratio(
        n_trials=10, **kwargs
    )
    # one trial: nothing was selected and the DSR is the PSR against 0
    assert deflated_sharpe_ratio(n_trials=1, **kwargs) == probabilistic_sharpe_ratio(0.1, 0.0, 1000)


def test_the_return_series_helpers() -> None:
    rng = np.random.default_rng(2)
    r = rng.normal(0.001, 0.01, 750)
    assert sharpe_ratio(r) == pytest.approx(r.mean() / r.std(ddof=1))
    assert sharpe_ratio(np.zeros(5)) == 0.0
    assert sharpe_ratio(np.full(10, 0.001)) == 0.0  # rounding leaves a std of ~1e-19
    skew, kurt = stats.skew(r), stats.kurtosis(r) + 3
    expected = probabilistic_sharpe_ratio(sharpe_ratio(r), 0.05, 750, skew, kurt)
    assert probabilistic_sharpe_ratio_of(r, 0.05) == pytest.approx(expected)
    trials = rng.normal(0.0, 0.05, 20)
    expected = deflated_sharpe_ratio(sharpe_ratio(r), 750, 20, trials.var(ddof=1), skew, kurt)
    assert deflated_sharpe_ratio_of(r, trials) == pytest.approx(expected)
    with pytest.raises(ValueError, match="at least 2"):
        sharpe_ratio(np.array([0.01]))
