"""raw_ohlcv_csv and raw_ohlcv: validation, partitions, staleness, atomicity."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
from dagster._utils.test.data_versions import get_stale_status_resolver

from ploutos_core.storage import read_parquet
from tests.pipeline.conftest import Pipeline
from tests.support.servers import make_home

RAW = dg.AssetKey("raw_ohlcv")
DAGSTER = str(Path(sys.executable).parent / "dagster")


def _raw_metadata(result: dg.ExecuteInProcessResult) -> dict:
    event = result.asset_materializations_for_node("raw_ohlcv")[-1]
    return {k: v.value for k, v in event.metadata.items()}


def _stale(pipeline: Pipeline) -> str:
    assets = [a for a in pipeline.defs.assets if a.key.path[0] in ("raw_ohlcv_csv", "raw_ohlcv")]
    resolver = get_stale_status_resolver(pipeline.instance, assets)
    return resolver.get_status(RAW).value


def test_raw_ohlcv_writes_table_and_registers_partitions(pipeline: Pipeline) -> None:
    result = pipeline.run("refresh_raw_ohlcv")
    assert result.success
    meta = _raw_metadata(result)
    stored = read_parquet(meta["path"])
    expected = sorted(pd.read_csv(pipeline.csv)["ticker"].unique())
    assert pipeline.tickers() == expected
    assert meta["tickers"] == len(expected)
    assert meta["rows"] == len(stored)
    assert meta["new_tickers"] == expected
    checks = result.get_asset_check_evaluations()
    assert {c.check_name for c in checks} == {"schema", "order", "prices", "tickers"}
    assert all(c.passed for c in checks)


def test_changed_ticker_is_reported_and_only_it(pipeline: Pipeline) -> None:
    pipeline.run("refresh_raw_ohlcv")
    frame = pd.read_csv(pipeline.csv)
    ticker = sorted(frame["ticker"].unique())[1]
    rows = frame.index[frame["ticker"] == ticker][-3:]
    frame.loc[rows, ["open", "high", "low", "close"]] *= 1.01
    frame.to_csv(pipeline.csv, index=False)
    meta = _raw_metadata(pipeline.run("refresh_raw_ohlcv"))
    assert meta["changed_tickers"] == [ticker]
    assert meta["new_tickers"] == []


def test_raw_ohlcv_turns_stale_exactly_when_the_csv_content_changes(pipeline: Pipeline) -> None:
    pipeline.observe()
    pipeline.run("refresh_raw_ohlcv")
    assert _stale(pipeline) == "FRESH"
    os.utime(pipeline.csv)  # touched, same bytes
    pipeline.observe()
    assert _stale(pipeline) == "FRESH"
    with open(pipeline.csv, "a") as handle:
        frame = pd.read_csv(pipeline.csv)
        last = frame[frame["ticker"] == frame["ticker"].iloc[0]].iloc[-1].copy()
        last["date"] = (pd.Timestamp(last["date"]) + pd.offsets.BDay(1)).strftime("%Y-%m-%d")
        handle.write(",".join(str(last[c]) for c in frame.columns) + "\n")
    pipeline.observe()
    assert _stale(pipeline) == "STALE"


def test_bad_csv_fails_with_the_data_error_and_keeps_the_previous_table(
    pipeline: Pipeline,
) -> None:
    meta = _raw_metadata(pipeline.run("refresh_raw_ohlcv"))
    before = Path(meta["path"]).read_bytes()
    frame = pd.read_csv(pipeline.csv)
    frame.loc[5, "high"] = frame.loc[5, "low"] / 2
    frame.to_csv(pipeline.csv, index=False)
    result = pipeline.run("refresh_raw_ohlcv", raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("raw_ohlcv")
    message = failure.user_failure_data.description
    assert message.startswith("DataError: ")
    assert pipeline.csv.name in message
    assert "high below low" in message
    assert Path(meta["path"]).read_bytes() == before


def test_definitions_validate(tmp_path: Path) -> None:
    out = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "ploutos_pipeline.definitions"],
        env={**os.environ, "DAGSTER_HOME": str(make_home(tmp_path / "home"))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stdout + out.stderr
