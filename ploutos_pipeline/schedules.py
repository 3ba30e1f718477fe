"""The weekly retrain. Off until turned on in the UI or with `dagster schedule start`."""

import os

import dagster as dg

from ploutos_pipeline.jobs import retrain_job

WEEKLY_RETRAIN_CRON = os.environ.get("PLOUTOS_RETRAIN_CRON", "0 3 * * 1")

weekly_retrain = dg.ScheduleDefinition(
    name="weekly_retrain",
    job=retrain_job,
    cron_schedule=WEEKLY_RETRAIN_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    description="Retrain and backtest every Monday 03:00 UTC ($PLOUTOS_RETRAIN_CRON overrides).",
)
