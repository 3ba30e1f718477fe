"""Jobs: the retrain (model, then its backtest), the weekly refresh-and-retrain, the refresh of
the data stages, the fold evaluation, and paper trading (signals, one ledger session)."""

import dagster as dg

retrain_job = dg.define_asset_job(
    name="retrain",
    selection=dg.AssetSelection.assets("trained_model", "backtest"),
    description="Train a new model on the current features, then backtest it.",
)

refresh_and_retrain_job = dg.define_asset_job(
    name="refresh_and_retrain",
    selection=dg.AssetSelection.assets("features", "trained_model", "backtest"),
    description=(
        "Recompute the stale features partitions (a partition range in the run's tags), then "
        "train and backtest; the weekly schedule picks the range, or leaves features out when "
        "none is stale."
    ),
)

raw_ohlcv_job = dg.define_asset_job(
    name="refresh_raw_ohlcv",
    selection=dg.AssetSelection.assets("raw_ohlcv"),
    description="Validate the input CSV into raw_ohlcv and register new tickers.",
)

features_job = dg.define_asset_job(
    name="refresh_features",
    selection=dg.AssetSelection.assets("features"),
    description="Recompute the features partitions a run names (one run for many tickers).",
)

observe_csv_job = dg.define_asset_job(
    name="observe_raw_ohlcv_csv",
    selection=dg.AssetSelection.assets("raw_ohlcv_csv"),
    description="Hash the input CSV: raw_ohlcv turns stale exactly when its content changes.",
)

signals_job = dg.define_asset_job(
    name="refresh_signals",
    selection=dg.AssetSelection.assets("signals"),
    description="The production model's orders for the next session, on the latest bars.",
)

paper_ledger_job = dg.define_asset_job(
    name="book_paper_session",
    selection=dg.AssetSelection.assets("paper_ledger"),
    description="Book one paper session (a sessions partition) and run its drift check.",
)

fold_evaluation_job = dg.define_asset_job(
    name="evaluate_folds",
    selection=dg.AssetSelection.assets("fold_model", "fold_backtest"),
    description="Train and backtest one walk-forward fold x seed (a partition of each).",
)
