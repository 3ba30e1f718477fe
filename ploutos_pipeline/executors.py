"""Where steps run: in-process/multiprocess (the default), Celery workers, or Kubernetes jobs.

``PLOUTOS_EXECUTOR`` picks the executor every job gets from :func:`executor_from_env`:

* unset (or ``multiprocess``): Dagster's default executor, the embedded setup of ``make demo``;
  its step processes fork from a server that imported the code location
  (:func:`local_executor_def`);
* ``celery``: Dagster's celery executor. Steps whose op carries :data:`GPU_QUEUE_TAGS` go to the
  ``gpu`` queue, every other step to the ``cpu`` queue (the app's default queue). The broker is
  ``$PLOUTOS_CELERY_BROKER`` (default ``redis://127.0.0.1:6379/0``), the result backend
  ``$PLOUTOS_CELERY_BACKEND`` (default: the broker). Both are passed as ``{env: ...}`` so that a
  password in the URL never lands in a run's config;
* ``k8s``: dagster-k8s's ``k8s_job_executor``, one pod per step; the ``dagster-k8s/config`` tag of
  :data:`GPU_QUEUE_TAGS` asks for one ``nvidia.com/gpu`` for training steps.

The ``gpu`` pool (``concurrency.pools`` in the instance's dagster.yaml) is enforced by the run's
coordinator before a step is submitted, so it still holds when steps run on other machines.

``PLOUTOS_FEATURES_PER_RUN`` (:func:`features_backfill_policy`, read when the code location
loads) splits a ``features`` backfill into runs of at most that many tickers, so that the tickers
spread over the ``cpu`` workers; unset, a backfill is one run that uses every core of its machine.
"""

from __future__ import annotations

import os

import dagster as dg

EXECUTOR_ENV = "PLOUTOS_EXECUTOR"
BROKER_ENV = "PLOUTOS_CELERY_BROKER"
BACKEND_ENV = "PLOUTOS_CELERY_BACKEND"
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"

FEATURES_PER_RUN_ENV = "PLOUTOS_FEATURES_PER_RUN"
CELERY_QUEUE_TAG = "dagster-celery/queue"  # dagster_celery.tags.DAGSTER_CELERY_QUEUE_TAG
K8S_CONFIG_TAG = "dagster-k8s/config"
GPU_QUEUE = "gpu"
CPU_QUEUE = "cpu"

GPU_QUEUE_TAGS: dict[str, object] = {
    CELERY_QUEUE_TAG: GPU_QUEUE,
    K8S_CONFIG_TAG: {
        "container_config": {"resources": {"limits": {"nvidia.com/gpu": 1}}},
    },
}
"""Op tags of a training step: ``@dg.asset(..., op_tags=GPU_QUEUE_TAGS)``.

Celery sends the step to the ``gpu`` queue; on Kubernetes its pod asks for one GPU. Other
steps need no tag: they go to the ``cpu`` queue, the default queue of the celery executor here.
"""

CPU_QUEUE_TAGS: dict[str, object] = {CELERY_QUEUE_TAG: CPU_QUEUE}
"""Op tags that name the ``cpu`` queue explicitly (untagged steps go there anyway)."""


def celery_executor_def() -> dg.ExecutorDefinition:
    """Dagster's celery executor, broker and backend from the environment."""
    from dagster_celery import celery_executor

    broker = {"env": BROKER_ENV} if os.environ.get(BROKER_ENV) else DEFAULT_BROKER
    backend = {"env": BACKEND_ENV} if os.environ.get(BACKEND_ENV) else broker
    return celery_executor.configured(
        {
            "broker": broker,
            "backend": backend,
            "config_source": {"task_default_queue": CPU_QUEUE},
        },
        name="celery",
    )


CODE_LOCATION_MODULE = "ploutos_pipeline.definitions"
FORKSERVER = {"forkserver": {"preload_modules": [CODE_LOCATION_MODULE]}}
"""The step processes' start method. The modules are named: with none, Dagster preloads only its
executor module, not the job's module its documentation promises."""


def _forkserver_by_default(config: dict) -> dict:
    if "multiprocess" in config and "start_method" not in config["multiprocess"]:
        return {"multiprocess": {**config["multiprocess"], "start_method": FORKSERVER}}
    return config


def local_executor_def() -> dg.ExecutorDefinition:
    """Dagster's default executor (``multiprocess``, or ``in_process`` by run config), whose step
    processes are forked from a server that imported the code location once per run
    (``start_method: forkserver``), instead of each spawned step importing it again.

    The run config keeps the default executor's shape: ``execution: config: multiprocess:
    {max_concurrent: ..., start_method: {spawn: {}}}`` still works.
    """
    default = dg.multi_or_in_process_executor
    return default.configured(
        _forkserver_by_default, name=default.name, config_schema=default.config_schema
    )


def executor_from_env() -> dg.ExecutorDefinition:
    """The executor ``$PLOUTOS_EXECUTOR`` names; unset, Dagster's default one (forkserver)."""
    name = os.environ.get(EXECUTOR_ENV, "").strip().lower()
    if name in ("", "multiprocess", "default"):
        return local_executor_def()
    if name == "celery":
        return celery_executor_def()
    if name == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={name!r}: expected celery, k8s or nothing (the default)")


def features_backfill_policy() -> dg.BackfillPolicy:
    """One run per ``features`` backfill, or runs of ``$PLOUTOS_FEATURES_PER_RUN`` tickers."""
    value = os.environ.get(FEATURES_PER_RUN_ENV, "").strip()
    if not value:
        return dg.BackfillPolicy.single_run()
    if not value.isdigit() or int(value) < 1:
        raise ValueError(
            f"{FEATURES_PER_RUN_ENV}={value!r}: expected a positive number of tickers per run, "
            "or nothing (one run per backfill)"
        )
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=int(value))
