"""Stage 5: using the production model (group ``paper``).

- ``signals``: the next session's orders of the production model, decided on the latest bar of
  every ticker as the backtest decides (:func:`ploutos_core.signals.decide_orders`); CSV and
  Parquet under ``paper/<model>/signals/<bar date>/``.
- ``paper_ledger``: one partition per session after the promotion; books the session's fills,
  positions and equity (``paper/<model>/sessions/<date>.json``) with the metrics of the paper
  period so far, and runs the ``drift`` check (WARN) against the fold backtests.

Model loading (torch) and plots (matplotlib) are imported by the steps, not by the code location.
"""

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from ploutos_core import object_store
from ploutos_core.artifacts import ModelDir
from ploutos_core.artifacts.model_dir import FINAL_MODEL, MANIFEST
from ploutos_core.config import PaperConfig, default_config_path, load_config
from ploutos_core.evaluation.promotion import PROMOTION, Promotion, read_promotion
from ploutos_core.evaluation.run import FOLDS_DIR
from ploutos_core.signals.drift import (
    DriftBand,
    drift_band,
    fold_backtest_files,
    fold_windows,
    paper_window,
)
from ploutos_core.signals.ledger import PaperLedger, session_file, write_session
from ploutos_pipeline.assets.evaluation import production_model
from ploutos_pipeline.assets.features import features
from ploutos_pipeline.assets.model import MODEL_DIR, latest_model_location, trading_universe
from ploutos_pipeline.failures import reported_as_failure
from ploutos_pipeline.partitions import session_partitions
from ploutos_pipeline.resources import PloutosStorage

GROUP = "paper"
SIGNALS_DIR = "signals"
DRIFT_WARNING = "drift_warning"
"""Metadata key of a paper_ledger materialization: whether its drift check warned."""
MODEL_FILES = (*object_store.model_files(FINAL_MODEL), PROMOTION)
"""What deciding with the production model reads of its directory."""


def paper_config() -> PaperConfig:
    """``$PLOUTOS_PAPER_CONFIG`` or ``config/paper.yaml``."""
    path = os.environ.get("PLOUTOS_PAPER_CONFIG") or default_config_path("paper")
    return load_config(PaperConfig, path)


@dataclass(frozen=True)
class Production:
    """The production model: its directory's path or URL (``location``), a local directory
    holding the files read of it (``model_dir``) and its promotion."""

    location: str
    model_dir: ModelDir
    promotion: Promotion


@contextlib.contextmanager
def production(
    instance: dg.DagsterInstance, files: Sequence[str] = MODEL_FILES
) -> Iterator[Production]:
    """The production model with ``files`` of its directory local: the directory itself on a
    local root, a read-only working copy on an object store.

    Raises
    ------
    PromotionError
        When the model has no promotion.
    """
    location = latest_model_location(instance, production_model.key)
    with object_store.working_copy(location, fetch=files, upload=False) as copy:
        model_dir = ModelDir(copy.path)
        yield Production(location, model_dir, read_promotion(model_dir, shown_as=location))


def production_promotion(instance: dg.DagsterInstance) -> tuple[str, Promotion]:
    """The production model's location and promotion, without reading the model itself."""
    with production(instance, files=(MANIFEST, PROMOTION)) as model:
        return model.location, model.promotion


def _ledger(
    context: dg.AssetExecutionContext, storage: PloutosStorage, model: Production
) -> tuple[Any, PaperLedger]:
    from ploutos_core.artifacts import load_trained_model
    from ploutos_core.signals.ledger import run_paper

    trained = load_trained_model(model.model_dir.final_model)
    market = storage.load_market(trading_universe(context, storage, trained.manifest))
    return trained, run_paper(trained, market, model.promotion.last_bar, paper_config())


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

    with reported_as_failure(), production(context.instance) as model:
        trained, ledger = _ledger(context, storage, model)
        orders = decide_orders(trained, ledger)
        bar = str(orders["bar_date"].iloc[0])
        paper = storage.paper_location(model.location)
        with object_store.working_copy(object_store.join(paper, SIGNALS_DIR, bar)) as copy:
            written = write_signals(orders, copy.path)
            paths = {kind: copy.location_of(path) for kind, path in written.items()}
    counts = orders["order"].value_counts()
    return dg.MaterializeResult(
        metadata={
            "signals": dg.MetadataValue.md(signals_markdown(orders)),
            "bar_date": bar,
            "fill_session": str(orders["fill_session"].iloc[0]),
            "buys": int(counts.get("buy", 0)),
            "sells": int(counts.get("sell", 0)),
            MODEL_DIR: dg.MetadataValue.path(model.location),
            **{f"path_{k}": dg.MetadataValue.path(p) for k, p in paths.items()},
        }
    )


def _drift(
    ledger: PaperLedger, session: str, promotion: Promotion, config: PaperConfig
) -> DriftBand | None:
    frame = ledger.frame().loc[:session]
    sessions = len(frame) - 1
    if sessions < config.drift_min_sessions:
        return None
    folds = object_store.join(object_store.parent(promotion.verdict), FOLDS_DIR)
    with object_store.working_copy(folds, fetch=fold_backtest_files(), upload=False) as copy:
        windows = fold_windows(copy.path, sessions)
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
    with reported_as_failure(), production(context.instance) as model:
        _, ledger = _ledger(context, storage, model)
        record = ledger.session_record(session)
        paper = storage.paper_location(model.location)
        with object_store.working_copy(paper, fetch=[session_file(session)]) as copy:
            status = write_session(copy.path, record)
        metrics = ledger.metrics(session)
        band = _drift(ledger, session, model.promotion, config)
    if status == "restated":
        context.log.warning(f"session {session} restated: its bars changed since it was booked")
    if record["missing"]:
        context.log.warning(f"no bar on {session} for {record['missing']}: held at last close")
    portfolio, benchmark = ledger.through(session)
    title = f"paper {object_store.name(model.location)}: {ledger.start} to {session}"
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
            MODEL_DIR: dg.MetadataValue.path(model.location),
        },
        check_results=[check],
    )
