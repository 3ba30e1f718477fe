"""Stage 1: the user's CSV, observed by content hash, and the validated ``raw_ohlcv`` table."""

import dagster as dg

from ploutos_core.config import DataConfig
from ploutos_core.data import content_hash, read_ohlcv
from ploutos_core.data.lineage import diff_fingerprints, frame_fingerprint, ticker_fingerprints
from ploutos_core.features import MIN_HISTORY_BARS
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.partitions import ticker_partitions
from ploutos_pipeline.resources import RAW_OHLCV, OhlcvSource, PloutosStorage
from ploutos_pipeline.run_config import config_class_from_yaml, to_core

RawOhlcvConfig = config_class_from_yaml(DataConfig, "data", "RawOhlcvConfig")


@dg.observable_source_asset(
    group_name="raw",
    description="The input OHLCV CSV ($PLOUTOS_DATA). Its data version is a hash of its bytes.",
)
def raw_ohlcv_csv(ohlcv_source: OhlcvSource) -> dg.ObserveResult:
    with reported_as_failure():
        digest = content_hash(ohlcv_source.path)
    return dg.ObserveResult(
        data_version=dg.DataVersion(digest),
        metadata={"path": dg.MetadataValue.path(ohlcv_source.path), "sha256": digest},
    )


@dg.asset(
    deps=[raw_ohlcv_csv],
    group_name="raw",
    kinds={"pandas", "parquet"},
    description="The validated long OHLCV table; registers one `tickers` partition per ticker.",
)
def raw_ohlcv(
    context: dg.AssetExecutionContext,
    config: RawOhlcvConfig,
    ohlcv_source: OhlcvSource,
    storage: PloutosStorage,
) -> dg.MaterializeResult:
    with reported_as_failure():
        data_config = to_core(config, DataConfig, "raw_ohlcv run config")
        loaded = read_ohlcv(
            ohlcv_source.path, adjust=data_config.adjust_prices, min_history=MIN_HISTORY_BARS
        )
    frame = loaded.frame
    fingerprints = ticker_fingerprints(frame)
    previous = storage.read_fingerprints()
    changes = diff_fingerprints(previous, fingerprints)

    with reported_as_failure():
        storage.write_raw_ohlcv(frame, fingerprints)

    registered = set(context.instance.get_dynamic_partitions(ticker_partitions.name))
    added = sorted(set(fingerprints) - registered)
    if added:
        context.instance.add_dynamic_partitions(ticker_partitions.name, added)
    gone = sorted(registered - set(fingerprints))
    if gone:
        context.log.warning(
            f"{len(gone)} registered tickers are no longer in the CSV and are kept as partitions "
            f"(their features are not recomputed): {gone}"
        )
    return dg.MaterializeResult(
        data_version=dg.DataVersion(frame_fingerprint(fingerprints)),
        metadata={
            "path": dg.MetadataValue.path(storage.location(RAW_OHLCV)),
            "source": dg.MetadataValue.path(ohlcv_source.path),
            "rows": len(frame),
            "tickers": len(fingerprints),
            "first_date": str(frame["date"].min().date()),
            "last_date": str(frame["date"].max().date()),
            "dropped_tickers": dg.MetadataValue.json(loaded.dropped),
            "repairs": dg.MetadataValue.json(list(loaded.repairs)),
            "new_tickers": dg.MetadataValue.json(list(changes.new)),
            "changed_tickers": dg.MetadataValue.json(list(changes.changed)),
            "removed_tickers": dg.MetadataValue.json(list(gone)),
            "partitions_added": len(added),
        },
    )

