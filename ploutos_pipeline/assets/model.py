"""Stage 3: PPO training as one op in the ``gpu`` pool (one training at a time per instance).

Training code (torch, Stable-Baselines3) is imported by the step that trains, not by the code
location: every Dagster process (webserver, daemon, run and step workers) loads this module.
"""

from typing import TYPE_CHECKING

import dagster as dg

from ploutos_core import object_store
from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.config import TrainingConfig
from ploutos_core.object_store import WorkingCopy
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.executors import GPU_QUEUE_TAGS
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.resources import PloutosStorage
from ploutos_pipeline.run_config import config_class_from_yaml, to_core
from ploutos_pipeline.termination import stops_when_terminated

if TYPE_CHECKING:
    from ploutos_core.training import TrainingResult

TrainedModelConfig = config_class_from_yaml(
    TrainingConfig, "training", "TrainedModelConfig", overlay_env="PLOUTOS_TRAINING_CONFIG"
)
MODEL_DIR = "model_dir"
"""Metadata key of a model asset's directory: how later assets find the model."""


def _universe(context: dg.AssetExecutionContext, storage: PloutosStorage) -> list[str]:
    """The tickers of the current raw_ohlcv, all of whose feature partitions must exist."""
    tickers = sorted(storage.read_fingerprints())
    if not tickers:
        raise dg.Failure("raw_ohlcv has not been materialized; run `make demo` or materialize it")
    done = context.instance.get_materialized_partitions(features.key)
    stored = storage.feature_tickers()
    missing = [t for t in tickers if t not in done or t not in stored]
    if missing:
        raise dg.Failure(
            f"{len(missing)} features partitions are missing: {missing[:20]}. Materialize them "
            "first, e.g. `dagster asset materialize -m ploutos_pipeline.definitions --select "
            f"features --partition-range {missing[0]}...{missing[-1]}` or backfill from the UI."
        )
    return tickers


def trading_universe(
    context: dg.AssetExecutionContext, storage: PloutosStorage, manifest: Manifest
) -> list[str]:
    """The tickers a model trades in the pipeline: a ``shared`` policy reads any universe and
    trades the current one (raw_ohlcv's tickers, new listings included, dropped ones gone);
    every other policy its own ticker list, which its observation is built for."""
    return _universe(context, storage) if manifest.policy == "shared" else manifest.tickers


def latest_model_location(instance: dg.DagsterInstance, asset: dg.AssetKey) -> str:
    """The directory (a path or a URL) of ``asset``'s latest materialization (a model asset's
    ``model_dir``)."""
    event = instance.get_latest_materialization_event(asset)
    if event is None or event.asset_materialization is None:
        raise dg.Failure(f"{asset.to_user_string()} has not been materialized; train a model first")
    return str(event.asset_materialization.metadata[MODEL_DIR].value)


def latest_model_dir(instance: dg.DagsterInstance, asset: dg.AssetKey) -> ModelDir:
    """:func:`latest_model_location` on a local root, as a :class:`ModelDir`."""
    return ModelDir(latest_model_location(instance, asset))


def model_metadata(result: "TrainingResult", copy: WorkingCopy | None = None) -> dict[str, object]:
    """What the UI shows of a trained model, from its manifest; paths as ``copy`` (the working
    copy the model was trained into) names them."""
    manifest: Manifest = result.manifest
    where = copy.location_of if copy is not None else str
    return {
        MODEL_DIR: dg.MetadataValue.path(where(result.output_dir)),
        "timesteps": manifest.timesteps,
        "wall_time_s": round(result.wall_time_s, 1),
        "steps_per_second": round(result.steps_per_second, 1),
        "ep_rew_mean": dg.MetadataValue.float(
            float("nan") if manifest.ep_rew_mean is None else manifest.ep_rew_mean
        ),
        "device": manifest.device,
        "policy": manifest.policy,
        "tickers": len(manifest.tickers),
        "train_period": str(manifest.train_period),
        "test_period": str(manifest.test_period),
        "tensorboard": dg.MetadataValue.md(
            f"`tensorboard --logdir {where(result.tensorboard_dir)}`"
        ),
    }


@dg.asset(
    deps=[features],
    pool="gpu",
    op_tags=GPU_QUEUE_TAGS,
    group_name="model",
    kinds={"pytorch"},
    description=(
        "A PPO (Stable-Baselines3) agent with its VecNormalize statistics, trained on the "
        "training period of every ticker. A new model directory per run."
    ),
)
def trained_model(
    context: dg.AssetExecutionContext, config: TrainedModelConfig, storage: PloutosStorage
) -> dg.MaterializeResult:
    from ploutos_core.training import train

    tickers = _universe(context, storage)
    location = storage.new_model_location(context.run.run_id)
    with reported_as_failure(), stops_when_terminated(context) as stop:
        training_config = to_core(config, TrainingConfig, "trained_model run config")
        market = storage.load_market(tickers)
        # On an object store the model, its checkpoints and TensorBoard logs go up when the
        # training ends, also when it is interrupted (interrupted_model.zip); manifest last.
        with object_store.working_copy(location, upload_on_error=True) as copy:
            result = train(
                training_config, market, copy.path, logger=context.log, extra_callbacks=[stop]
            )
    return dg.MaterializeResult(metadata=model_metadata(result, copy))
