"""The evaluation assets: fold x seed partitions, the verdict and its blocking gate."""

import json
from pathlib import Path

import dagster as dg
import pytest

from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.config import EvaluationConfig, FoldConfig
from ploutos_core.evaluation.promotion import read_promotion
from ploutos_core.evaluation.trials import trial_key
from ploutos_pipeline.assets.evaluation import evaluation_assets
from ploutos_pipeline.definitions import defs
from ploutos_pipeline.resources import PloutosStorage
from tests.pipeline.conftest import Pipeline
from tests.support.configs import TINY_TRAINING

TINY_EVALUATION = EvaluationConfig(
    folds=FoldConfig(n_folds=2, min_train_days=120, test_days=40, purge_days=5),
    seeds=[3],
    baselines=["buy_and_hold", "cash", "random"],
    cost_multipliers=[1.0, 2.0],
    bootstrap={"reps": 200},
)


def test_definitions_hold_the_evaluation_assets() -> None:
    fold_model = defs.resolve_assets_def("fold_model")
    assert fold_model.node_def.pool == "gpu"
    partitions = fold_model.partitions_def
    assert isinstance(partitions, dg.MultiPartitionsDefinition)
    assert {d.name for d in partitions.partitions_defs} == {"fold", "seed"}
    assert defs.resolve_assets_def("fold_backtest").partitions_def == partitions
    assert defs.resolve_assets_def("verdict").partitions_def is None
    for name in ("fold_model", "fold_backtest", "verdict", "production_model"):
        assert defs.resolve_assets_def(name).group_names_by_key[dg.AssetKey(name)] == "evaluation"
    check = dg.AssetCheckKey(dg.AssetKey("verdict"), "promotion_gate")
    assert check in defs.resolve_asset_graph().asset_check_keys


@pytest.mark.slow
def test_fold_assets_then_verdict_and_gate(pipeline: Pipeline) -> None:
    pipeline.run("refresh_raw_ohlcv")
    pipeline.run_features(pipeline.tickers())
    fold_model, fold_backtest, verdict, gate, production = evaluation_assets(TINY_EVALUATION)
    resources = {"storage": PloutosStorage(root=str(pipeline.storage))}
    config = {"ops": {"fold_model": {"config": {**TINY_TRAINING, "total_timesteps": 128}}}}
    for fold in ("0", "1"):
        key = dg.MultiPartitionKey({"fold": fold, "seed": "3"})
        result = dg.materialize(
            [fold_model, fold_backtest], partition_key=key, instance=pipeline.instance,
            resources=resources, run_config=config,
        )  # fmt: skip
        assert result.success
    result = dg.materialize(
        [verdict, gate, production], instance=pipeline.instance, resources=resources,
        raise_on_error=False,
    )  # fmt: skip
    verdict_path = Path(pipeline.storage) / "evaluation" / "verdict.json"
    written = json.loads(verdict_path.read_text())
    assert written["n_folds"] == 2 and written["seeds"] == [3] and written["promoted"] is False
    metadata = result.asset_materializations_for_node("verdict")[-1].metadata
    assert metadata["report"].value == str(verdict_path.parent / "report.html")
    assert "Not promoted" in verdict_path.with_name("report.html").read_text()
    for name in ("intervals", "fold_equity", "profile"):
        assert metadata[f"{name}_plot"].value.startswith(f"![{name}](data:image/png;base64,")
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "promotion_gate" and check.passed is False
    assert not result.asset_materializations_for_node("production_model")
    _promotes_the_latest_trained_model_only_on_a_passing_verdict(pipeline, production, resources)


def _promotes_the_latest_trained_model_only_on_a_passing_verdict(
    pipeline: Pipeline, production: dg.AssetsDefinition, resources: dict
) -> None:
    trained = pipeline.run(
        "retrain", run_config={"ops": {"trained_model": {"config": TINY_TRAINING}}},
        asset_selection=[dg.AssetKey("trained_model")],
    )  # fmt: skip
    event = trained.asset_materializations_for_node("trained_model")[-1]
    model_dir = ModelDir(event.metadata["model_dir"].value)
    verdict_path = Path(pipeline.storage) / "evaluation" / "verdict.json"
    refused = dg.materialize(
        [production], instance=pipeline.instance, resources=resources, raise_on_error=False
    )
    failure = refused.failure_data_for_node("production_model").user_failure_data.description
    assert "does not promote" in failure and not (model_dir.path / "promotion.json").exists()

    written = json.loads(verdict_path.read_text())
    key = trial_key(Manifest.read(model_dir.manifest).config)
    verdict_path.write_text(json.dumps({**written, "promoted": True, "trial_key": key}))
    promoted = dg.materialize([production], instance=pipeline.instance, resources=resources)
    metadata = promoted.asset_materializations_for_node("production_model")[-1].metadata
    assert metadata["model_dir"].value == str(model_dir.path)
    assert read_promotion(model_dir).trial_key == key
