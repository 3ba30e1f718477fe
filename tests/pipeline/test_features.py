"""features: one single run for many partitions, one Parquet file each, and the blocking check."""

import dagster as dg

from ploutos_core.features import FEATURE_NAMES, FEATURE_VERSION, compute_features
from ploutos_core.storage import read_parquet
from ploutos_pipeline.assets.features import features
from tests.pipeline.conftest import Pipeline


def test_single_run_backfill_writes_one_file_per_ticker(pipeline: Pipeline) -> None:
    pipeline.run("refresh_raw_ohlcv")
    tickers = pipeline.tickers()
    result = pipeline.run_features(tickers)
    assert result.success
    raw = read_parquet(pipeline.storage / "raw_ohlcv" / "raw_ohlcv.parquet")
    for ticker in tickers:
        stored = read_parquet(pipeline.storage / "features" / f"{ticker}.parquet")
        assert tuple(stored.columns) == FEATURE_NAMES
        rows = raw[raw["ticker"] == ticker].reset_index(drop=True)
        expected = compute_features(rows)
        assert stored.equals(expected)
    done = pipeline.instance.get_materialized_partitions(features.key)
    assert done == set(tickers)
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == ["features_valid"]
    assert checks[0].passed


def test_one_partition_alone_recomputes_only_it(pipeline: Pipeline) -> None:
    pipeline.run("refresh_raw_ohlcv")
    first, second, *_ = pipeline.tickers()
    result = pipeline.run_features([second, second])
    assert result.success
    assert pipeline.instance.get_materialized_partitions(features.key) == {second}
    assert not (pipeline.storage / "features" / f"{first}.parquet").exists()


def test_code_version_follows_the_registry() -> None:
    assert features.code_versions_by_key[dg.AssetKey("features")] == FEATURE_VERSION
