"""trained_model and backtest through Dagster: in process, and by `dagster asset materialize`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from ploutos_pipeline.definitions import build_definitions
from ploutos_pipeline.partitions import ticker_partitions
from tests.pipeline.conftest import Pipeline, write_market
from tests.support.configs import TINY_TRAINING

DAGSTER = str(Path(sys.executable).parent / "dagster")
RETRAIN_CONFIG = {"ops": {"trained_model": {"config": TINY_TRAINING}}}


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    event = result.asset_materializations_for_node(asset)[-1]
    return {k: v.value for k, v in event.metadata.items()}


@pytest.fixture
def featured(pipeline: Pipeline) -> Pipeline:
    pipeline.run("refresh_raw_ohlcv")
    pipeline.run_features(pipeline.tickers())
    return pipeline


@pytest.mark.slow
def test_retrain_job_trains_a_model_then_backtests_it(featured: Pipeline) -> None:
    result = featured.run("retrain", run_config=RETRAIN_CONFIG)
    assert result.success
    model = _metadata(result, "trained_model")
    model_dir = Path(model["model_dir"])
    for name in ("final_model.zip", "vecnormalize.pkl", "manifest.json"):
        assert (model_dir / name).is_file()
    assert model["timesteps"] >= TINY_TRAINING["total_timesteps"]
    assert model["device"] == "cpu"
    manifest = json.loads((model_dir / "manifest.json").read_text())
    assert manifest["tickers"] == featured.tickers()

    backtest = _metadata(result, "backtest")
    assert backtest["test_period"].startswith(manifest["test_period"]["start"])
    assert "data:image/png;base64," in backtest["equity_plot"]
    assert {"strategy_sharpe", "buy_and_hold_sharpe", "strategy_max_drawdown"} <= set(backtest)
    assert (Path(backtest["output_dir"]) / "backtest_equity.png").is_file()
    checks = {c.check_name: c.passed for c in result.get_asset_check_evaluations()}
    assert checks["accounting"] is True and set(checks) == {"accounting", "input_health"}
    assert backtest["input_worst_ticker"] in featured.tickers()

    again = featured.run("retrain", run_config=RETRAIN_CONFIG)
    assert _metadata(again, "trained_model")["model_dir"] != model["model_dir"]
    assert (model_dir / "final_model.zip").is_file()


@pytest.mark.slow
def test_a_shared_model_is_backtested_on_the_current_universe(featured: Pipeline) -> None:
    shared = {"ops": {"trained_model": {"config": {**TINY_TRAINING, "policy": "shared"}}}}
    assert featured.run("retrain", run_config=shared).success
    trained_on = featured.tickers()
    write_market(featured.csv, n_tickers=len(trained_on) + 1)  # a ticker lists
    featured.run("refresh_raw_ohlcv")
    featured.run_features(featured.tickers())
    (listed,) = set(featured.tickers()) - set(trained_on)

    result = featured.run("retrain", asset_selection=[dg.AssetKey("backtest")])
    health = {c.check_name: c for c in result.get_asset_check_evaluations()}["input_health"]
    assert health.metadata["new_tickers"].value == 1
    assert list(health.metadata["new_tickers_clipped"].value) == [listed]
    positions = pd.read_parquet(Path(_metadata(result, "backtest")["path_positions"]))
    assert sorted(positions.columns) == sorted(featured.tickers())  # the new ticker trades too


def test_training_without_features_names_the_missing_partitions(pipeline: Pipeline) -> None:
    pipeline.run("refresh_raw_ohlcv")
    first, *_ = pipeline.tickers()
    pipeline.run_features([first, first])
    result = pipeline.run("retrain", run_config=RETRAIN_CONFIG, raise_on_error=False)
    assert not result.success
    message = result.failure_data_for_node("trained_model").user_failure_data.description
    assert "features partitions are missing" in message
    for ticker in pipeline.tickers()[1:]:
        assert ticker in message


@pytest.mark.slow
def test_dagster_asset_materialize_command(tmp_path: Path) -> None:
    """The user's command line, each call a fresh process on the instance in $DAGSTER_HOME:
    the features backfill as one partition range, then the training. (raw_ohlcv is prepared in
    process; the refusal without features is tested in process above.)"""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    csv, storage = write_market(tmp_path / "ohlcv.csv"), tmp_path / "storage"
    env = {**os.environ, "DAGSTER_HOME": str(home), "PLOUTOS_DATA": str(csv),
           "PLOUTOS_STORAGE": str(storage)}  # fmt: skip
    with dg.DagsterInstance.from_config(str(home)) as instance:
        build_definitions(str(csv), str(storage)).resolve_job_def(
            "refresh_raw_ohlcv"
        ).execute_in_process(instance=instance)
        tickers = sorted(instance.get_dynamic_partitions(ticker_partitions.name))

    def materialize(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [DAGSTER, "asset", "materialize", "-m", "ploutos_pipeline.definitions", *args],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    done = materialize("--select", "features", "--partition-range", f"{tickers[0]}...{tickers[-1]}")
    assert done.returncode == 0, done.stderr[-3000:]
    trained = materialize("--select", "trained_model", "--config-json", json.dumps(RETRAIN_CONFIG))
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert list((storage / "models").glob("*/final_model.zip"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("features")) == set(tickers)
