"""Asset checks: the stored artifacts have the properties the next stage relies on.

The checks on ``raw_ohlcv`` and ``features`` are blocking: when one fails, downstream assets in the
same run do not start.
"""

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import dagster as dg

from ploutos_core.data import invariants
from ploutos_core.features import FEATURE_NAMES
from ploutos_core.features.invariants import feature_frame_violations
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.raw import raw_ohlcv
from ploutos_pipeline.partitions import ticker_partitions
from ploutos_pipeline.resources import PloutosStorage

RAW_CHECKS = {
    "schema": "Exactly date, ticker, open, high, low, close, volume with their dtypes.",
    "order": "Sorted by ticker then date; no duplicate (date, ticker).",
    "prices": "Finite positive prices, low <= open/close <= high, volume >= 0.",
    "tickers": "Every ticker is a safe partition key and file name.",
}


def _result(check_name: str, asset: dg.AssetKey, problems: list[str]) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=check_name,
        asset_key=asset,
        passed=not problems,
        metadata={"problems": dg.MetadataValue.json(problems[:20])} if problems else {},
    )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(name, asset=raw_ohlcv, description=text, blocking=True)
        for name, text in RAW_CHECKS.items()
    ]
)
def raw_ohlcv_checks(storage: PloutosStorage) -> Iterable[dg.AssetCheckResult]:
    frame = storage.read_ohlcv_rows()
    found = {
        "schema": invariants.ohlcv_schema_violations(frame),
        "order": invariants.ohlcv_order_violations(frame),
        "prices": invariants.ohlcv_price_violations(frame),
        "tickers": invariants.ticker_violations(list(frame["ticker"].unique())),
    }
    for name, problems in found.items():
        yield _result(name, raw_ohlcv.key, problems)


@dg.asset_check(
    asset=features,
    blocking=True,
    partitions_def=ticker_partitions,
    description="85 columns in registry order, float32, finite, dates strictly increasing.",
)
def features_valid(
    context: dg.AssetCheckExecutionContext, storage: PloutosStorage
) -> dg.AssetCheckResult:
    def violations(ticker: str) -> list[str]:
        frame = storage.read_feature(ticker)
        found = feature_frame_violations(frame, FEATURE_NAMES)
        return [f"{ticker}: {problem}" for problem in found]

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        problems = [p for found in pool.map(violations, context.partition_keys) for p in found]
    return _result("features_valid", features.key, problems)
