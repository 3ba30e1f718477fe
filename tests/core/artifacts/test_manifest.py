"""The manifest: written by training, parsed once into a typed model, refused when not ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ploutos_core.artifacts import Manifest
from ploutos_core.artifacts.manifest import MANIFEST_FORMAT
from ploutos_core.errors import ManifestError
from tests.core.conftest import TinyModel


def test_the_written_manifest_reads_back_equal(tiny_model: TinyModel) -> None:
    result = tiny_model.result
    assert Manifest.read(result.manifest_path) == result.manifest
    assert result.manifest.feature_version is None  # random features, not the registry's


def test_the_json_shows_the_derived_seed_and_policy(tiny_model: TinyModel) -> None:
    values = json.loads(tiny_model.result.manifest_path.read_text())
    assert values["format"] == MANIFEST_FORMAT
    assert values["seed"] == values["config"]["seed"] == 3
    assert values["policy"] == "encoder"
    assert values["train_period"].keys() == {"start", "end"}


def copy_with(tiny_model: TinyModel, tmp_path: Path, **changes: object) -> Path:
    values = json.loads(tiny_model.result.manifest_path.read_text())
    values.update(changes)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(values))
    return path


def test_a_manifest_from_before_the_pooling_key_reads_as_max(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    values = json.loads(tiny_model.result.manifest_path.read_text())
    config = {k: v for k, v in values["config"].items() if k != "pooling"}
    assert Manifest.read(copy_with(tiny_model, tmp_path, config=config)).config.pooling == "max"
    assert tiny_model.result.manifest.config.pooling == "attention"  # today's default


def test_a_manifest_of_an_earlier_ploutos_is_refused(tiny_model: TinyModel, tmp_path: Path) -> None:
    path = copy_with(tiny_model, tmp_path, format=None)
    with pytest.raises(ManifestError, match=rf"{path}.*format None.*retrain"):
        Manifest.read(path)


def test_an_invalid_manifest_names_the_key(tiny_model: TinyModel, tmp_path: Path) -> None:
    path = copy_with(tiny_model, tmp_path, timesteps="many", extra_key=1)
    with pytest.raises(ManifestError) as info:
        Manifest.read(path)
    assert "timesteps" in str(info.value) and "extra_key" in str(info.value)
    assert str(path) in str(info.value)


def test_a_missing_or_unreadable_manifest_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no manifest at"):
        Manifest.read(tmp_path / "manifest.json")
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="cannot read"):
        Manifest.read(tmp_path / "manifest.json")
