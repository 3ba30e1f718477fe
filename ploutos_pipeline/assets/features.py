"""Stage 2: 85 indicators per ticker, one Parquet partition per ticker."""

import dagster as dg
import pandas as pd

from ploutos_core.features import FEATURE_VERSION, compute_features_many
from ploutos_pipeline.assets.raw import raw_ohlcv
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.partitions import ticker_partitions
from ploutos_pipeline.resources import PloutosStorage


@dg.asset(
    deps=[raw_ohlcv],
    partitions_def=ticker_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    code_version=FEATURE_VERSION,
    io_manager_key="features_io_manager",
    group_name="features",
    kinds={"pandas", "parquet"},
    description=(
        "85 scale-free technical indicators per ticker (docs/FEATURES.md), float32, indexed by "
        "date, warm-up rows dropped. A backfill of many tickers runs as one run over all cores."
    ),
)
def features(
    context: dg.AssetExecutionContext, storage: PloutosStorage
) -> dict[str, pd.DataFrame]:
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
    with reported_as_failure():
        computed = compute_features_many(rows)
    for ticker, frame in computed.items():
        context.add_asset_metadata(
            {
                "rows": len(frame),
                "first_date": str(frame.index.min().date()) if len(frame) else "",
                "last_date": str(frame.index.max().date()) if len(frame) else "",
                "path": dg.MetadataValue.path(str(storage.feature_path(ticker))),
            },
            partition_key=ticker,
        )
    return computed
