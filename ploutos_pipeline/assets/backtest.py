"""Stage 4: out-of-sample backtest of the latest model, against an equal-weight benchmark."""


import base64
import datetime as dt
import json
from pathlib import Path

import dagster as dg

from ploutos_core.backtest import run_backtest
from ploutos_core.config import BacktestConfig
from ploutos_core.env import load_market
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.resources import PloutosStorage
from ploutos_pipeline.run_config import config_class_from_yaml, to_core

# Runs when trained_model has a new materialization (from the UI or the CLI), not when features
# change: new data marks the model stale, it does not re-evaluate an old model.
AFTER_EACH_NEW_MODEL = dg.AutomationCondition.eager().ignore(dg.AssetSelection.assets("features"))

BacktestRunConfig = config_class_from_yaml(BacktestConfig, "backtest", "BacktestRunConfig")


@dg.asset(
    deps=[features],
    group_name="backtest",
    kinds={"matplotlib", "parquet"},
    automation_condition=AFTER_EACH_NEW_MODEL,
    description=(
        "The latest model run over its test period (after the embargo) as one portfolio, with "
        "metrics and plots, side by side with an equal-weight buy-and-hold benchmark."
    ),
)
def backtest(
    context: dg.AssetExecutionContext,
    config: BacktestRunConfig,
    storage: PloutosStorage,
    trained_model: str,
) -> dg.MaterializeResult:
    model_dir = Path(trained_model)
    manifest = json.loads((model_dir / "manifest.json").read_text())
    market = load_market(storage.features_dir, storage.raw_ohlcv_path, manifest["tickers"])
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    output_dir = storage.backtests_dir / f"{stamp}-{context.run_id[:8]}"
    report = run_backtest(
        model_dir / "final_model.zip",
        market,
        to_core(config, BacktestConfig, "backtest run config"),
        output_dir,
    )
    return dg.MaterializeResult(metadata=_metadata(report, model_dir, output_dir))


def _metadata(report, model_dir: Path, output_dir: Path) -> dict[str, object]:
    metadata: dict[str, object] = {
        f"{side}_{name}": dg.MetadataValue.float(float(value))
        for side, values in (("strategy", report.strategy), ("benchmark", report.benchmark))
        for name, value in values.items()
    }
    png = base64.b64encode(report.equity_thumbnail).decode()
    metadata.update(
        {
            "metrics": dg.MetadataValue.md(report.metrics_table),
            "equity_plot": dg.MetadataValue.md(f"![equity](data:image/png;base64,{png})"),
            "model_dir": dg.MetadataValue.path(str(model_dir)),
            "output_dir": dg.MetadataValue.path(str(output_dir)),
            "test_period": f"{report.start} .. {report.end}",
        }
    )
    return metadata
