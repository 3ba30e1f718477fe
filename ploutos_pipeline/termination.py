"""A terminated run stops its training step wherever the step runs.

On one machine Dagster terminates a run by signalling its step processes, and training turns
the signal into an interruption. A step on a Celery worker gets no signal: dagster-celery revokes
its task, which does not stop a task already running, so the training would go on to the end of
its budget after the run was marked canceled. The step therefore also watches its run's status
in the instance and stops, saving ``interrupted_model.zip``, once the run is being canceled.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import dagster as dg

if TYPE_CHECKING:
    from stable_baselines3.common.callbacks import BaseCallback

TERMINATED = (dg.DagsterRunStatus.CANCELING, dg.DagsterRunStatus.CANCELED)
POLL_SECONDS = 5.0
"""How often a training step reads its run's status: one indexed query per poll."""


def termination_reason(instance: dg.DagsterInstance, run_id: str) -> Callable[[], str | None]:
    """A check that names why the run stopped once it is being canceled, else gives None."""

    def reason() -> str | None:
        run = instance.get_run_by_id(run_id)
        if run is None or run.status not in TERMINATED:
            return None
        return f"run {run_id} was terminated (status {run.status.value})"

    return reason


@contextlib.contextmanager
def stops_when_terminated(
    context: dg.AssetExecutionContext, every_s: float = POLL_SECONDS
) -> Iterator[BaseCallback]:
    """The training callback that interrupts the step's training when its run is terminated.

    The stop it makes ends the step as a ``dg.Failure`` saying where the interrupted model is
    (after the model directory's working copy has uploaded it), so a Celery worker's task ends
    normally instead of carrying an interruption out of its process.
    """
    from ploutos_core.training import StopRequested, StopWhenAsked

    try:
        yield StopWhenAsked(termination_reason(context.instance, context.run.run_id), every_s)
    except StopRequested as stop:
        raise dg.Failure(
            description=f"training {stop}; interrupted_model.zip and its statistics were saved "
            "in the model directory (continue it with `ploutos train --resume`)",
            metadata={"error": "StopRequested"},
            allow_retries=False,
        ) from stop
