"""The pipeline with PLOUTOS_STORAGE=s3://...: every artifact in a real (moto) bucket, none local.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from ploutos_core.cli import main as cli_main
from ploutos_pipeline.assets.evaluation import evaluation_assets
from ploutos_pipeline.definitions import build_definitions
from ploutos_pipeline.partitions import session_partitions
from ploutos_pipeline.resources import PloutosStorage
from ploutos_pipeline.sensors import paper_sessions_sensor
from tests.pipeline.conftest import Pipeline, write_market
from tests.pipeline.test_evaluation import TINY_EVALUATION
from tests.pipeline.test_paper import bars_arrive_after_promotion, use_paper_settings
from tests.support.configs import TINY_TRAINING
from tests.support.servers import BIN, S3Server, forget_s3_clients, moto_s3

pytestmark = pytest.mark.skipif(
    not (BIN / "moto_server").exists(), reason="moto[server] (the cluster extra) is missing"
)
PREFIX = "ploutos"
RETRAIN_CONFIG = {"ops": {"trained_model": {"config": TINY_TRAINING}}}


@dataclass
class S3Pipeline:
    pipeline: Pipeline
    s3: S3Server
    scratch: Path

    @property
    def root(self) -> str:
        return self.s3.url(PREFIX)

    def keys(self, under: str = "") -> list[str]:
        return [k.removeprefix(f"{PREFIX}/") for k in self.s3.keys(f"{PREFIX}/{under}")]


@pytest.fixture
def on_s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Pipeline]:
    with moto_s3(tmp_path / "moto") as s3:
        for key, value in s3.env.items():
            monkeypatch.setenv(key, value)
        scratch = tmp_path / "scratch"
        monkeypatch.setenv("PLOUTOS_SCRATCH", str(scratch))
        forget_s3_clients()
        csv = write_market(tmp_path / "ohlcv.csv")
        root = s3.url(PREFIX)
        with dg.instance_for_test() as instance:
            defs = build_definitions(str(csv), root)
            yield S3Pipeline(Pipeline(csv, tmp_path / "storage", instance, defs), s3, scratch)
        forget_s3_clients()


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    event = result.asset_materializations_for_node(asset)[-1]
    return {k: v.value for k, v in event.metadata.items()}


def _nothing_local(on_s3: S3Pipeline) -> None:
    assert not on_s3.pipeline.storage.exists()
    assert list(on_s3.scratch.glob("*")) == []  # every working copy was removed


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_run_on_s3_puts_every_artifact_in_the_bucket(on_s3: S3Pipeline, tmp_path: Path) -> None:
    pipeline = on_s3.pipeline
    assert pipeline.run("refresh_raw_ohlcv").success
    tickers = pipeline.tickers()
    assert pipeline.run_features(tickers).success
    result = pipeline.run("retrain", run_config=RETRAIN_CONFIG)
    assert result.success

    model = _metadata(result, "trained_model")
    model_dir = model["model_dir"]
    assert model_dir.startswith(f"{on_s3.root}/models/")
    stamp = model_dir.rsplit("/", 1)[1]
    models = on_s3.keys(f"models/{stamp}/")
    for name in ("final_model.zip", "vecnormalize.pkl", "manifest.json",
                 "checkpoint_256_steps.zip", "checkpoint_256_steps_vecnormalize.pkl"):
        assert f"models/{stamp}/{name}" in models, models
    assert any(k.startswith(f"models/{stamp}/tensorboard/") for k in models), models
    backtest = _metadata(result, "backtest")
    assert backtest["output_dir"].startswith(f"{on_s3.root}/backtests/")
    assert backtest["model_dir"] == model_dir
    backtests = on_s3.keys("backtests/")
    for name in ("metrics.json", "equity.parquet", "trades.parquet", "backtest_equity.png"):
        assert any(k.endswith(f"/{name}") for k in backtests), backtests
    keys = on_s3.keys()
    assert {"raw_ohlcv/raw_ohlcv.parquet", "raw_ohlcv/fingerprints.json"} <= set(keys)
    assert {f"features/{t}.parquet" for t in tickers} <= set(keys)
    assert not [k for k in keys if ".tmp-" in k]
    _nothing_local(on_s3)

    # A reader outside Dagster: `ploutos backtest` takes the model and writes its files by URL.
    output = f"{on_s3.root}/cli-backtest"
    code = cli_main(["backtest", "--model", f"{model_dir}/final_model.zip",
                     "--data", str(pipeline.csv), "--output", output])
    assert code == 0
    metrics = json.loads(on_s3.s3.client().get_object(
        Bucket=on_s3.s3.bucket, Key=f"{PREFIX}/cli-backtest/metrics.json")["Body"].read())
    assert "strategy" in json.dumps(metrics)
    _nothing_local(on_s3)


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_fold_models_and_verdict_on_s3(on_s3: S3Pipeline) -> None:
    pipeline = on_s3.pipeline
    pipeline.run("refresh_raw_ohlcv")
    pipeline.run_features(pipeline.tickers())
    fold_model, fold_backtest, verdict, gate, _ = evaluation_assets(TINY_EVALUATION)
    resources = {"storage": PloutosStorage(root=on_s3.root)}
    config = {"ops": {"fold_model": {"config": {**TINY_TRAINING, "total_timesteps": 128}}}}
    for fold in ("0", "1"):
        key = dg.MultiPartitionKey({"fold": fold, "seed": "3"})
        assert dg.materialize(
            [fold_model, fold_backtest], partition_key=key, instance=pipeline.instance,
            resources=resources, run_config=config,
        ).success  # fmt: skip
    result = dg.materialize(
        [verdict, gate], instance=pipeline.instance, resources=resources, raise_on_error=False
    )  # the gate is blocking and a 128-step agent fails it: the verdict is still written
    assert _metadata(result, "verdict")["verdict"] == f"{on_s3.root}/evaluation/verdict.json"
    keys = set(on_s3.keys("evaluation/"))
    assert {"evaluation/verdict.json", "evaluation/trials.json"} <= keys
    for name in ("fold0_seed3", "fold1_seed3"):
        assert f"evaluation/folds/{name}.json" in keys
        assert f"evaluation/folds/{name}/training_config.json" in keys
        assert f"evaluation/folds/{name}/model/manifest.json" in keys
        assert f"evaluation/folds/{name}/model/final_model.zip" in keys
    assert not [k for k in keys if k.endswith(".lock")]
    _nothing_local(on_s3)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_s3_down_during_training_names_the_url_and_keeps_the_model(on_s3: S3Pipeline) -> None:
    pipeline = on_s3.pipeline
    pipeline.run("refresh_raw_ohlcv")
    pipeline.run_features(pipeline.tickers())

    def stop_when_training_starts() -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if any(on_s3.scratch.glob("ploutos-*/tensorboard")):
                on_s3.s3.stop()
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=stop_when_training_starts, daemon=True)
    watcher.start()
    result = pipeline.run(
        "retrain", run_config=RETRAIN_CONFIG, raise_on_error=False
    )
    watcher.join()
    assert not result.success
    failure = next(
        e for e in result.all_events if e.event_type_value == "STEP_FAILURE"
    ).step_failure_data.error
    message = failure.message
    assert "StorageError" in message and f"{on_s3.root}/models/" in message, message
    assert "did not answer" in message
    # Nothing is lost: the trained model waits in the scratch directory the message names.
    (kept,) = on_s3.scratch.glob("ploutos-*")
    assert str(kept) in message
    for name in ("final_model.zip", "vecnormalize.pkl", "manifest.json"):
        assert (kept / name).is_file()
    assert json.loads((kept / "manifest.json").read_text())["status"] == "complete"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_paper_trading_on_s3(
    on_s3: S3Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_paper_settings("drift_min_sessions: 2\n", tmp_path / "paper.yaml", monkeypatch)
    pipeline = on_s3.pipeline
    storage = PloutosStorage(root=on_s3.root)
    location, sessions = bars_arrive_after_promotion(pipeline, storage)
    model = location.removeprefix(f"{on_s3.root}/")
    assert f"{model}/promotion.json" in on_s3.keys("models/")
    paper = f"paper/{model.rsplit('/', 1)[1]}"
    pipeline.instance.add_dynamic_partitions(session_partitions.name, sessions)

    signals = _metadata(pipeline.run("refresh_signals"), "signals")
    assert signals["model_dir"] == location
    assert signals["path_csv"] == f"{on_s3.root}/{paper}/signals/{sessions[-1]}/signals.csv"
    assert f"{paper}/signals/{sessions[-1]}/signals.parquet" in on_s3.keys(f"{paper}/")
    for session in (sessions[0], sessions[1], sessions[1]):  # the second one booked twice
        result = pipeline.run("book_paper_session", partition_key=session)
    assert _metadata(result, "paper_ledger")["booked"] == "unchanged"
    drift = result.get_asset_check_evaluations()[0]
    assert drift.metadata["fold_windows"].value > 0  # the fold backtest, read from the bucket
    assert on_s3.keys(f"{paper}/sessions/") == [f"{paper}/sessions/{s}.json" for s in sessions[:2]]

    # The sensor reads what is booked from the bucket: only the other sessions are requested.
    context = dg.build_sensor_context(instance=pipeline.instance, resources={"storage": storage})
    requests = paper_sessions_sensor(context).run_requests
    booked = [r.partition_key for r in requests if r.job_name == "book_paper_session"]
    assert booked == sessions[2:]

    # `ploutos signal` takes the model and writes its files by URL.
    output = f"{on_s3.root}/cli-signal"
    code = cli_main(["signal", "--model", location, "--data", str(pipeline.csv),
                     "--output", output])  # fmt: skip
    assert code == 0
    assert {"cli-signal/signals.csv", "cli-signal/paper_ledger.parquet"} <= set(
        on_s3.keys("cli-signal/")
    )
    _nothing_local(on_s3)
