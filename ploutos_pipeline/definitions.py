"""The Dagster code location: assembles assets, checks, resources, jobs, schedules and sensors."""

import dagster as dg

from ploutos_pipeline.assets.backtest import backtest
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.model import trained_model
from ploutos_pipeline.assets.raw import raw_ohlcv, raw_ohlcv_csv
from ploutos_pipeline.checks import features_valid, raw_ohlcv_checks
from ploutos_pipeline.io_managers import FeaturesIOManager
from ploutos_pipeline.jobs import features_job, raw_ohlcv_job, retrain_job
from ploutos_pipeline.resources import default_resources
from ploutos_pipeline.schedules import weekly_retrain


def build_definitions() -> dg.Definitions:
    resources = default_resources()
    return dg.Definitions(
        assets=[raw_ohlcv_csv, raw_ohlcv, features, trained_model, backtest],
        asset_checks=[raw_ohlcv_checks, features_valid],
        jobs=[retrain_job, raw_ohlcv_job, features_job],
        schedules=[weekly_retrain],
        resources={
            **resources,
            "features_io_manager": FeaturesIOManager(storage=resources["storage"]),
            "io_manager": dg.FilesystemIOManager(
                base_dir=str(resources["storage"].base / "dagster_io")
            ),
        },
    )


defs = build_definitions()
