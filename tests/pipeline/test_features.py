"""features: one single run for many partitions, one Parquet file each, and the blocking check."""

import dagster as dg
import pytest

from ploutos_core.features import FEATURE_NAMES, FEATURE_VERSION, compute_features
from ploutos_core.storage import read_parquet
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.executors import FEATURES_PER_RUN_ENV, features_backfill_policy
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


def test_features_per_run_splits_a_backfill_into_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FEATURES_PER_RUN_ENV, raising=False)
    assert features_backfill_policy() == dg.BackfillPolicy.single_run()
    assert features.backfill_policy == dg.BackfillPolicy.single_run()  # one machine: one run
    monkeypatch.setenv(FEATURES_PER_RUN_ENV, "250")
    assert features_backfill_policy() == dg.BackfillPolicy.multi_run(max_partitions_per_run=250)
    for bad in ("0", "-3", "many"):
        monkeypatch.setenv(FEATURES_PER_RUN_ENV, bad)
        with pytest.raises(ValueError, match=f"PLOUTOS_FEATURES_PER_RUN='{bad}'"):
            features_backfill_policy()
