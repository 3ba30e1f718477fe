"""The weekly retrain. Off until turned on in the UI or with `dagster schedule start`.

Each tick first looks for stale ``features`` partitions (a ticker whose raw rows changed, a new
ticker, or features of another feature definition): the run then recomputes them before it trains
and backtests, so a model is never trained on features that lag the raw data.
"""

import os

import dagster as dg

from ploutos_core.features import FEATURE_VERSION
from ploutos_core.features.staleness import stale_tickers
from ploutos_pipeline.jobs import refresh_and_retrain_job
from ploutos_pipeline.partitions import ticker_partitions
from ploutos_pipeline.resources import PloutosStorage

WEEKLY_RETRAIN_CRON = os.environ.get("PLOUTOS_RETRAIN_CRON", "0 3 * * 1")
MODEL_STAGES = [dg.AssetKey("trained_model"), dg.AssetKey("backtest")]


def retrain_request(instance: dg.DagsterInstance, storage: PloutosStorage) -> dg.RunRequest:
    """The refresh-and-retrain run: a partition range over the stale tickers, if any.

    A run covers one range of consecutive partitions, so tickers between the first and the last
    stale one are recomputed too (deterministically, to the same values).
    """
    fingerprints = storage.read_fingerprints()
    with storage.market_inputs() as (features_dir, _):
        stale = set(stale_tickers(features_dir, fingerprints, FEATURE_VERSION))
    if not stale:
        return dg.RunRequest(asset_selection=MODEL_STAGES, tags={"ploutos/stale_features": "0"})
    ordered = [t for t in instance.get_dynamic_partitions(ticker_partitions.name) if t in stale]
    return dg.RunRequest(
        tags={
            "dagster/asset_partition_range_start": ordered[0],
            "dagster/asset_partition_range_end": ordered[-1],
            "ploutos/stale_features": str(len(stale)),
        }
    )


@dg.schedule(
    name="weekly_retrain",
    job=refresh_and_retrain_job,
    cron_schedule=WEEKLY_RETRAIN_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description=(
        "Every Monday 03:00 UTC ($PLOUTOS_RETRAIN_CRON overrides): recompute stale features, "
        "then retrain and backtest."
    ),
)
def weekly_retrain(
    context: dg.ScheduleEvaluationContext, storage: PloutosStorage
) -> dg.RunRequest | dg.SkipReason:
    if not storage.read_fingerprints():
        return dg.SkipReason("raw_ohlcv has not been materialized; nothing to train on")
    return retrain_request(context.instance, storage)
