"""A saved model loads for evaluation with its statistics and manifest, or is refused clearly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ploutos_core.artifacts import load_trained_model, stats_path_for
from ploutos_core.env.layout import ObservationLayout
from ploutos_core.errors import ManifestError
from tests.core.conftest import TinyModel


def test_the_model_is_loaded_for_evaluation_and_checkpoints_load_too(
    tiny_model: TinyModel,
) -> None:
    result = tiny_model.result
    loaded = load_trained_model(result.model_path)
    assert loaded.obs_stats.training is False and loaded.obs_stats.norm_reward is False
    assert loaded.stats_path == stats_path_for(result.model_path)
    assert loaded.manifest == result.manifest
    assert result.checkpoints
    checkpoint = load_trained_model(result.checkpoints[0])
    assert checkpoint.stats_path.name.endswith("_vecnormalize.pkl")
    assert checkpoint.manifest == loaded.manifest


def test_policy_actions_equal_stable_baselines3_predict(tiny_model: TinyModel) -> None:
    loaded = load_trained_model(tiny_model.result.model_path)
    start, end = loaded.test_period
    test = tiny_model.market.period(start, end)
    rng = np.random.default_rng(0)
    # Real observations plus perturbed ones, so that many actions are exercised.
    layout = ObservationLayout(test.N, test.F)
    obs = np.zeros((test.T, layout.size), np.float32)
    obs[:, layout.features] = test.features.reshape(test.T, -1)
    obs[:, layout.tradable] = test.tradable
    obs = np.concatenate([obs, obs + rng.normal(0, 3, obs.shape).astype(np.float32)])
    act = loaded.policy(deterministic=True)
    ours = np.concatenate([act(row[None, :]) for row in obs])
    theirs, _ = loaded.model.predict(loaded.obs_stats.normalize_obs(obs), deterministic=True)
    np.testing.assert_array_equal(ours, theirs)
    assert len(np.unique(theirs)) == 3
    sampled = np.concatenate([loaded.policy(deterministic=False)(obs) for _ in range(3)])
    assert sampled.shape == (3 * len(obs), test.N) and set(np.unique(sampled)) <= {0, 1, 2}


def test_a_model_without_its_statistics_is_refused(tiny_model: TinyModel, tmp_path: Path) -> None:
    result = tiny_model.result
    lone = tmp_path / "final_model.zip"
    shutil.copy(result.model_path, lone)
    shutil.copy(result.manifest_path, tmp_path / "manifest.json")
    with pytest.raises(ManifestError, match="vecnormalize.pkl"):
        load_trained_model(lone)


def test_a_model_without_its_manifest_is_refused(tiny_model: TinyModel, tmp_path: Path) -> None:
    result = tiny_model.result
    for path in (result.model_path, result.stats_path):
        shutil.copy(path, tmp_path / path.name)
    with pytest.raises(ManifestError, match="manifest.json"):
        load_trained_model(tmp_path / "final_model.zip")


def test_a_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no model at"):
        load_trained_model(tmp_path / "final_model.zip")
