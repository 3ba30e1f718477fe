"""A training step reads its run's status: a run being canceled stops its training."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from stable_baselines3 import PPO

from ploutos_core.artifacts import Manifest
from ploutos_core.features import FEATURE_NAMES
from ploutos_core.training import train
from ploutos_pipeline.termination import stops_when_terminated, termination_reason
from tests.support.configs import tiny_training
from tests.support.markets import random_feature_market


def test_the_reason_appears_once_the_run_is_being_canceled() -> None:
    with dg.instance_for_test() as instance:
        run = instance.add_run(
            dg.DagsterRun(job_name="retrain", run_id="run-1", status=dg.DagsterRunStatus.STARTED)
        )
        reason = termination_reason(instance, run.run_id)
        assert reason() is None
        instance.report_run_canceling(run)
        assert reason() == "run run-1 was terminated (status CANCELING)"
        instance.report_run_canceled(instance.get_run_by_id(run.run_id))
        assert reason() == "run run-1 was terminated (status CANCELED)"
        assert termination_reason(instance, "no-such-run")() is None


def test_a_step_whose_run_is_canceled_saves_the_interrupted_model_and_fails(
    tmp_path: Path,
) -> None:
    market = random_feature_market(3, 200, FEATURE_NAMES[:4], seed=1)
    out = tmp_path / "model"

    @dg.asset
    def training(context) -> None:  # unannotated: `from __future__` makes it a string
        # What the UI's Terminate does to the run record; no signal reaches this process.
        context.instance.report_run_canceling(context.run)
        with stops_when_terminated(context, every_s=1e-9) as stop:
            train(tiny_training(total_timesteps=100_000), market, out, extra_callbacks=[stop])

    with dg.instance_for_test() as instance:
        result = dg.materialize([training], instance=instance, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    description = failure.step_failure_data.user_failure_data.description
    assert f"run {result.run_id} was terminated" in description
    assert "interrupted_model.zip" in description
    assert Manifest.read(out / "manifest.json").status == "interrupted"
    assert PPO.load(out / "interrupted_model.zip", device="cpu").num_timesteps < 100_000
    assert not (out / "final_model.zip").exists()
