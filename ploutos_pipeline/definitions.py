"""The Dagster code location: assembles assets, checks, resources, jobs, schedules and sensors."""

from __future__ import annotations

import dagster as dg

from ploutos_core import paths
from ploutos_core.config import EvaluationConfig
from ploutos_pipeline.assets import evaluation as evaluation_assets
from ploutos_pipeline.assets.backtest import backtest
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.model import trained_model
from ploutos_pipeline.assets.raw import raw_ohlcv, raw_ohlcv_csv
from ploutos_pipeline.assets.signals import paper_ledger, signals
from ploutos_pipeline.checks import features_valid, raw_ohlcv_checks
from ploutos_pipeline.executors import executor_from_env
from ploutos_pipeline.io_managers import FeaturesIOManager
from ploutos_pipeline.jobs import (
    features_job,
    fold_evaluation_job,
    observe_csv_job,
    paper_ledger_job,
    raw_ohlcv_job,
    refresh_and_retrain_job,
    retrain_job,
    signals_job,
)
from ploutos_pipeline.resources import OhlcvSource, PloutosStorage
from ploutos_pipeline.schedules import weekly_retrain
from ploutos_pipeline.sensors import (
    backtest_automation_sensor,
    csv_change_sensor,
    drift_retrain_sensor,
    features_refresh_sensor,
    paper_sessions_sensor,
)


def build_definitions(
    data_path: str | None = None,
    storage_root: str | None = None,
    evaluation: EvaluationConfig | None = None,
) -> dg.Definitions:
    """The code location; paths default to $PLOUTOS_DATA and $PLOUTOS_STORAGE, the evaluation
    assets' folds and seeds to config/evaluation.yaml (or $PLOUTOS_EVALUATION_CONFIG).

    ``$PLOUTOS_EXECUTOR`` (see :mod:`ploutos_pipeline.executors`) picks the jobs' executor.
    """
    storage = PloutosStorage(root=storage_root or paths.storage_root())
    if evaluation is None:
        fold_model, fold_backtest, verdict, promotion_gate, production_model = (
            evaluation_assets.fold_model,
            evaluation_assets.fold_backtest,
            evaluation_assets.verdict,
            evaluation_assets.promotion_gate,
            evaluation_assets.production_model,
        )
    else:
        fold_model, fold_backtest, verdict, promotion_gate, production_model = (
            evaluation_assets.evaluation_assets(evaluation)
        )
    return dg.Definitions(
        assets=[
            raw_ohlcv_csv,
            raw_ohlcv,
            features,
            trained_model,
            backtest,
            fold_model,
            fold_backtest,
            verdict,
            production_model,
            signals,
            paper_ledger,
        ],
        asset_checks=[raw_ohlcv_checks, features_valid, promotion_gate],
        jobs=[
            observe_csv_job,
            raw_ohlcv_job,
            features_job,
            retrain_job,
            refresh_and_retrain_job,
            fold_evaluation_job,
            signals_job,
            paper_ledger_job,
        ],
        schedules=[weekly_retrain],
        sensors=[
            csv_change_sensor,
            features_refresh_sensor,
            backtest_automation_sensor,
            paper_sessions_sensor,
            drift_retrain_sensor(fold_model.partitions_def.get_partition_keys()),
        ],
        resources={
            "ohlcv_source": OhlcvSource(path=data_path or paths.data_path()),
            "storage": storage,
            "features_io_manager": FeaturesIOManager(storage=storage),
        },
        executor=executor_from_env(),
    )


defs = build_definitions()
