"""Stage 4: out-of-sample backtest of the latest model, against an equal-weight benchmark.

The backtest's model loading (torch) and figures (matplotlib) are imported by the step, not by the
code location (see :mod:`ploutos_pipeline.assets.model`).
"""

from pathlib import Path

import dagster as dg

from ploutos_core import object_store
from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.artifacts.model_dir import FINAL_MODEL
from ploutos_core.backtest import BacktestReport
from ploutos_core.backtest.input_health import WARN_FRACTION, InputHealth
from ploutos_core.config import BacktestConfig
from ploutos_core.object_store import WorkingCopy
from ploutos_core.storage import atomic_dir
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.model import (
    MODEL_DIR,
    latest_model_location,
    trading_universe,
    trained_model,
)
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.resources import BACKTESTS, PloutosStorage, run_stamp
from ploutos_pipeline.run_config import config_class_from_yaml, to_core

# Runs when trained_model has a new materialization (from the UI or the CLI), not when features
# change: new data marks the model stale, it does not re-evaluate an old model.
AFTER_EACH_NEW_MODEL = dg.AutomationCondition.eager().ignore(dg.AssetSelection.assets("features"))
ACCOUNTING_TOLERANCE = 1e-9

BacktestRunConfig = config_class_from_yaml(BacktestConfig, "backtest", "BacktestRunConfig")


@dg.asset(
    deps=[features, trained_model],
    group_name="backtest",
    kinds={"matplotlib", "parquet"},
    automation_condition=AFTER_EACH_NEW_MODEL,
    check_specs=[
        dg.AssetCheckSpec(
            "accounting",
            asset="backtest",
            description="Cash plus positions at close equals equity at every bar.",
        ),
        dg.AssetCheckSpec(
            "input_health",
            asset="backtest",
            description=(
                f"Warns when a ticker has more than {WARN_FRACTION:.0%} of its normalized inputs "
                "at the clip bound: the model sees inputs unlike anything it was trained on."
            ),
        ),
    ],
    description=(
        "The latest model run over its test period (after the embargo) as one portfolio, with "
        "metrics and plots, side by side with an equal-weight buy-and-hold benchmark."
    ),
)
def backtest(
    context: dg.AssetExecutionContext, config: BacktestRunConfig, storage: PloutosStorage
) -> dg.MaterializeResult:
    from ploutos_core.backtest.run import run_backtest

    model_location = latest_model_location(context.instance, trained_model.key)
    with (
        reported_as_failure(),
        object_store.fetched_model(object_store.join(model_location, FINAL_MODEL)) as model,
        storage.working_copy(BACKTESTS) as backtests,
    ):
        manifest = Manifest.read(ModelDir.of(model).manifest)
        market = storage.load_market(trading_universe(context, storage, manifest))
        backtest_config = to_core(config, BacktestConfig, "backtest run config")
        output_dir = backtests.path / run_stamp(context.run.run_id)
        with atomic_dir(output_dir) as tmp:
            report = run_backtest(model, market, backtest_config, tmp)
    report = report.moved_to(output_dir)
    context.log.info(f"backtest {report.test_start} .. {report.test_end}\n{report.table}")
    return dg.MaterializeResult(
        metadata=_metadata(report, model_location, backtests, output_dir),
        check_results=[
            dg.AssetCheckResult(
                check_name="accounting",
                passed=report.accounting_error < ACCOUNTING_TOLERANCE,
                metadata={"max_relative_error": report.accounting_error},
            ),
            _input_health_check(report.input_health),
        ],
    )


def _input_health_check(health: InputHealth) -> dg.AssetCheckResult:
    flagged = health.flagged
    return dg.AssetCheckResult(
        check_name="input_health",
        passed=not flagged,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "worst_ticker": str(health.worst_ticker),
            "worst_clipped_fraction": health.worst_clipped_fraction,
            "flagged_tickers": dg.MetadataValue.json(
                {t: round(health.per_ticker[t], 4) for t in flagged[:20]}
            ),
            "new_tickers": len(health.new_tickers),
            "new_tickers_clipped": dg.MetadataValue.json(
                {t: round(f, 4) for t, f in sorted(health.new_tickers.items())[:20]}
            ),
        },
    )


def _metadata(
    report: BacktestReport, model_location: str, backtests: WorkingCopy, output_dir: Path
) -> dict[str, object]:
    from ploutos_core.backtest.plots import markdown_image

    metadata: dict[str, object] = {
        name: dg.MetadataValue.float(float(value))
        for name, value in report.flat_metrics().items()
    }
    metadata.update(
        {
            "metrics": dg.MetadataValue.md(report.table),
            "equity_plot": dg.MetadataValue.md(markdown_image(report.equity_thumbnail, "equity")),
            "test_period": f"{report.test_start} .. {report.test_end}",
            "input_clipped_fraction": dg.MetadataValue.float(report.input_health.clipped_fraction),
            "input_worst_ticker": str(report.input_health.worst_ticker),
            "input_worst_clipped_fraction": dg.MetadataValue.float(
                report.input_health.worst_clipped_fraction
            ),
            "portfolio_out_of_range": dg.MetadataValue.json(
                report.input_health.portfolio_out_of_range
            ),
            MODEL_DIR: dg.MetadataValue.path(model_location),
            "output_dir": dg.MetadataValue.path(backtests.location_of(output_dir)),
            **{
                f"path_{name}": dg.MetadataValue.path(backtests.location_of(path))
                for name, path in report.paths.items()
            },
        }
    )
    return metadata
