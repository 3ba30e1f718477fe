"""IQM, stratified bootstrap intervals, probability of improvement and performance profiles on
constructed score matrices [n_folds, n_seeds] with known answers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from ploutos_core.config import BootstrapConfig
from ploutos_core.evaluation.aggregate import (
    compare_to_baselines,
    interquartile_mean,
    iqm_difference_interval,
    iqm_interval,
    performance_profile,
    probability_of_improvement,
    probability_of_improvement_interval,
)


def test_the_iqm_is_the_mean_of_the_middle_half() -> None:
    scores = np.arange(1.0, 9.0).reshape(2, 4)
    assert interquartile_mean(scores) == 4.5
    scores[1, 3] = 1e6  # an outlying run moves the mean, not the IQM
    assert interquartile_mean(scores) == 4.5


def test_the_bootstrap_resamples_seeds_within_each_fold() -> None:
    # constant within each fold: every stratified resample is the data itself
    scores = np.array([[0.0] * 5, [10.0] * 5, [4.0] * 5])
    estimate = iqm_interval(scores, reps=500, seed=3)
    assert estimate.ci_low == estimate.point == estimate.ci_high == interquartile_mean(scores)


def test_intervals_are_reproducible_and_bracket_the_estimate() -> None:
    scores = np.random.default_rng(0).normal(1.0, 0.5, size=(5, 5))
    first = iqm_interval(scores, reps=1000, seed=7)
    assert first == iqm_interval(scores, reps=1000, seed=7)
    assert first != iqm_interval(scores, reps=1000, seed=8)
    assert first.ci_low < first.point < first.ci_high
    wider = iqm_interval(scores, reps=1000, confidence=0.99, seed=7)
    assert wider.ci_low <= first.ci_low and wider.ci_high >= first.ci_high
    assert first.to_dict() == {
        "point": first.point,
        "ci_low": first.ci_low,
        "ci_high": first.ci_high,
    }


def test_the_probability_of_improvement_counts_seed_pairs_with_ties_half() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    y = np.array([[1.0, 3.0], [1.0, 2.0]])
    # fold 0: (3>1, 3=3, 4>1, 4>3) = 3.5 / 4; fold 1: never better
    assert probability_of_improvement(x, y) == pytest.approx((0.875 + 0.0) / 2)
    assert probability_of_improvement(y, y) == 0.5


def test_the_probability_of_improvement_is_the_mann_whitney_statistic() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(0.3, 1, size=(4, 5)), rng.normal(0, 1, size=(4, 3))
    u = [stats.mannwhitneyu(x[f], y[f], alternative="greater").statistic for f in range(4)]
    assert probability_of_improvement(x, y) == pytest.approx(np.mean(u) / 15)


def test_a_dominant_method_improves_with_certainty() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.uniform(2, 3, size=(5, 5)), rng.uniform(0, 1, size=(5, 5))
    estimate = probability_of_improvement_interval(x, y, reps=500)
    assert (estimate.point, estimate.ci_low, estimate.ci_high) == (1.0, 1.0, 1.0)


def test_the_difference_of_iqms() -> None:
    x, y = np.full((3, 4), 2.0), np.full((3, 2), 0.5)
    estimate = iqm_difference_interval(x, y, reps=200)
    assert (estimate.point, estimate.ci_low, estimate.ci_high) == (1.5, 1.5, 1.5)
    with pytest.raises(ValueError, match="same folds"):
        iqm_difference_interval(x, np.zeros((2, 4)))


def test_the_performance_profile_is_the_share_above_each_threshold() -> None:
    scores = np.array([[0.0, 1.0], [2.0, 3.0]])
    profile = performance_profile(scores, [-1.0, 0.5, 2.0, 3.0], reps=200)
    assert profile.fraction == (1.0, 0.75, 0.25, 0.0)
    assert profile.ci_low[0] == profile.ci_high[0] == 1.0
    low, high = np.array(profile.ci_low), np.array(profile.ci_high)
    assert np.all((low <= profile.fraction) & (np.array(profile.fraction) <= high))
    assert profile.to_dict()["taus"] == [-1.0, 0.5, 2.0, 3.0]


def test_comparing_the_agent_to_its_baselines() -> None:
    rng = np.random.default_rng(3)
    scores = {
        "agent": rng.normal(1.0, 0.2, size=(5, 5)),
        "cash": np.zeros((5, 1)),
        "buy_and_hold": rng.normal(0.6, 0.2, size=(5, 1)),
    }
    comparison = compare_to_baselines(scores, "agent", BootstrapConfig(reps=500, seed=1))
    assert comparison.best_baseline == "buy_and_hold"
    assert set(comparison.probability_of_improvement) == {"cash", "buy_and_hold"}
    assert comparison.probability_of_improvement["cash"].point == 1.0
    assert comparison.excess_iqm.point == pytest.approx(
        interquartile_mean(scores["agent"]) - interquartile_mean(scores["buy_and_hold"])
    )
    assert json.loads(json.dumps(comparison.to_dict()))["best_baseline"] == "buy_and_hold"
    with pytest.raises(ValueError, match="at least one baseline"):
        compare_to_baselines({"agent": scores["agent"]}, "agent", BootstrapConfig())


def test_malformed_scores_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[n_folds, n_seeds\]"):
        interquartile_mean(np.zeros(4))
    with pytest.raises(ValueError, match="finite"):
        interquartile_mean(np.array([[np.nan, 1.0]]))
