"""Stage 5: using the production model (group ``paper``).

- ``signals``: the next session's orders of the production model, decided on the latest bar of
  every ticker as the backtest decides (:func:`ploutos_core.signals.decide_orders`); CSV and
  Parquet under ``paper/<model>/signals/<bar date>/``.
- ``paper_ledger``: one partition per session after the promotion; books the session's fills,
  positions and equity (``paper/<model>/sessions/<date>.json``) with the metrics of the paper
  period so far, and runs the ``drift`` check (WARN) against the fold backtests.

Model loading (torch) and plots (matplotlib) are imported by the steps, not by the code location.
"""

import os
from pathlib import Path
from typing import Any

import dagster as dg

from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.config import PaperConfig, default_config_path, load_config
from ploutos_core.evaluation.promotion import Promotion, read_promotion
from ploutos_core.evaluation.run import FOLDS_DIR
from ploutos_core.signals.drift import DriftBand, drift_band, fold_windows, paper_window
from ploutos_core.signals.ledger import PaperLedger, write_session
from ploutos_pipeline.assets.evaluation import production_model
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.model import MODEL_DIR, latest_model_dir
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.partitions import session_partitions
from ploutos_pipeline.resources import PloutosStorage

GROUP = "paper"
DRIFT_WARNING = "drift_warning"
"""Metadata key of a paper_ledger materialization: whether its drift check warned."""


def paper_config() -> PaperConfig:
    """``$PLOUTOS_PAPER_CONFIG`` or ``config/paper.yaml``."""
    path = os.environ.get("PLOUTOS_PAPER_CONFIG") or default_config_path("paper")
    return load_config(PaperConfig, path)


def production(instance: dg.DagsterInstance) -> tuple[ModelDir, Promotion]:
    """The production model's directory and promotion (a ``PromotionError`` when it has none)."""
    model_dir = latest_model_dir(instance, production_model.key)
    return model_dir, read_promotion(model_dir)


def _ledger(
    storage: PloutosStorage, model_dir: ModelDir, promotion: Promotion
) -> tuple[Any, PaperLedger]:
    from ploutos_core.artifacts import load_trained_model
    from ploutos_core.signals.ledger import run_paper

    trained = load_trained_model(model_dir.final_model)
    market = storage.load_market(Manifest.read(model_dir.manifest).tickers)
    return trained, run_paper(trained, market, promotion.last_bar, paper_config())


@dg.asset(
    deps=[production_model, features],
    group_name=GROUP,
    kinds={"csv", "parquet"},
    description=(
        "The production model's orders for the next session, per ticker: action, probabilities, "
        "paper position and target weight, decided on the latest bar as the backtest decides."
    ),
)
def signals(context: dg.AssetExecutionContext, storage: PloutosStorage) -> dg.MaterializeResult:
    from ploutos_core.signals.orders import decide_orders, signals_markdown, write_signals

    with reported_as_failure():
        model_dir, promotion = production(context.instance)
        trained, ledger = _ledger(storage, model_dir, promotion)
        orders = decide_orders(trained, ledger)
        bar = str(orders["bar_date"].iloc[0])
        paths = write_signals(orders, storage.paper_dir(model_dir) / "signals" / bar)
    counts = orders["order"].value_counts()
    return dg.MaterializeResult(
        metadata={
            "signals": dg.MetadataValue.md(signals_markdown(orders)),
            "bar_date": bar,
            "fill_session": str(orders["fill_session"].iloc[0]),
            "buys": int(counts.get("buy", 0)),
            "sells": int(counts.get("sell", 0)),
            MODEL_DIR: dg.MetadataValue.path(str(model_dir.path)),
            **{f"path_{k}": dg.MetadataValue.path(str(p)) for k, p in paths.items()},
        }
    )


def _drift(
    ledger: PaperLedger, session: str, promotion: Promotion, config: PaperConfig
) -> DriftBand | None:
    frame = ledger.frame().loc[:session]
    sessions = len(frame) - 1
    if sessions < config.drift_min_sessions:
        return None
    folds = Path(promotion.verdict).parent / FOLDS_DIR
    windows = fold_windows(folds, sessions)
    paper = paper_window(frame["equity"].to_numpy(), frame["traded"].to_numpy())
    return drift_band(paper, windows, sessions, config.drift_quantiles)


def _drift_check(band: DriftBand | None, config: PaperConfig) -> dg.AssetCheckResult:
    if band is None:
        note = f"fewer than {config.drift_min_sessions} paper sessions: nothing compared yet"
        return dg.AssetCheckResult(check_name="drift", passed=True, metadata={"note": note})
    metadata: dict[str, Any] = {
        "band": dg.MetadataValue.md(band.table()),
        "sessions": band.sessions,
        "fold_windows": band.n_windows,
        "outside": ", ".join(band.outside) or "-",
        **{f"paper_{m}": dg.MetadataValue.float(v) for m, v in band.paper.items()},
    }
    if not band.n_windows:
        metadata["note"] = "no fold backtest window that long: evaluate the model's config"
    return dg.AssetCheckResult(
        check_name="drift",
        passed=not band.outside,
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
    )


@dg.asset(
    deps=[production_model, features],
    partitions_def=session_partitions,
    group_name=GROUP,
    kinds={"json", "matplotlib"},
    check_specs=[
        dg.AssetCheckSpec(
            "drift",
            asset="paper_ledger",
            description=(
                "Warns when the paper period's Sharpe, turnover, hit rate or drawdown is outside "
                "the band of the fold backtests' windows of the same length."
            ),
        )
    ],
    description=(
        "The production model's paper portfolio: one partition per session after its promotion, "
        "filled at the open and marked at the close by the backtest's rules, beside buy-and-hold."
    ),
)
def paper_ledger(
    context: dg.AssetExecutionContext, storage: PloutosStorage
) -> dg.MaterializeResult:
    from ploutos_core.backtest.plots import equity_thumbnail_png, markdown_image

    session = context.partition_key
    config = paper_config()
    with reported_as_failure():
        model_dir, promotion = production(context.instance)
        _, ledger = _ledger(storage, model_dir, promotion)
        record = ledger.session_record(session)
        status = write_session(storage.paper_dir(model_dir), record)
        metrics = ledger.metrics(session)
        band = _drift(ledger, session, promotion, config)
    if status == "restated":
        context.log.warning(f"session {session} restated: its bars changed since it was booked")
    if record["missing"]:
        context.log.warning(f"no bar on {session} for {record['missing']}: held at last close")
    portfolio, benchmark = ledger.through(session)
    title = f"paper {model_dir.path.name}: {ledger.start} to {session}"
    curves = {"Paper portfolio": portfolio.equity, "Buy & hold (equal weight)": benchmark.equity}
    png = equity_thumbnail_png(portfolio.dates, curves, title)
    check = _drift_check(band, config)
    return dg.MaterializeResult(
        metadata={
            **{name: dg.MetadataValue.float(float(v)) for name, v in metrics.items()},
            "equity": record["equity"],
            "equity_plot": dg.MetadataValue.md(markdown_image(png, "paper equity")),
            "sessions": len(portfolio.dates) - 1,
            "paper_start": ledger.start,
            "fills": len(record["fills"]),
            "missing_bars": ", ".join(record["missing"]) or "-",
            "booked": status,
            DRIFT_WARNING: not check.passed,
            MODEL_DIR: dg.MetadataValue.path(str(model_dir.path)),
        },
        check_results=[check],
    )
