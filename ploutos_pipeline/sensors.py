"""Sensors: new data in, exactly the affected features recomputed, models only marked stale.

``csv_change_sensor`` hashes the input CSV on every tick; when the content changes it records an
observation of ``raw_ohlcv_csv`` (so the UI marks everything downstream stale) and launches
``refresh_raw_ohlcv``. ``features_refresh_sensor`` then reads that materialization's metadata and
recomputes the ``features`` partitions of the new and changed tickers only. Training is never
started by new data: that stays the weekly schedule's or a person's decision.
"""

import dagster as dg

from ploutos_core.data import content_hash
from ploutos_core.data.lineage import contiguous_ranges
from ploutos_core.errors import DataError
from ploutos_pipeline.assets.raw import raw_ohlcv, raw_ohlcv_csv
from ploutos_pipeline.jobs import features_job, raw_ohlcv_job
from ploutos_pipeline.partitions import ticker_partitions
from ploutos_pipeline.resources import OhlcvSource


@dg.sensor(
    job=raw_ohlcv_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Re-validate raw_ohlcv when the input CSV's content (not its mtime) changes.",
)
def csv_change_sensor(
    context: dg.SensorEvaluationContext, ohlcv_source: OhlcvSource
) -> dg.SensorResult | dg.SkipReason:
    try:
        digest = content_hash(ohlcv_source.path)
    except DataError as exc:
        return dg.SkipReason(str(exc))
    if digest == context.cursor:
        return dg.SkipReason(f"{ohlcv_source.path} unchanged (sha256 {digest[:12]})")
    observation = dg.AssetObservation(
        asset_key=raw_ohlcv_csv.key,
        metadata={"path": dg.MetadataValue.path(ohlcv_source.path), "sha256": digest},
        tags={"dagster/data_version": digest},
    )
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=digest, tags={"ploutos/csv_sha256": digest})],
        asset_events=[observation],
        cursor=digest,
    )


@dg.asset_sensor(
    asset_key=raw_ohlcv.key,
    job=features_job,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="After raw_ohlcv, recompute the features of exactly its new and changed tickers.",
)
def features_refresh_sensor(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry
) -> dg.SensorResult | dg.SkipReason:
    metadata = asset_event.asset_materialization.metadata
    tickers = set(metadata["new_tickers"].value) | set(metadata["changed_tickers"].value)
    if not tickers:
        return dg.SkipReason("raw_ohlcv changed no ticker's rows")
    ordered = context.instance.get_dynamic_partitions(ticker_partitions.name)
    ranges = contiguous_ranges(ordered, tickers)
    context.log.info(f"recomputing features of {sorted(tickers)} in {len(ranges)} run(s)")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{asset_event.run_id}:{first}...{last}",
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
            )
            for first, last in ranges
        ]
    )


backtest_automation_sensor = dg.AutomationConditionSensorDefinition(
    name="backtest_after_each_model",
    target=dg.AssetSelection.assets("backtest"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=15,
    description="Backtest every new trained_model, whether the UI, the CLI or a schedule made it.",
)
