"""The pipeline on a real cluster: PostgreSQL storage, Celery workers on `gpu` and `cpu` queues.

`deploy/cluster.sh up` (what `make cluster` runs) starts PostgreSQL 15, Redis, a moto S3 server,
two Celery workers, a webserver and a daemon on 127.0.0.1; runs are submitted through the
webserver's GraphQL API as the UI does. The tests at the end need no cluster: the op tags parse
with dagster-k8s's own schema, the Dockerfile installs what the Makefile installs.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psutil
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionStatus

from ploutos_pipeline.executors import (
    CELERY_QUEUE_TAG,
    CPU_QUEUE,
    GPU_QUEUE,
    GPU_QUEUE_TAGS,
    K8S_CONFIG_TAG,
)
from ploutos_pipeline.partitions import ticker_partitions
from tests.pipeline.conftest import write_market
from tests.support.cluster import Cluster, environment, running_cluster
from tests.support.configs import TINY_TRAINING
from tests.support.servers import REPO, forget_s3_clients
from tests.support.waiting import wait_for

pytestmark = pytest.mark.cluster
TRAINED = dg.AssetKey("trained_model")
S3_PREFIX = "artifacts"
FEATURES_PER_RUN = 2  # the cluster's features backfill of 3 tickers: 2 runs
# Still training when PostgreSQL stops (it stops as soon as the model directory appears), short
# enough for its retry to finish in a minute or two on two shared cores.
LONGER_TRAINING = {**TINY_TRAINING, "total_timesteps": 16_384, "checkpoint_freq": 8_192}
# Two folds x one seed of the fold_model x fold_backtest partitions, on the test market.
TINY_EVALUATION = {
    "folds": {"n_folds": 2, "min_train_days": 120, "test_days": 40, "purge_days": 5},
    "seeds": [3],
    "baselines": ["buy_and_hold", "cash"],
    "cost_multipliers": [1.0],
    "bootstrap": {"reps": 200},
}
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    evaluation = root / "evaluation.yaml"
    evaluation.write_text(yaml.safe_dump(TINY_EVALUATION))
    code_env = {
        "PLOUTOS_DATA": str(write_market(root / "ohlcv.csv")),
        "PLOUTOS_EVALUATION_CONFIG": str(evaluation),
        # Every artifact in the cluster's S3 server (moto); nothing may appear under LOCAL_ROOT.
        "PLOUTOS_STORAGE": f"s3://ploutos/{S3_PREFIX}",
        "PLOUTOS_LOCAL_ROOT": str(root / "storage"),
        "PLOUTOS_FEATURES_PER_RUN": str(FEATURES_PER_RUN),
    }
    with running_cluster(code_env) as running:
        yield running


def _s3_env(cluster: Cluster) -> dict[str, str]:
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")
    return {"AWS_ENDPOINT_URL": cluster.env["PLOUTOS_S3_ENDPOINT"]} | {
        k: cluster.env[k] for k in keys
    }


def _bucket_client(cluster: Cluster):
    import boto3

    env = _s3_env(cluster)
    return boto3.client(
        "s3", endpoint_url=env["AWS_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name=env["AWS_DEFAULT_REGION"],
    )  # fmt: skip


def _bucket_keys(cluster: Cluster, prefix: str) -> list[str]:
    pages = _bucket_client(cluster).get_paginator("list_objects_v2").paginate(
        Bucket="ploutos", Prefix=f"{S3_PREFIX}/{prefix}"
    )
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _client(cluster: Cluster):
    from dagster_graphql import DagsterGraphQLClient

    return DagsterGraphQLClient("127.0.0.1", port_number=int(cluster.env["PLOUTOS_WEB_PORT"]))


def _retrain(cluster: Cluster, config: dict, tags: dict[str, str] | None = None) -> str:
    return _client(cluster).submit_job_execution(
        "retrain", run_config={"ops": {"trained_model": {"config": config}}}, tags=tags
    )


def _wait_finished(instance: dg.DagsterInstance, run_id: str, timeout: float) -> dg.DagsterRun:
    wait_for(lambda: instance.get_run_by_id(run_id).is_finished, f"run {run_id}", timeout)
    return instance.get_run_by_id(run_id)


def _prepare_data(cluster: Cluster, instance: dg.DagsterInstance) -> None:
    """raw_ohlcv, in process, into the cluster's PostgreSQL; then every features partition as
    the UI's backfill, on the workers (runs of ``FEATURES_PER_RUN`` tickers)."""
    from ploutos_pipeline.definitions import build_definitions

    defs = build_definitions(cluster.env["PLOUTOS_DATA"], cluster.env["PLOUTOS_STORAGE"])
    with environment(_s3_env(cluster)):
        forget_s3_clients()
        defs.resolve_job_def("refresh_raw_ohlcv").execute_in_process(instance=instance)
    forget_s3_clients()
    tickers = instance.get_dynamic_partitions(ticker_partitions.name)
    runs = _backfill(cluster, instance, {"assetSelection": [{"path": ["features"]}],
                                         "partitionNames": tickers})  # fmt: skip
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs)
    # Split into runs of FEATURES_PER_RUN tickers, each computed in a cpu worker's pool process
    # (a daemonic process: the features compute in it instead of in child processes).
    assert len(runs) == math.ceil(len(tickers) / FEATURES_PER_RUN) > 1, runs
    pids = {_step_events(instance, run.run_id, "features")["STEP_START"].dagster_event.pid
            for run in runs}  # fmt: skip
    assert pids <= cluster.worker_pids(CPU_QUEUE), pids
    assert instance.get_materialized_partitions(dg.AssetKey("features")) == set(tickers)


def _backfill(cluster: Cluster, instance: dg.DagsterInstance, params: dict) -> list[dg.DagsterRun]:
    """Launch a partition backfill as the UI's dialog does; its runs once all have finished."""
    answer = _client(cluster)._execute(BACKFILL, {"params": params})["launchPartitionBackfill"]
    assert answer["__typename"] == "LaunchBackfillSuccess", answer
    backfill_id = answer["backfillId"]

    def finished_runs() -> list[dg.DagsterRun] | None:
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        backfill = instance.get_backfill(backfill_id)
        done = backfill.status != BulkActionStatus.REQUESTED and runs
        return runs if done and all(run.is_finished for run in runs) else None

    return wait_for(finished_runs, f"backfill {backfill_id}", timeout=600, interval=2)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_retrain_runs_on_celery_workers_and_postgres(cluster: Cluster) -> None:
    with cluster.instance() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        _prepare_data(cluster, instance)

        run = _wait_finished(instance, _retrain(cluster, TINY_TRAINING), timeout=480)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        records = instance.all_logs(run.run_id)

        # The celery task reports the worker's name ("<queue>@<host>") as the step starts.
        workers = {
            r.step_key: r.dagster_event.engine_event_data.metadata["Celery worker"].value
            for r in records
            if r.dagster_event is not None and r.dagster_event.is_engine_event
            and "Celery worker" in r.dagster_event.engine_event_data.metadata
        }
        assert workers["trained_model"].startswith(f"{GPU_QUEUE}@"), workers
        assert workers["backtest"].startswith(f"{CPU_QUEUE}@"), workers

        # The steps ran in the worker processes that cluster.sh started, not in the run worker.
        step_pids = {
            r.step_key: r.dagster_event.pid
            for r in records
            if r.dagster_event is not None and r.dagster_event.event_type_value == "STEP_START"
        }
        assert step_pids["trained_model"] in cluster.worker_pids(GPU_QUEUE), step_pids
        assert step_pids["backtest"] in cluster.worker_pids(CPU_QUEUE), step_pids
        event = instance.get_latest_materialization_event(TRAINED)
        assert event is not None and event.run_id == run.run_id

        # Every artifact went to the bucket, nothing under a local storage root.
        model_dir = event.asset_materialization.metadata["model_dir"].value
        stamp = model_dir.rsplit("/", 1)[1]
        assert model_dir == f"s3://ploutos/{S3_PREFIX}/models/{stamp}"
        models = _bucket_keys(cluster, f"models/{stamp}/")
        for name in ("final_model.zip", "vecnormalize.pkl", "manifest.json"):
            assert f"{S3_PREFIX}/models/{stamp}/{name}" in models, models
        assert any("/tensorboard/" in k for k in models), models
        backtests = _bucket_keys(cluster, "backtests/")
        assert any(k.endswith("/metrics.json") for k in backtests), backtests
        assert _bucket_keys(cluster, "raw_ohlcv/") and _bucket_keys(cluster, "features/")
        assert not Path(cluster.env["PLOUTOS_LOCAL_ROOT"]).exists()


def _step_events(instance: dg.DagsterInstance, run_id: str, step: str) -> dict[str, object]:
    """The STEP_START and STEP_SUCCESS records of ``step`` in a run, by event type."""
    return {
        r.dagster_event.event_type_value: r
        for r in instance.all_logs(run_id)
        if r.dagster_event is not None and r.step_key == step
        and r.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS")
    }  # fmt: skip


def _training_started(instance: dg.DagsterInstance, run_id: str):
    """The STEP_START record of the run's ``trained_model``, once the training has started."""
    return wait_for(
        lambda: _step_events(instance, run_id, "trained_model").get("STEP_START"),
        "the training to start", 300,
    )  # fmt: skip


def _run_failure(instance: dg.DagsterInstance, run_id: str) -> str:
    """The errors of a failed run, as the UI shows them: the run's own, else its steps'."""
    errors = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.event_type_value not in ("PIPELINE_FAILURE", "STEP_FAILURE"):
            continue
        data = event.event_specific_data
        error = getattr(data, "error", None)
        user = getattr(data, "user_failure_data", None)
        text = error.to_string() if error is not None else record.message
        errors.append(f"{event.step_key or 'run'}: {user.description if user else text}")
    return "\n".join(errors) or f"run {run_id} recorded no failure"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_fold_backfill_runs_on_the_workers_one_training_at_a_time(cluster: Cluster) -> None:
    with cluster.instance() as instance:
        assert instance.get_latest_materialization_event(TRAINED) is not None, (
            "runs after test_retrain_runs_on_celery_workers_and_postgres"
        )
        keys = ["0|3", "1|3"]  # fold|seed, as the UI's backfill dialog sends them
        params = {
            "assetSelection": [{"path": ["fold_model"]}, {"path": ["fold_backtest"]}],
            "partitionNames": keys,
            "runConfigData": {"ops": {"fold_model": {"config": TINY_TRAINING}}},
        }
        runs = _backfill(cluster, instance, params)
        assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * len(keys)
        assert sorted(run.tags["dagster/partition"] for run in runs) == keys

        trainings, pids = [], {}
        for run in runs:
            for step in ("fold_model", "fold_backtest"):
                events = _step_events(instance, run.run_id, step)
                pids.setdefault(step, set()).add(events["STEP_START"].dagster_event.pid)
                if step == "fold_model":
                    trainings.append((events["STEP_START"].timestamp,
                                      events["STEP_SUCCESS"].timestamp))  # fmt: skip
        assert pids["fold_model"] <= cluster.worker_pids(GPU_QUEUE), pids
        assert pids["fold_backtest"] <= cluster.worker_pids(CPU_QUEUE), pids
        # The gpu pool: one training at a time across the two runs.
        (first, second) = sorted(trainings)
        assert first[1] <= second[0], trainings

        evaluation = set(_bucket_keys(cluster, "evaluation/"))
        for name in ("fold0_seed3", "fold1_seed3"):
            for part in ("model/final_model.zip", "model/manifest.json", "backtest/metrics.json"):
                assert f"{S3_PREFIX}/evaluation/folds/{name}/{part}" in evaluation, evaluation
        assert not Path(cluster.env["PLOUTOS_LOCAL_ROOT"]).exists()


def _bucket_json(cluster: Cluster, key: str) -> dict:
    return json.loads(_bucket_client(cluster).get_object(Bucket="ploutos", Key=key)["Body"].read())


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_terminating_a_run_stops_its_training_on_the_worker(cluster: Cluster) -> None:
    with cluster.instance() as instance:
        assert instance.get_latest_materialization_event(TRAINED) is not None, (
            "runs after test_retrain_runs_on_celery_workers_and_postgres"
        )
        models_before = set(_bucket_keys(cluster, "models/"))
        budget = 5_000_000  # far longer than the test: only the termination can end it
        run_id = _retrain(
            cluster, {**TINY_TRAINING, "total_timesteps": budget}, tags={"dagster/max_retries": "0"}
        )
        step_pid = _training_started(instance, run_id).dagster_event.pid
        assert step_pid in cluster.worker_pids(GPU_QUEUE)
        assert _client(cluster).terminate_run(run_id) is None
        run = _wait_finished(instance, run_id, timeout=120)
        assert run.status == dg.DagsterRunStatus.CANCELED, run.status

        # The training saw its run canceled, stopped, and the interrupted model went up.
        def interrupted() -> list[str] | None:
            new = set(_bucket_keys(cluster, "models/")) - models_before
            return sorted(k for k in new if k.endswith("/manifest.json")) or None

        (manifest_key,) = wait_for(interrupted, "the interrupted model's manifest", timeout=120)
        model_prefix = manifest_key.rsplit("/", 1)[0]
        keys = _bucket_keys(cluster, model_prefix.removeprefix(f"{S3_PREFIX}/") + "/")
        assert f"{model_prefix}/interrupted_model.zip" in keys, keys
        assert f"{model_prefix}/interrupted_model_vecnormalize.pkl" in keys, keys
        assert f"{model_prefix}/final_model.zip" not in keys, keys
        manifest = _bucket_json(cluster, manifest_key)
        assert manifest["status"] == "interrupted" and 0 < manifest["timesteps"] < budget

        # The step ended as a failure that says so, and its worker process lives on.
        failure = wait_for(
            lambda: next(
                (r.dagster_event.step_failure_data.user_failure_data.description
                 for r in instance.all_logs(run_id)
                 if r.dagster_event is not None and r.step_key == "trained_model"
                 and r.dagster_event.event_type_value == "STEP_FAILURE"),
                None,
            ),
            "the training step's failure", timeout=60,
        )  # fmt: skip
        assert f"run {run_id} was terminated" in failure and "interrupted_model.zip" in failure
        assert psutil.pid_exists(step_pid) and step_pid in cluster.worker_pids(GPU_QUEUE)
        assert instance.get_latest_materialization_event(TRAINED).run_id != run_id


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_worker_killed_mid_training_fails_the_run_naming_the_step(cluster: Cluster) -> None:
    with cluster.instance() as instance:
        assert instance.get_latest_materialization_event(TRAINED) is not None, (
            "runs after test_retrain_runs_on_celery_workers_and_postgres"
        )
        models_before = _bucket_keys(cluster, "models/")
        run_id = _retrain(cluster, LONGER_TRAINING, tags={"dagster/max_retries": "0"})
        step_pid = _training_started(instance, run_id).dagster_event.pid
        assert step_pid in cluster.worker_pids(GPU_QUEUE)
        time.sleep(3)  # mid-training
        os.kill(step_pid, signal.SIGKILL)

        run = _wait_finished(instance, run_id, timeout=300)
        assert run.status == dg.DagsterRunStatus.FAILURE, run.status
        failure = _run_failure(instance, run_id)
        assert "trained_model" in failure and "SIGKILL" in failure, failure
        # The model is uploaded only when training ends: nothing of the killed one is in the bucket.
        assert _bucket_keys(cluster, "models/") == models_before

        # The worker replaced its killed process: the next run trains and succeeds.
        after = _wait_finished(instance, _retrain(cluster, TINY_TRAINING), timeout=480)
        assert after.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, after.run_id)
        assert instance.get_latest_materialization_event(TRAINED).run_id == after.run_id


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_postgres_down_during_a_run_fails_it_and_the_next_run_succeeds(cluster: Cluster) -> None:
    with cluster.instance() as instance:
        before = instance.get_latest_materialization_event(TRAINED)
        assert before is not None, "runs after test_retrain_runs_on_celery_workers_and_postgres"
        features_before = instance.get_materialized_partitions(dg.AssetKey("features"))

        # No automatic retry of this run: whether the daemon retries it depends on which process
        # met the lost database first (a step failure is not retried); the next run is ours.
        run_id = _retrain(cluster, LONGER_TRAINING, tags={"dagster/max_retries": "0"})
        _training_started(instance, run_id)
        cluster.stop_postgres()
        # Longer than a client that meets the outage retries (dagster-postgres: 5 retries,
        # 11.4 +- 1 s in all) after the training's next poll of its run (every 5 s).
        time.sleep(25)
        cluster.script("up")  # restarts PostgreSQL; every other service is still running

        # The run fails, saying why: the worker lost its database.
        run = _wait_finished(instance, run_id, timeout=300)
        assert run.status == dg.DagsterRunStatus.FAILURE, run.status
        failure = _run_failure(instance, run_id)
        assert "too many retries for DB connection" in failure, failure

        # After the restart the next run trains and succeeds, next to every earlier
        # materialization.
        after = _wait_finished(instance, _retrain(cluster, TINY_TRAINING), timeout=480)
        assert after.status == dg.DagsterRunStatus.SUCCESS, _run_failure(instance, after.run_id)
        assert instance.get_latest_materialization_event(TRAINED).run_id == after.run_id
        runs_with_models = {
            record.run_id
            for record in instance.fetch_materializations(TRAINED, limit=100).records
        }
        assert before.run_id in runs_with_models
        assert instance.get_materialized_partitions(dg.AssetKey("features")) == features_before


def test_gpu_tags_parse_with_dagster_k8s_schema() -> None:
    pytest.importorskip("dagster_k8s", reason="the cluster extra: pip install -e '.[cluster]'")
    from dagster_k8s.job import (
        USER_DEFINED_K8S_CONFIG_KEY,
        UserDefinedDagsterK8sConfig,
        get_user_defined_k8s_config,
    )

    assert USER_DEFINED_K8S_CONFIG_KEY == K8S_CONFIG_TAG
    from ploutos_pipeline.definitions import build_definitions

    node = build_definitions().resolve_job_def("retrain").graph.node_named("trained_model")
    assert node.tags[CELERY_QUEUE_TAG] == GPU_QUEUE
    parsed = get_user_defined_k8s_config(node.tags)
    assert isinstance(parsed, UserDefinedDagsterK8sConfig)
    assert parsed.container_config["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert json.loads(node.tags[K8S_CONFIG_TAG]) == GPU_QUEUE_TAGS[K8S_CONFIG_TAG]
    # The schema is really checked: a misspelt key is refused.
    with pytest.raises(dg.DagsterInvalidConfigError):
        get_user_defined_k8s_config({K8S_CONFIG_TAG: json.dumps({"container_cfg": {}})})


def test_default_executor_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dagster_celery", reason="the cluster extra: pip install -e '.[cluster]'")
    from ploutos_pipeline.definitions import build_definitions

    monkeypatch.delenv("PLOUTOS_EXECUTOR", raising=False)
    default = build_definitions().resolve_job_def("retrain").executor_def
    assert default.name != "celery"
    monkeypatch.setenv("PLOUTOS_EXECUTOR", "celery")
    monkeypatch.setenv("PLOUTOS_CELERY_BROKER", "redis://127.0.0.1:1/0")
    assert build_definitions().resolve_job_def("retrain").executor_def.name == "celery"
    monkeypatch.setenv("PLOUTOS_EXECUTOR", "nonsense")
    with pytest.raises(ValueError, match="PLOUTOS_EXECUTOR"):
        build_definitions()


def test_dockerfile_installs_what_the_makefile_installs() -> None:
    makefile = (REPO / "Makefile").read_text()
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text()
    make_install = re.search(r'^CLUSTER_INSTALL := (.+)$', makefile, re.M).group(1).strip()
    assert f"RUN {make_install}\n" in dockerfile
    assert "$(CLUSTER_INSTALL)" in makefile


def test_helm_values_ask_a_gpu_for_training_steps() -> None:
    values = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["postgresql"]["enabled"] is True
    assert values["computeLogManager"]["type"] == "S3ComputeLogManager"
