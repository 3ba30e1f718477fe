"""Stage 2: 85 indicators per ticker, one Parquet partition per ticker."""

from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import pandas as pd

from ploutos_core.features import FEATURE_VERSION
from ploutos_core.storage import SOURCE_FINGERPRINT_ATTR
from ploutos_pipeline.assets.raw import raw_ohlcv
from ploutos_pipeline.executors import features_backfill_policy
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.partitions import ticker_partitions
from ploutos_pipeline.resources import PloutosStorage


@dg.asset(
    deps=[raw_ohlcv],
    partitions_def=ticker_partitions,
    backfill_policy=features_backfill_policy(),
    code_version=FEATURE_VERSION,
    io_manager_key="features_io_manager",
    group_name="features",
    kinds={"pandas", "parquet"},
    description=(
        "85 scale-free technical indicators per ticker (docs/FEATURES.md), float32, indexed by "
        "date, warm-up rows dropped. A backfill of many tickers runs as one run over all cores, "
        "or as runs of $PLOUTOS_FEATURES_PER_RUN tickers when that is set (a cluster)."
    ),
)
def features(context: dg.AssetExecutionContext, storage: PloutosStorage) -> dict[str, pd.DataFrame]:
    from ploutos_core.features.compute import compute_features_many, feature_dates

    tickers = list(context.partition_keys)
    with reported_as_failure():
        rows = storage.read_ohlcv_rows(tickers)
    missing = sorted(set(tickers) - set(rows["ticker"].unique()))
    if missing:
        raise dg.Failure(
            f"tickers {missing[:10]} have no rows in raw_ohlcv; they left the CSV. "
            "Re-materialize raw_ohlcv, or delete these partitions from the `tickers` partition set."
        )
    context.log.info(f"computing features for {len(tickers)} tickers")
    fingerprints = storage.read_fingerprints()
    with reported_as_failure(), ThreadPoolExecutor(max_workers=1) as background:
        computing = background.submit(compute_features_many, rows)
        _add_partition_metadata(context, storage, feature_dates(rows))
        frames = computing.result()
    for ticker, frame in frames.items():
        # Stored with the file: later stages refuse features computed from other raw rows.
        frame.attrs[SOURCE_FINGERPRINT_ATTR] = fingerprints[ticker]
    return frames


def _add_partition_metadata(
    context: dg.AssetExecutionContext,
    storage: PloutosStorage,
    dates: dict[str, pd.DatetimeIndex],
) -> None:
    """Rows, first and last date, and file of every partition.

    Dagster checks each per-partition call against the instance's partition list, a query of
    about 8 ms: for a 500-ticker backfill this runs while the features compute, from the dates
    the frames will have.
    """
    for ticker, index in dates.items():
        context.add_asset_metadata(
            {
                "rows": len(index),
                "first_date": str(index[0].date()) if len(index) else "",
                "last_date": str(index[-1].date()) if len(index) else "",
                "path": dg.MetadataValue.path(storage.feature_location(ticker)),
            },
            partition_key=ticker,
        )
