"""The weekly schedule and the sensors' decisions on unchanged, changed and new data."""

import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from ploutos_core.data.sample import make_market
from ploutos_pipeline.schedules import weekly_retrain
from ploutos_pipeline.sensors import csv_change_sensor, features_refresh_sensor
from tests.pipeline.conftest import Pipeline
from tests.support.configs import TINY_TRAINING

MONDAY = dt.datetime(2026, 11, 30, 3, 0, tzinfo=dt.UTC)


def weekly_tick(pipeline: Pipeline) -> dg.RunRequest | dg.SkipReason:
    with dg.build_schedule_context(
        instance=pipeline.instance,
        scheduled_execution_time=MONDAY,
        resources={"storage": pipeline.defs.resources["storage"]},
    ) as context:
        result = weekly_retrain.evaluate_tick(context)
    return result.run_requests[0] if result.run_requests else result.skip_message


def test_weekly_retrain_runs_monday_0300_utc_and_waits_for_data(pipeline: Pipeline) -> None:
    assert weekly_retrain.cron_schedule == "0 3 * * 1"
    assert weekly_retrain.execution_timezone == "UTC"
    assert weekly_retrain.job_name == "refresh_and_retrain"
    assert "raw_ohlcv has not been materialized" in weekly_tick(pipeline)


@pytest.mark.slow
def test_weekly_retrain_recomputes_exactly_the_stale_features_first(pipeline: Pipeline) -> None:
    pipeline.run("refresh_raw_ohlcv")
    tickers = pipeline.tickers()
    pipeline.run_features(tickers)
    fresh = weekly_tick(pipeline)
    assert fresh.asset_selection == [dg.AssetKey("trained_model"), dg.AssetKey("backtest")]
    assert "dagster/asset_partition_range_start" not in fresh.tags

    frame = pd.read_csv(pipeline.csv)
    changed = tickers[1]
    last = frame.index[frame["ticker"] == changed][-1]
    frame.loc[last, ["open", "high", "low", "close"]] *= 1.01
    frame.to_csv(pipeline.csv, index=False)
    pipeline.run("refresh_raw_ohlcv")
    stale = weekly_tick(pipeline)
    assert stale.asset_selection is None
    assert stale.tags["dagster/asset_partition_range_start"] == changed
    assert stale.tags["dagster/asset_partition_range_end"] == changed

    run = pipeline.run(
        "refresh_and_retrain",
        tags=stale.tags,
        run_config={"ops": {"trained_model": {"config": TINY_TRAINING}}},
    )
    assert run.success
    recomputed = [e.partition for e in run.asset_materializations_for_node("features")]
    assert recomputed == [changed]
    assert run.asset_materializations_for_node("trained_model")
    assert weekly_tick(pipeline).asset_selection is not None
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
