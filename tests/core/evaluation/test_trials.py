"""The trial registry counts each configuration once per dataset, ignores what does not change
a trial, and hands back aligned return series."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ploutos_core.config import TrainingConfig
from ploutos_core.errors import StorageError
from ploutos_core.evaluation.trials import TrialRegistry, trial_key


def test_seed_and_device_do_not_make_a_new_trial_but_hyperparameters_do() -> None:
    base = TrainingConfig()
    assert trial_key(base) == trial_key(TrainingConfig(seed=7, device="cpu"))
    assert trial_key(base) != trial_key(TrainingConfig(learning_rate=3e-4))
    assert trial_key(base) != trial_key(TrainingConfig(total_timesteps=1_000_000))
    assert trial_key(base) == trial_key(base.model_dump(mode="json"))


def test_each_configuration_is_counted_once_per_dataset(tmp_path: Path) -> None:
    registry = TrialRegistry(tmp_path / "trials.json")
    first, second = np.full(10, 0.001), np.linspace(-0.01, 0.01, 10)
    assert registry.register("data-a", TrainingConfig(), first)
    assert not registry.register("data-a", TrainingConfig(seed=3), second)
    assert registry.register("data-a", TrainingConfig(learning_rate=3e-4), second)
    assert registry.register("data-b", TrainingConfig(), second)
    assert (registry.n_trials("data-a"), registry.n_trials("data-b")) == (2, 1)
    assert registry.n_trials("unknown") == 0

    reopened = TrialRegistry(tmp_path / "trials.json")
    matrix = reopened.returns_matrix("data-a")
    assert matrix.shape == (10, 2)
    column = reopened.trial_keys("data-a").index(trial_key(TrainingConfig()))
    np.testing.assert_array_equal(matrix[:, column], first)  # the first record is kept
    assert reopened.trial_sharpes("data-a")[column] == pytest.approx(0.0)
    assert reopened.returns_matrix("unknown").shape == (0, 0)
    content = json.loads((tmp_path / "trials.json").read_text())
    assert content["version"] == 1


def test_series_of_different_lengths_cannot_form_a_matrix(tmp_path: Path) -> None:
    registry = TrialRegistry(tmp_path / "trials.json")
    registry.register("d", TrainingConfig(), np.zeros(10))
    registry.register("d", TrainingConfig(gamma=0.9), np.zeros(12))
    with pytest.raises(ValueError, match="different lengths"):
        registry.returns_matrix("d")


def test_bad_returns_and_a_damaged_file_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "trials.json"
    registry = TrialRegistry(path)
    with pytest.raises(ValueError, match="finite"):
        registry.register("d", TrainingConfig(), np.array([0.1, np.nan]))
    path.write_text("{not json")
    with pytest.raises(StorageError, match="cannot read the trial registry"):
        registry.n_trials("d")
    path.write_text('{"version": 99}')
    with pytest.raises(StorageError, match="not a version-1 trial registry"):
        registry.n_trials("d")
