"""The weekly schedule and the sensors' decisions on unchanged, changed and new data."""

import datetime as dt

import dagster as dg
import pandas as pd

from ploutos_core.data.sample import make_market
from ploutos_pipeline.schedules import weekly_retrain
from ploutos_pipeline.sensors import csv_change_sensor, features_refresh_sensor
from tests.pipeline.conftest import Pipeline


def test_weekly_retrain_runs_the_retrain_job_monday_0300_utc() -> None:
    assert weekly_retrain.cron_schedule == "0 3 * * 1"
    assert weekly_retrain.execution_timezone == "UTC"
    assert weekly_retrain.job_name == "retrain"
    monday = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)
    with dg.instance_for_test() as instance:
        context = dg.build_schedule_context(instance=instance, scheduled_execution_time=monday)
        request = next(iter(weekly_retrain.evaluate_tick(context).run_requests))
    assert request.run_config == {}
    assert request.tags["dagster/schedule_name"] == "weekly_retrain"


def _csv_sensor(pipeline: Pipeline, cursor: str | None) -> dg.SensorResult | dg.SkipReason:
    with dg.build_sensor_context(
        instance=pipeline.instance, cursor=cursor, resources=pipeline.defs.resources
    ) as context:
        return csv_change_sensor(context)


def test_csv_sensor_fires_on_content_changes_only(pipeline: Pipeline) -> None:
    first = _csv_sensor(pipeline, None)
    assert isinstance(first, dg.SensorResult) and len(first.run_requests) == 1
    assert first.asset_events[0].asset_key == dg.AssetKey("raw_ohlcv_csv")
    unchanged = _csv_sensor(pipeline, first.cursor)
    assert isinstance(unchanged, dg.SkipReason)
    pipeline.csv.write_bytes(pipeline.csv.read_bytes() + b"\n")
    pipeline.csv.write_text(pipeline.csv.read_text().rstrip("\n") + "\n")
    assert isinstance(_csv_sensor(pipeline, first.cursor), dg.SkipReason)
    frame = pd.read_csv(pipeline.csv)
    frame.loc[0, "volume"] += 1
    frame.to_csv(pipeline.csv, index=False)
    changed = _csv_sensor(pipeline, first.cursor)
    assert isinstance(changed, dg.SensorResult) and changed.cursor != first.cursor


class FeaturesSensor:
    """Evaluates features_refresh_sensor tick after tick, carrying its cursor like the daemon."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.cursor: str | None = None

    def tick(self) -> list[dg.RunRequest]:
        context = dg.build_sensor_context(
            instance=self.pipeline.instance,
            cursor=self.cursor,
            repository_def=self.pipeline.defs.get_repository_def(),
        )
        data = features_refresh_sensor.evaluate_tick(context)
        self.cursor = data.cursor or self.cursor
        return list(data.run_requests or [])


def _ranges(requests: list[dg.RunRequest]) -> list[tuple[str, str]]:
    return [
        (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
        for r in requests
    ]


def test_features_sensor_recomputes_exactly_the_changed_and_new_tickers(
    pipeline: Pipeline,
) -> None:
    sensor = FeaturesSensor(pipeline)
    pipeline.run("refresh_raw_ohlcv")
    tickers = pipeline.tickers()
    assert _ranges(sensor.tick()) == [(tickers[0], tickers[-1])]

    pipeline.run("refresh_raw_ohlcv")
    assert sensor.tick() == []

    frame = pd.read_csv(pipeline.csv)
    rows = frame.index[frame["ticker"] == tickers[1]][-2:]
    frame.loc[rows, "volume"] *= 2
    frame.to_csv(pipeline.csv, index=False)
    pipeline.run("refresh_raw_ohlcv")
    assert _ranges(sensor.tick()) == [(tickers[1], tickers[1])]

    newcomer = make_market(1, 420, seed=99, late_listing=False, delisting=False)
    newcomer["ticker"] = "ZZZ1"
    frame = pd.concat([pd.read_csv(pipeline.csv), newcomer.astype({"date": str})])
    frame.to_csv(pipeline.csv, index=False)
    pipeline.run("refresh_raw_ohlcv")
    assert _ranges(sensor.tick()) == [("ZZZ1", "ZZZ1")]
