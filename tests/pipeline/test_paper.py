"""Paper trading through Dagster: signals of the production model, a ledger partition per
session as bars arrive, and the drift check against the fold backtests."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from ploutos_core import object_store
from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.artifacts.model_dir import MANIFEST
from ploutos_core.data.sample import make_market
from ploutos_core.evaluation.trials import trial_key
from ploutos_core.storage import write_json_atomic, write_parquet_atomic
from ploutos_pipeline.assets.evaluation import production_model
from ploutos_pipeline.partitions import session_partitions
from ploutos_pipeline.resources import EVALUATION, PloutosStorage
from ploutos_pipeline.sensors import (
    consecutive_drift_warnings,
    drift_retrain_sensor,
    paper_sessions_sensor,
)
from tests.pipeline.conftest import Pipeline
from tests.support.configs import TINY_TRAINING

NEW_SESSIONS = 7


def _write_steady_fold_backtest(directory: Path) -> None:
    """A fold backtest unlike any paper period: a smooth rise, no trading."""
    dates = pd.bdate_range("2019-01-01", periods=120)
    rng = np.random.default_rng(0)
    equity = 1e5 * np.cumprod(1.0 + 0.002 + 0.0005 * rng.standard_normal(120))
    index = pd.DatetimeIndex(dates, name="date")
    write_parquet_atomic(
        directory / "equity.parquet", pd.DataFrame({"strategy_equity": equity}, index=index)
    )
    trades = pd.DataFrame(
        {"date": dates[:0], "ticker": [], "side": [], "quantity": [], "price": [], "cost": []}
    )
    write_parquet_atomic(
        directory / "trades.parquet",
        trades.astype(
            {"ticker": "string", "side": "string", "quantity": float, "price": float, "cost": float}
        ),
    )


def promote_the_trained_model(pipeline: Pipeline, storage: PloutosStorage) -> str:
    """Train, write a verdict promoting its config and one steady fold backtest, materialize
    production_model; the model's location (a path or a URL, as ``storage``'s root)."""
    trained = pipeline.run(
        "retrain", run_config={"ops": {"trained_model": {"config": TINY_TRAINING}}},
        asset_selection=[dg.AssetKey("trained_model")],
    )  # fmt: skip
    metadata = trained.asset_materializations_for_node("trained_model")[-1].metadata
    location = str(metadata["model_dir"].value)
    with object_store.working_copy(location, fetch=[MANIFEST], upload=False) as model:
        key = trial_key(Manifest.read(ModelDir(model.path).manifest).config)
    verdict = {
        "promoted": True,
        "reasons": [],
        "trial_key": key,
        "agent": {"sharpe": {"iqm": 1.0}},
        "dsr": 0.99,
        "pbo": None,
    }
    with storage.working_copy(EVALUATION) as evaluation:
        write_json_atomic(evaluation.path / "verdict.json", verdict)
        _write_steady_fold_backtest(evaluation.path / "folds" / "fold0_seed3" / "backtest")
    assert dg.materialize(
        [production_model], instance=pipeline.instance, resources={"storage": storage}
    ).success
    return location


def bars_arrive_after_promotion(
    pipeline: Pipeline, storage: PloutosStorage
) -> tuple[str, list[str]]:
    """A model promoted on a market's bar ``NEW_SESSIONS`` before its end, then the rest of the
    bars arrive (raw_ohlcv and features refreshed): the model's location and the new sessions."""
    full = make_market(3, 420, seed=7, late_listing=False, delisting=False, missing_days=False)
    days = sorted(full["date"].unique())
    promoted_on = days[-1 - NEW_SESSIONS]
    full[full["date"] <= promoted_on].to_csv(pipeline.csv, index=False, date_format="%Y-%m-%d")
    pipeline.run("refresh_raw_ohlcv")
    pipeline.run_features(pipeline.tickers())
    location = promote_the_trained_model(pipeline, storage)
    full.to_csv(pipeline.csv, index=False, date_format="%Y-%m-%d")  # new bars arrive
    pipeline.run("refresh_raw_ohlcv")
    pipeline.run_features(pipeline.tickers())
    return location, [pd.Timestamp(d).date().isoformat() for d in days[-NEW_SESSIONS:]]


def use_paper_settings(text: str, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point ``PLOUTOS_PAPER_CONFIG`` at a paper config of ``text`` written to ``path``."""
    path.write_text(text)
    monkeypatch.setenv("PLOUTOS_PAPER_CONFIG", str(path))


@pytest.mark.slow
def test_signals_and_a_ledger_partition_per_new_session_with_drift(
    pipeline: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = "drift_min_sessions: 2\nretrain_after_warnings: 2\n"
    use_paper_settings(settings, tmp_path / "paper.yaml", monkeypatch)
    resources = {"storage": PloutosStorage(root=str(pipeline.storage))}
    location, sessions = bars_arrive_after_promotion(pipeline, resources["storage"])
    context = dg.build_sensor_context(instance=pipeline.instance, resources=resources)
    tick = paper_sessions_sensor(context)
    (added,) = tick.dynamic_partitions_requests
    assert list(added.partition_keys) == sessions
    booked = [r.partition_key for r in tick.run_requests if r.job_name == "book_paper_session"]
    assert booked == sessions and any(r.job_name == "refresh_signals" for r in tick.run_requests)
    pipeline.instance.add_dynamic_partitions(session_partitions.name, sessions)

    signals = pipeline.run("refresh_signals")
    metadata = signals.asset_materializations_for_node("signals")[-1].metadata
    assert metadata["bar_date"].value == sessions[-1]
    assert "| ticker | order | action |" in metadata["signals"].value
    assert (Path(metadata["path_csv"].value)).is_file()

    checks = []
    for session in [*sessions[:3], sessions[1]]:  # the second session booked twice
        result = pipeline.run("book_paper_session", partition_key=session)
        checks.append(result.get_asset_check_evaluations()[0])
        ledger = result.asset_materializations_for_node("paper_ledger")[-1].metadata
    assert ledger["booked"].value == "unchanged"
    assert "data:image/png;base64," in ledger["equity_plot"].value
    paper = pipeline.storage / "paper" / Path(location).name / "sessions"
    assert sorted(p.stem for p in paper.iterdir()) == sessions[:3]
    assert checks[0].passed  # fewer than drift_min_sessions: nothing compared
    drift = checks[2]
    assert drift.severity == dg.AssetCheckSeverity.WARN and not drift.passed
    assert "| sharpe |" in drift.metadata["band"].value and drift.metadata["fold_windows"].value > 0
    assert consecutive_drift_warnings(pipeline.instance, 2) == sessions[2]
    assert consecutive_drift_warnings(pipeline.instance, 3) is None

    # Two warnings in a row (retrain_after_warnings: 2): a retrain and every fold x seed again.
    folds = ["0|1", "0|2", "1|1"]
    sensor = drift_retrain_sensor(folds)
    requests = sensor(dg.build_sensor_context(instance=pipeline.instance)).run_requests
    assert [(r.job_name, r.partition_key) for r in requests] == [
        ("retrain", None),
        *(("evaluate_folds", key) for key in folds),
    ]
    assert len({r.run_key for r in requests}) == len(requests)
    assert all(sessions[2] in r.run_key for r in requests)  # once per warned session
    use_paper_settings("retrain_after_warnings: 3\n", tmp_path / "three.yaml", monkeypatch)
    skipped = sensor(dg.build_sensor_context(instance=pipeline.instance))
    assert isinstance(skipped, dg.SkipReason) and "fewer than 3" in skipped.skip_message
