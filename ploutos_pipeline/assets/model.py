"""Stage 3: PPO training as one op in the ``gpu`` pool (one training at a time per instance)."""


import datetime as dt
import json

import dagster as dg

from ploutos_core.config import TrainingConfig
from ploutos_core.market import load_market
from ploutos_core.training import train
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.resources import PloutosStorage
from ploutos_pipeline.run_config import config_class_from_yaml, to_core

TrainedModelConfig = config_class_from_yaml(
    TrainingConfig, "training", "TrainedModelConfig", overlay_env="PLOUTOS_TRAINING_CONFIG"
)


def _universe(context: dg.AssetExecutionContext, storage: PloutosStorage) -> list[str]:
    """The tickers of the current raw_ohlcv, all of whose feature partitions must exist."""
    tickers = sorted(storage.read_fingerprints())
    if not tickers:
        raise dg.Failure("raw_ohlcv has not been materialized; run `make demo` or materialize it")
    done = context.instance.get_materialized_partitions(features.key)
    missing = [t for t in tickers if t not in done or not storage.feature_path(t).exists()]
    if missing:
        raise dg.Failure(
            f"{len(missing)} features partitions are missing: {missing[:20]}. Materialize them "
            "first, e.g. `dagster asset materialize -m ploutos_pipeline.definitions --select "
            f"features --partition-range {missing[0]}...{missing[-1]}` or backfill from the UI."
        )
    return tickers


@dg.asset(
    deps=[features],
    pool="gpu",
    group_name="model",
    kinds={"pytorch"},
    description=(
        "A PPO (Stable-Baselines3) agent with its VecNormalize statistics, trained on the "
        "training period of every ticker. A new model directory per run."
    ),
)
def trained_model(
    context: dg.AssetExecutionContext, config: TrainedModelConfig, storage: PloutosStorage
) -> dg.Output[str]:
    tickers = _universe(context, storage)
    stamp = f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{context.run.run_id[:8]}"
    model_dir = storage.models_dir / stamp
    with reported_as_failure():
        training_config = to_core(config, TrainingConfig, "trained_model run config")
        market = load_market(storage.features_dir, storage.raw_ohlcv_path, tickers)
        result = train(training_config, market, model_dir, logger=context.log)
    manifest = json.loads(result.manifest_path.read_text())
    train_period, test_period = manifest["train_period"], manifest["test_period"]
    return dg.Output(
        str(model_dir),
        metadata={
            "model_dir": dg.MetadataValue.path(str(model_dir)),
            "timesteps": result.timesteps,
            "wall_time_s": round(result.wall_time_s, 1),
            "steps_per_second": round(result.steps_per_second, 1),
            "ep_rew_mean": dg.MetadataValue.float(
                float("nan") if result.ep_rew_mean is None else result.ep_rew_mean
            ),
            "device": result.device,
            "tickers": len(tickers),
            "train_period": f"{train_period['start']} .. {train_period['end']}",
            "test_period": f"{test_period['start']} .. {test_period['end']}",
            "tensorboard": dg.MetadataValue.md(
                f"`tensorboard --logdir {result.tensorboard_dir}`"
            ),
        },
    )
