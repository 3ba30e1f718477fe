"""``make demo``: run the whole pipeline on the bundled sample data into the persistent instance.

Runs the same jobs the schedule and the UI run (observe the CSV, ``refresh_raw_ohlcv``,
``refresh_features`` as one single-run backfill, ``retrain`` with ``config/demo_training.yaml``),
then prints what was made and where. Open ``make ui`` afterwards to see the runs.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import dagster as dg

from ploutos_core.config import default_config_path, read_yaml
from ploutos_pipeline.definitions import defs
from ploutos_pipeline.partitions import ticker_partitions

QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def _run(
    job_name: str, instance: dg.DagsterInstance, run_config: dict[str, Any] | None = None, **kwargs
) -> dg.ExecuteInProcessResult:
    started = time.perf_counter()
    print(f"\n== {job_name} ==", flush=True)
    result = defs.resolve_job_def(job_name).execute_in_process(
        instance=instance, run_config={**QUIET_LOGS, **(run_config or {})}, **kwargs
    )
    print(f"   {job_name}: run {result.run_id} succeeded in {time.perf_counter() - started:.1f} s")
    return result


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    events = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in events[-1].metadata.items()} if events else {}


def main() -> int:
    if not os.environ.get("DAGSTER_HOME"):
        print("DAGSTER_HOME is not set; run `make demo`, which sets it to storage/dagster_home")
        return 2
    instance = dg.DagsterInstance.get()
    _run("observe_raw_ohlcv_csv", instance)

    raw = _metadata(_run("refresh_raw_ohlcv", instance), "raw_ohlcv")
    tickers = instance.get_dynamic_partitions(ticker_partitions.name)
    _run(
        "refresh_features",
        instance,
        tags={
            "dagster/asset_partition_range_start": tickers[0],
            "dagster/asset_partition_range_end": tickers[-1],
        },
    )
    demo_config = read_yaml(default_config_path("demo_training"))
    retrain = _run(
        "retrain", instance, run_config={"ops": {"trained_model": {"config": demo_config}}}
    )
    model = _metadata(retrain, "trained_model")
    backtest = _metadata(retrain, "backtest")

    print("\n== what the demo made ==")
    print(f"instance (runs, events):  {instance.root_directory}")
    print(f"raw_ohlcv:                {raw['path']}")
    print(f"                          {raw['rows']} rows, {raw['tickers']} tickers")
    print(f"features:                 {len(tickers)} partitions under "
          f"{defs.resources['storage'].features_dir}")
    print(f"trained_model:            {model['model_dir']}  ({model['timesteps']} timesteps, "
          f"{model['steps_per_second']} steps/s on {model['device']})")
    print(f"backtest:                 {backtest['output_dir']}")
    print(f"\n{backtest['metrics']}")
    print("\nplots:")
    for png in sorted(os.listdir(backtest["output_dir"])):
        if png.endswith(".png"):
            print(f"  {os.path.join(backtest['output_dir'], png)}")
    print("\nSee it in the web UI: make ui, then open http://127.0.0.1:3000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
