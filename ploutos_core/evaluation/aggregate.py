"""Scores over folds x seeds summarized with their uncertainty, after Agarwal et al.

R. Agarwal, M. Schwarzer, P. S. Castro, A. Courville and M. G. Bellemare, "Deep Reinforcement
Learning at the Edge of the Statistical Precipice", NeurIPS 2021 (the ``rliable`` library):

- the **interquartile mean** (IQM) of all fold x seed scores: the mean of the middle 50%, robust
  to a few outlying runs yet less noisy than the median;
- **stratified bootstrap** confidence intervals: seeds are resampled with replacement *within*
  each fold (the fold is the paper's "task", the seed its "run"), so every resample keeps every
  test period;
- the **probability of improvement** ``P(X > Y)`` of one method over another: per fold, the
  share of (seed of X, seed of Y) pairs in which X scores higher, ties counting half (the
  Mann-Whitney U statistic over ``n_x * n_y``), averaged over folds;
- the **performance profile**: the share of runs scoring above each threshold.

The definitions are rliable's (``metrics.aggregate_iqm``, ``metrics.probability_of_improvement``,
``library.get_interval_estimates`` with percentile intervals, ``create_performance_profile``);
they are written here in NumPy because rliable 1.2 requires ``arch < 8`` and arch 7.2 (the
last such release) fails to import under pandas 3 (``deprecate_kwarg`` changed signature), and
because rliable draws its resamples from NumPy's global random state, not the generator given.

Layout: every score matrix is ``[n_folds, n_seeds]`` (rliable's transpose), e.g. the annualized
Sharpe ratio of each seed's agent on each fold's test window. Every bootstrap takes a ``seed``;
the same seed and inputs give the same intervals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ploutos_core.config import BootstrapConfig


@dataclass(frozen=True)
class IntervalEstimate:
    """A point estimate and its bootstrap confidence interval ``[ci_low, ci_high]``."""

    point: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float]:
        return {"point": self.point, "ci_low": self.ci_low, "ci_high": self.ci_high}


@dataclass(frozen=True)
class PerformanceProfile:
    """Share of runs with a score above each threshold ``tau``, with pointwise intervals."""

    taus: tuple[float, ...]
    fraction: tuple[float, ...]
    ci_low: tuple[float, ...]
    ci_high: tuple[float, ...]

    def to_dict(self) -> dict[str, list[float]]:
        return {
            "taus": list(self.taus),
            "fraction": list(self.fraction),
            "ci_low": list(self.ci_low),
            "ci_high": list(self.ci_high),
        }


@dataclass(frozen=True)
class Comparison:
    """The agent against its baselines: every method's IQM, the agent's probability of
    improvement over each baseline, and its IQM minus that of the best baseline (the baseline
    with the highest point IQM)."""

    iqm: Mapping[str, IntervalEstimate]
    probability_of_improvement: Mapping[str, IntervalEstimate]
    best_baseline: str
    excess_iqm: IntervalEstimate

    def to_dict(self) -> dict[str, Any]:
        return {
            "iqm": {name: e.to_dict() for name, e in self.iqm.items()},
            "probability_of_improvement": {
                name: e.to_dict() for name, e in self.probability_of_improvement.items()
            },
            "best_baseline": self.best_baseline,
            "excess_iqm": self.excess_iqm.to_dict(),
        }


def interquartile_mean(scores: np.ndarray) -> float:
    """Mean of the middle 50% of all scores (25% trimmed from each end; rliable's IQM)."""
    from scipy import stats

    return float(stats.trim_mean(_matrix(scores).reshape(-1), 0.25))


def iqm_interval(
    scores: np.ndarray, reps: int = 2000, confidence: float = 0.95, seed: int = 0
) -> IntervalEstimate:
    """The IQM of a ``[n_folds, n_seeds]`` matrix and its stratified bootstrap interval."""
    m = _matrix(scores)
    resampled = _resample(m, reps, np.random.default_rng(seed))
    return _interval(interquartile_mean(m), _iqms(resampled), confidence)


def iqm_difference_interval(
    scores_x: np.ndarray,
    scores_y: np.ndarray,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> IntervalEstimate:
    """``IQM(X) - IQM(Y)`` with an interval from resampling X's and Y's seeds independently
    within each fold (rliable's ``StratifiedIndependentBootstrap``)."""
    x, y = _paired_folds(scores_x, scores_y)
    rng = np.random.default_rng(seed)
    diffs = _iqms(_resample(x, reps, rng)) - _iqms(_resample(y, reps, rng))
    return _interval(interquartile_mean(x) - interquartile_mean(y), diffs, confidence)


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """``P(X > Y)``, ties counting half, per fold over all seed pairs, averaged over folds."""
    x, y = _paired_folds(scores_x, scores_y)
    return float(_improvement(x[None], y[None])[0])


def probability_of_improvement_interval(
    scores_x: np.ndarray,
    scores_y: np.ndarray,
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> IntervalEstimate:
    """:func:`probability_of_improvement` with an interval from resampling X's and Y's seeds
    independently within each fold."""
    x, y = _paired_folds(scores_x, scores_y)
    rng = np.random.default_rng(seed)
    boot = _improvement(_resample(x, reps, rng), _resample(y, reps, rng))
    return _interval(probability_of_improvement(x, y), boot, confidence)


def performance_profile(
    scores: np.ndarray,
    taus: Sequence[float],
    reps: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PerformanceProfile:
    """Share of all fold x seed scores strictly above each ``tau`` (rliable's run-score
    distribution), with stratified bootstrap intervals at each threshold."""
    m = _matrix(scores)
    t = np.asarray(taus, dtype=np.float64).reshape(-1)
    resampled = _resample(m, reps, np.random.default_rng(seed)).reshape(reps, -1)
    point = (m.reshape(-1)[:, None] > t).mean(axis=0)
    boot = (resampled[:, :, None] > t).mean(axis=1)
    low, high = _bounds(boot, confidence)
    return PerformanceProfile(
        tuple(t.tolist()), tuple(point.tolist()), tuple(low.tolist()), tuple(high.tolist())
    )


def compare_to_baselines(
    scores: Mapping[str, np.ndarray], agent: str, bootstrap: BootstrapConfig
) -> Comparison:
    """Everything the gate reads from score matrices: ``scores`` maps each method (the agent
    and at least one baseline) to its ``[n_folds, n_seeds]`` matrix over the same folds.

    Each statistic uses ``bootstrap.seed``, so adding a baseline leaves the others' intervals
    unchanged. A deterministic baseline (buy-and-hold, cash) may pass a single column: its own
    interval then has zero width, and the agent's seeds carry all the uncertainty.
    """
    if agent not in scores:
        raise ValueError(f"no scores for the agent {agent!r}; methods: {sorted(scores)}")
    baselines = [name for name in scores if name != agent]
    if not baselines:
        raise ValueError("compare_to_baselines needs at least one baseline besides the agent")
    kwargs = {"reps": bootstrap.reps, "confidence": bootstrap.confidence, "seed": bootstrap.seed}
    iqm = {name: iqm_interval(s, **kwargs) for name, s in scores.items()}
    best = max(baselines, key=lambda name: iqm[name].point)
    return Comparison(
        iqm=iqm,
        probability_of_improvement={
            name: probability_of_improvement_interval(scores[agent], scores[name], **kwargs)
            for name in baselines
        },
        best_baseline=best,
        excess_iqm=iqm_difference_interval(scores[agent], scores[best], **kwargs),
    )


def _matrix(scores: np.ndarray) -> np.ndarray:
    m = np.asarray(scores, dtype=np.float64)
    if m.ndim != 2 or m.size == 0:
        raise ValueError(f"scores must be a non-empty [n_folds, n_seeds] matrix, got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("scores must be finite")
    return m


def _paired_folds(scores_x: np.ndarray, scores_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = _matrix(scores_x), _matrix(scores_y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"both methods need the same folds: {x.shape[0]} != {y.shape[0]} rows")
    return x, y


def _resample(m: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """``[reps, n_folds, n_seeds]``: each fold's seeds drawn with replacement from that fold."""
    n_folds, n_seeds = m.shape
    seeds = rng.integers(0, n_seeds, size=(reps, n_folds, n_seeds))
    return m[np.arange(n_folds)[None, :, None], seeds]


def _iqms(resampled: np.ndarray) -> np.ndarray:
    from scipy import stats

    return stats.trim_mean(resampled.reshape(len(resampled), -1), 0.25, axis=1)


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Probability of improvement of each resample ``[reps, n_folds, n_x]`` vs ``[.., n_y]``."""
    greater = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    ties = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return (greater + 0.5 * ties).mean(axis=-1)


def _bounds(boot: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    return low, high


def _interval(point: float, boot: np.ndarray, confidence: float) -> IntervalEstimate:
    low, high = _bounds(boot, confidence)
    return IntervalEstimate(float(point), float(low), float(high))
