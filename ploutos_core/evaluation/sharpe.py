"""How much a Sharpe ratio can be trusted: the Probabilistic and the Deflated Sharpe Ratio.

Units: every Sharpe ratio here is **per period** (per bar: the mean over the standard deviation
of per-bar returns, not annualized), as the papers' formulas require. An annualized ratio is
divided by ``sqrt(BARS_PER_YEAR)`` first (:data:`ploutos_core.market.dates.BARS_PER_YEAR`, 252);
a variance of annualized ratios by ``BARS_PER_YEAR``. Kurtosis is Pearson's (3 for a normal
distribution), not the excess kurtosis.

- D. H. Bailey and M. López de Prado, "The Sharpe Ratio Efficient Frontier", *Journal of Risk*
  15(2), 2012: the PSR.
- D. H. Bailey and M. López de Prado, "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality", *Journal of Portfolio Management* 40(5), 2014: the
  expected maximum Sharpe ratio of N trials and the DSR.
"""

from __future__ import annotations

import math

import numpy as np

EULER_MASCHERONI = float(np.euler_gamma)
FLAT_TOLERANCE = 1e-6
"""Relative standard deviation below which a return series counts as flat (Sharpe ratio 0)."""


def sharpe_ratio(returns: np.ndarray) -> float:
    """Per-period Sharpe ratio ``mean(r) / std(r, ddof=1)`` at a zero risk-free rate; 0 for a
    flat series (the convention of :mod:`ploutos_core.backtest.metrics`, unannualized).

    A constant series is flat even when rounding leaves a standard deviation of 1e-19: a
    deviation below ``FLAT_TOLERANCE`` times the returns' root mean square counts as zero.
    """
    r = _returns(returns)
    return 0.0 if _is_flat(r) else float(np.mean(r) / np.std(r, ddof=1))


def probabilistic_sharpe_ratio(
    sharpe: float,
    benchmark: float,
    n_obs: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark``, given ``sharpe`` observed
    over ``n_obs`` returns with that skewness and (Pearson) kurtosis.

    Bailey & López de Prado (2012), eq. 11::

        PSR = Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))

    The denominator is the standard error of the estimated SR under non-normal IID returns
    (Mertens 2002): negative skew and fat tails widen it, so the same SR is trusted less.
    Both ratios are per period.
    """
    from scipy import stats

    if n_obs < 2:
        raise ValueError(f"the PSR needs at least 2 returns, got n_obs={n_obs}")
    variance = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if variance <= 0:
        raise ValueError(
            f"skewness {skewness} and kurtosis {kurtosis} give a non-positive variance "
            f"({variance:.3g}) of the Sharpe ratio {sharpe}; check the moments' units"
        )
    z = (sharpe - benchmark) * math.sqrt(n_obs - 1) / math.sqrt(variance)
    return float(stats.norm.cdf(z))


def expected_maximum_sharpe(n_trials: int, trials_variance: float, mean: float = 0.0) -> float:
    """Expected maximum of the Sharpe ratios of ``n_trials`` independent trials whose true
    Sharpe ratios are ``mean``: the score that luck alone reaches by picking the best trial.

    Bailey & López de Prado (2014), eq. 2 (from the false strategy theorem)::

        E[max SR] ~ mean + sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

    with ``V`` the variance of the trials' estimated Sharpe ratios (per period, like ``mean``)
    and ``gamma`` the Euler-Mascheroni constant. One trial involves no selection: ``mean``.
    """
    from scipy import stats

    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    if trials_variance < 0:
        raise ValueError(f"trials_variance must be >= 0, got {trials_variance}")
    if n_trials == 1:
        return mean
    g = EULER_MASCHERONI
    quantiles = (1 - g) * stats.norm.ppf(1 - 1 / n_trials) + g * stats.norm.ppf(
        1 - 1 / (n_trials * math.e)
    )
    return mean + math.sqrt(trials_variance) * float(quantiles)


def deflated_sharpe_ratio(
    sharpe: float,
    n_obs: int,
    n_trials: int,
    trials_variance: float,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """The PSR of the selected trial against :func:`expected_maximum_sharpe` of all trials:
    the probability that its true Sharpe ratio is positive after accounting for having picked
    the best of ``n_trials`` (Bailey & López de Prado 2014, eq. 1). Per-period units."""
    benchmark = expected_maximum_sharpe(n_trials, trials_variance)
    return probabilistic_sharpe_ratio(sharpe, benchmark, n_obs, skewness, kurtosis)


def probabilistic_sharpe_ratio_of(returns: np.ndarray, benchmark: float = 0.0) -> float:
    """:func:`probabilistic_sharpe_ratio` with the SR, skewness and kurtosis of ``returns``
    (sample moments, as in the paper's code)."""
    r = _returns(returns)
    return probabilistic_sharpe_ratio(sharpe_ratio(r), benchmark, len(r), *_moments(r))


def deflated_sharpe_ratio_of(returns: np.ndarray, trials_sharpes: np.ndarray) -> float:
    """:func:`deflated_sharpe_ratio` of ``returns`` (the selected trial's per-bar returns)
    among the per-period Sharpe ratios of every trial tried, ``trials_sharpes`` (the selected
    one included): N is their count and V their sample variance."""
    r = _returns(returns)
    trials = np.asarray(trials_sharpes, dtype=np.float64).reshape(-1)
    variance = float(np.var(trials, ddof=1)) if trials.size > 1 else 0.0
    return deflated_sharpe_ratio(
        sharpe_ratio(r), len(r), max(trials.size, 1), variance, *_moments(r)
    )


def _moments(r: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if _is_flat(r):
        return 0.0, 3.0
    return float(stats.skew(r)), float(stats.kurtosis(r, fisher=True) + 3.0)


def _is_flat(r: np.ndarray) -> bool:
    return bool(np.std(r, ddof=1) <= FLAT_TOLERANCE * np.sqrt(np.mean(r**2)))


def _returns(returns: np.ndarray) -> np.ndarray:
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size < 2 or not np.all(np.isfinite(r)):
        raise ValueError(f"need at least 2 finite returns, got {r.size} values")
    return r
