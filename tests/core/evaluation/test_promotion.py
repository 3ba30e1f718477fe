"""Promotion: only a verdict that promotes, on the model's own config, promotes a model."""

import json
import shutil
from pathlib import Path

import pytest

from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.evaluation.promotion import PromotionError, promote, read_promotion
from ploutos_core.evaluation.trials import trial_key
from tests.core.conftest import TinyModel


def _model_dir(tiny_model: TinyModel, tmp_path: Path) -> ModelDir:
    return ModelDir(shutil.copytree(tiny_model.result.output_dir, tmp_path / "model"))


def _verdict(model_dir: ModelDir, *, promoted: bool = True, key: str | None = None) -> dict:
    config = Manifest.read(model_dir.manifest).config
    return {
        "promoted": promoted,
        "reasons": [] if promoted else ["dsr 0.41 < 0.95"],
        "trial_key": trial_key(config) if key is None else key,
        "data_fingerprint": "abc",
        "agent": {"sharpe": {"iqm": 1.2, "ci_low": 0.3, "ci_high": 2.0}},
        "dsr": 0.97,
        "pbo": None,
    }


def test_a_passing_verdict_on_the_models_config_promotes_it(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    model_dir = _model_dir(tiny_model, tmp_path)
    with pytest.raises(PromotionError, match="never promoted"):
        read_promotion(model_dir)
    verdict_path = tmp_path / "verdict.json"
    written = promote(model_dir, _verdict(model_dir), verdict_path, last_bar="2024-05-31")
    assert read_promotion(model_dir) == written
    assert written.dsr == 0.97 and written.pbo is None and written.last_bar == "2024-05-31"
    assert json.loads((model_dir.path / "promotion.json").read_text())["trial_key"]


def test_a_failing_verdict_promotes_nothing(tiny_model: TinyModel, tmp_path: Path) -> None:
    model_dir = _model_dir(tiny_model, tmp_path)
    with pytest.raises(PromotionError, match=r"does not promote.*dsr 0\.41"):
        verdict = _verdict(model_dir, promoted=False)
        promote(model_dir, verdict, tmp_path / "verdict.json", last_bar="2024-05-31")
    assert not (model_dir.path / "promotion.json").exists()


def test_a_verdict_on_another_config_promotes_nothing(
    tiny_model: TinyModel, tmp_path: Path
) -> None:
    model_dir = _model_dir(tiny_model, tmp_path)
    with pytest.raises(PromotionError, match="judged config 0123.*evaluate this config"):
        verdict = _verdict(model_dir, key="0123")
        promote(model_dir, verdict, tmp_path / "verdict.json", last_bar="2024-05-31")
    assert not (model_dir.path / "promotion.json").exists()


def test_a_directory_without_a_model_is_named(tmp_path: Path) -> None:
    with pytest.raises(PromotionError, match="not a model directory"):
        read_promotion(ModelDir(tmp_path))
