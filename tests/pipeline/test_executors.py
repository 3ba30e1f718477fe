"""The default executor: Dagster's own, its step processes forked from a preloaded server."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.system_config.objects import ResolvedRunConfig

from ploutos_pipeline.definitions import build_definitions
from ploutos_pipeline.executors import CODE_LOCATION_MODULE


@pytest.fixture
def job(monkeypatch: pytest.MonkeyPatch) -> dg.JobDefinition:
    monkeypatch.delenv("PLOUTOS_EXECUTOR", raising=False)
    return build_definitions().resolve_job_def("refresh_raw_ohlcv")


def _engine_config(job: dg.JobDefinition, execution: dict | None) -> dict:
    run_config = {} if execution is None else {"execution": {"config": execution}}
    return ResolvedRunConfig.build(job, run_config).execution.execution_engine_config


def test_steps_fork_from_a_server_unless_the_run_config_asks_otherwise(
    job: dg.JobDefinition,
) -> None:
    assert job.executor_def.name == "multi_or_in_process_executor"
    default = _engine_config(job, None)["multiprocess"]
    assert default["start_method"] == {"forkserver": {"preload_modules": [CODE_LOCATION_MODULE]}}
    tuned = _engine_config(job, {"multiprocess": {"max_concurrent": 2}})["multiprocess"]
    assert tuned["max_concurrent"] == 2 and tuned["start_method"] == default["start_method"]
    spawned = _engine_config(job, {"multiprocess": {"start_method": {"spawn": {}}}})
    assert spawned["multiprocess"]["start_method"] == {"spawn": {}}
    assert "multiprocess" not in _engine_config(job, {"in_process": {}})
