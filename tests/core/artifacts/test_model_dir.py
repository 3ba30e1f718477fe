"""ModelDir: the one place that names a model directory's files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ploutos_core.artifacts import ModelDir, stats_path_for


@pytest.mark.parametrize(
    ("model", "stats"),
    [
        ("final_model.zip", "vecnormalize.pkl"),
        ("interrupted_model.zip", "interrupted_model_vecnormalize.pkl"),
        ("checkpoint_4096_steps.zip", "checkpoint_4096_steps_vecnormalize.pkl"),
    ],
)
def test_statistics_are_saved_beside_each_model(model: str, stats: str) -> None:
    assert stats_path_for(Path("run") / model) == Path("run") / stats


def test_paths_of_a_model_directory(tmp_path: Path) -> None:
    model_dir = ModelDir(tmp_path)
    assert model_dir.final_model == tmp_path / "final_model.zip"
    assert model_dir.final_stats == stats_path_for(model_dir.final_model)
    assert model_dir.manifest == tmp_path / "manifest.json"
    assert model_dir.tensorboard == tmp_path / "tensorboard"
    assert model_dir.checkpoint(4096) == tmp_path / "checkpoint_4096_steps.zip"
    assert ModelDir.of(model_dir.interrupted_model) == model_dir


def test_checkpoints_are_listed_oldest_first(tmp_path: Path) -> None:
    model_dir = ModelDir(tmp_path)
    assert model_dir.checkpoints() == []
    for steps in (10_240, 512, 2048):
        model_dir.checkpoint(steps).touch()
        stats_path_for(model_dir.checkpoint(steps)).touch()
    (tmp_path / ".tmp-checkpoint_999_steps.zip.x").touch()
    assert model_dir.checkpoints() == [model_dir.checkpoint(s) for s in (512, 2048, 10_240)]
