"""Sensors: new data in, exactly the affected features recomputed, models only marked stale.

``csv_change_sensor`` hashes the input CSV on every tick; when the content changes it records an
observation of ``raw_ohlcv_csv`` (so the UI marks everything downstream stale) and launches
``refresh_raw_ohlcv``. ``features_refresh_sensor`` then reads that materialization's metadata and
recomputes the ``features`` partitions of the new and changed tickers only. Training is never
started by new data: that stays the weekly schedule's or a person's decision.

Paper trading: ``paper_sessions_sensor`` registers a ``sessions`` partition for every trading day
after the production model's promotion and requests the ``paper_ledger`` run of each session not
yet booked, and the ``signals`` of the latest bar, whenever the features change.
``drift_retrain_sensor`` (off by default) asks for a retrain and a new evaluation of every fold x
seed after ``retrain_after_warnings`` consecutive drift warnings; judging the new folds
(``verdict``) and promoting (``production_model``) stay a person's step.
"""

import dagster as dg

from ploutos_core import object_store
from ploutos_core.data import content_hash
from ploutos_core.data.lineage import contiguous_ranges
from ploutos_core.errors import DataError, PloutosError
from ploutos_core.market.dates import iso_day
from ploutos_core.signals.ledger import booked_sessions
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.raw import raw_ohlcv, raw_ohlcv_csv
from ploutos_pipeline.assets.signals import (
    DRIFT_WARNING,
    paper_config,
    paper_ledger,
    production_promotion,
)
from ploutos_pipeline.jobs import (
    features_job,
    fold_evaluation_job,
    paper_ledger_job,
    raw_ohlcv_job,
    retrain_job,
    signals_job,
)
from ploutos_pipeline.partitions import session_partitions, ticker_partitions
from ploutos_pipeline.resources import OhlcvSource, PloutosStorage


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


@dg.sensor(
    jobs=[paper_ledger_job, signals_job],
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description=(
        "Add a sessions partition per trading day after the promotion; book each new session "
        "and refresh the signals when the features change."
    ),
)
def paper_sessions_sensor(
    context: dg.SensorEvaluationContext, storage: PloutosStorage
) -> dg.SensorResult | dg.SkipReason:
    latest = context.instance.fetch_materializations(features.key, limit=1).records
    if not latest:
        return dg.SkipReason("features have not been materialized")
    try:
        model_location, promotion = production_promotion(context.instance)
        bars = storage.read_ohlcv_rows(columns=["date"])
        booked = booked_sessions(storage.paper_location(model_location))
    except (PloutosError, dg.Failure) as exc:
        return dg.SkipReason(str(exc))
    days = (iso_day(d) for d in bars["date"].drop_duplicates().sort_values().to_numpy())
    sessions = [day for day in days if day > promotion.last_bar]
    known = set(context.instance.get_dynamic_partitions(session_partitions.name))
    # A session that cannot be booked yet (a late bar) is tried again after the next refresh.
    version = f"{object_store.name(model_location)}:{latest[0].storage_id}"
    requests = [
        dg.RunRequest(job_name=paper_ledger_job.name, partition_key=s, run_key=f"{version}:{s}")
        for s in sessions
        if s not in booked
    ]
    requests.append(dg.RunRequest(job_name=signals_job.name, run_key=f"{version}:signals"))
    return dg.SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[
            session_partitions.build_add_request([s for s in sessions if s not in known])
        ],
    )


def consecutive_drift_warnings(instance: dg.DagsterInstance, n: int) -> str | None:
    """The latest session when the ``n`` latest booked sessions all warned of drift, else None."""
    records = instance.fetch_materializations(paper_ledger.key, limit=max(4 * n, 20)).records
    latest: dict[str, bool] = {}
    for record in records:  # newest first: the first seen is a partition's latest
        materialization = record.asset_materialization
        if materialization is not None and materialization.partition not in latest:
            warned = materialization.metadata.get(DRIFT_WARNING)
            latest[materialization.partition] = bool(warned is not None and warned.value)
    last = sorted(latest)[-n:]
    return last[-1] if len(last) == n and all(latest[s] for s in last) else None


def drift_retrain_sensor(fold_keys: list[str]) -> dg.SensorDefinition:
    """The sensor that retrains (``retrain``) and re-evaluates every fold x seed of
    ``fold_keys`` (``evaluate_folds``) after consecutive drift warnings."""

    @dg.sensor(
        name="drift_retrain_sensor",
        jobs=[retrain_job, fold_evaluation_job],
        minimum_interval_seconds=300,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description=(
            "After retrain_after_warnings consecutive drift warnings on paper_ledger, retrain "
            "and re-run the walk-forward folds (off by default)."
        ),
    )
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        n = paper_config().retrain_after_warnings
        session = consecutive_drift_warnings(context.instance, n)
        if session is None:
            return dg.SkipReason(f"fewer than {n} consecutive drift warnings")
        context.log.info(f"{n} consecutive drift warnings up to {session}: retraining")
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(job_name=retrain_job.name, run_key=f"drift:{session}:retrain"),
                *(
                    dg.RunRequest(
                        job_name=fold_evaluation_job.name,
                        partition_key=key,
                        run_key=f"drift:{session}:{key}",
                    )
                    for key in fold_keys
                ),
            ]
        )

    return _sensor
