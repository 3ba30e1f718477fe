"""Failure drills against a live instance: terminating a training, two retrains at once.

A webserver and a daemon run on 127.0.0.1 with the project's dagster.yaml (the ``gpu`` pool limited
to 1); runs are launched and terminated through the GraphQL API, as the UI does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient
from stable_baselines3 import PPO

from ploutos_pipeline.definitions import build_definitions
from ploutos_pipeline.partitions import ticker_partitions
from tests.pipeline.conftest import write_market
from tests.support.configs import TINY_TRAINING
from tests.support.servers import dagster_servers, make_home
from tests.support.waiting import wait_for

pytestmark = pytest.mark.slow
LONG_TRAINING = {**TINY_TRAINING, "total_timesteps": 5_000_000}


@dataclass
class Live:
    client: DagsterGraphQLClient
    instance: dg.DagsterInstance
    storage: Path
    defs: dg.Definitions

    def retrain(self, config: dict) -> str:
        return self.client.submit_job_execution(
            "retrain", run_config={"ops": {"trained_model": {"config": config}}}
        )

    def wait_finished(self, run_id: str, timeout: float = 300) -> dg.DagsterRun:
        wait_for(lambda: self.instance.get_run_by_id(run_id).is_finished, f"run {run_id}", timeout)
        return self.instance.get_run_by_id(run_id)

    def model_dir(self, run_id: str) -> Path:
        return next((self.storage / "models").glob(f"*-{run_id[:8]}"))

    def step_window(self, run_id: str, step: str) -> tuple[float, float]:
        events = [
            e for e in self.instance.all_logs(run_id)
            if e.step_key == step and e.dagster_event is not None
        ]
        starts = [e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_START"]
        ends = [e.timestamp for e in events if e.dagster_event.event_type_value == "STEP_SUCCESS"]
        return starts[0], ends[-1]



@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("drills")
    home = make_home(root / "home")
    csv, storage = write_market(root / "ohlcv.csv"), root / "storage"
    env = {
        "DAGSTER_HOME": str(home),
        "PLOUTOS_DATA": str(csv),
        "PLOUTOS_STORAGE": str(storage),
    }
    with (
        dg.DagsterInstance.from_config(str(home)) as instance,
        dagster_servers({**os.environ, **env}, root / "logs") as url,
    ):
        defs = build_definitions(str(csv), str(storage))
        defs.resolve_job_def("refresh_raw_ohlcv").execute_in_process(instance=instance)
        tickers = instance.get_dynamic_partitions(ticker_partitions.name)
        defs.resolve_job_def("refresh_features").execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": tickers[0],
                "dagster/asset_partition_range_end": tickers[-1],
            },
        )
        host, port = url.removeprefix("http://").split(":")
        yield Live(DagsterGraphQLClient(host, port_number=int(port)), instance, storage, defs)


def test_terminating_a_training_run_keeps_its_progress_and_frees_the_gpu(live: Live) -> None:
    # The model users have now (trained in process on the same instance: faster, same record).
    live.defs.resolve_job_def("retrain").execute_in_process(
        instance=live.instance, run_config={"ops": {"trained_model": {"config": TINY_TRAINING}}},
        asset_selection=[dg.AssetKey("trained_model")],
    )  # fmt: skip
    before = live.instance.get_latest_materialization_event(dg.AssetKey("trained_model"))

    run_id = live.retrain(LONG_TRAINING)
    wait_for(
        lambda: any(live.storage.glob(f"models/*-{run_id[:8]}/checkpoint_*_steps.zip")),
        "the long training's first checkpoint",
    )
    live.client.terminate_run(run_id)
    run = live.wait_finished(run_id, timeout=120)
    assert run.status == dg.DagsterRunStatus.CANCELED

    model_dir = live.model_dir(run_id)
    assert (model_dir / "interrupted_model_vecnormalize.pkl").is_file()
    PPO.load(model_dir / "interrupted_model.zip", device="cpu")
    assert not (model_dir / "final_model.zip").exists()
    after = live.instance.get_latest_materialization_event(dg.AssetKey("trained_model"))
    assert (after.run_id, after.timestamp) == (before.run_id, before.timestamp)
    assert (Path(str(before.asset_materialization.metadata["model_dir"].value))
            / "final_model.zip").is_file()
    wait_for(
        lambda: live.instance.event_log_storage.get_concurrency_info("gpu").active_slot_count == 0,
        "the gpu pool slot to be freed",
        timeout=90,
    )


def test_two_retrains_at_once_take_turns_on_the_gpu_pool(live: Live) -> None:
    first, second = live.retrain(TINY_TRAINING), live.retrain(TINY_TRAINING)
    runs = [live.wait_finished(first), live.wait_finished(second)]
    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 2
    (start_a, end_a), (start_b, end_b) = sorted(
        live.step_window(run.run_id, "trained_model") for run in runs
    )
    assert end_a <= start_b, "the two trainings overlapped on the gpu pool"
