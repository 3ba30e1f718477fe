"""Scale-out: the same fold x seed evaluation sequentially in one process and as a backfill on the
local cluster (``deploy/cluster.sh``: PostgreSQL, Redis, moto S3, Celery workers), and Dagster's
cost per partition materialization on PostgreSQL beside SQLite.

    .venv/bin/python benchmarks/bench_cluster.py                    # 4 folds x 2 seeds, 3 repeats
    .venv/bin/python benchmarks/bench_cluster.py --folds 5 --seeds 2 --timesteps 65536 --repeat 1

Needs the cluster extra (``pip install -e ".[cluster]"``), PostgreSQL 15 and redis-server, like
``make cluster``. Data: ``data/sample_ohlcv.csv`` with the 85 real features. Training:
``config/training.yaml`` with ``--timesteps``, on the CPU; evaluation: ``config/evaluation.yaml``
with ``--folds`` walk-forward folds and its first ``--seeds`` seeds, every baseline and cost
multiplier.

- ``sequential``: in a fresh process, :func:`~ploutos_core.evaluation.run.train_fold` then
  :func:`~ploutos_core.evaluation.run.backtest_fold` for every fold x seed, one after the other,
  on torch's default threads, local files. No Dagster: the floor a cluster must beat.
- ``cluster``: ``deploy/cluster.sh up`` with ``--training-workers`` Celery workers on the ``gpu``
  queue (the ``gpu`` pool's limit is set to their number) and one on the ``cpu`` queue, every
  artifact on the moto S3 server; ``raw_ohlcv`` and ``features`` are materialized first (not
  timed). Then the UI's backfill of ``fold_model`` and ``fold_backtest`` over the fold x seed
  partitions, timed from its launch to the end of its last run. On a machine without a GPU the
  ``gpu``-queue workers train on the CPU, each on ``--worker-threads`` torch threads
  (``OMP_NUM_THREADS``; default: the CPUs divided by the training workers).
- ``sequential, N thr``: ``sequential`` again on the workers' torch threads: the speed-up over
  it is the scale-out alone, without the cores a single process's updates also use.
- ``ideal``: the speed-up if every worker trained at the speed of ``sequential, N thr`` with
  nothing else on the machine: ``training workers x sequential / sequential, N thr``. With more
  workers than cores, or when one process already uses the cores well, the goal is above it.
- ``floor``: Dagster's own cost of one run materializing ``--floor-partitions`` partitions of an
  asset that computes and stores nothing (``bench_features.time_dagster_floor``), on the
  cluster's PostgreSQL instance and on a SQLite instance; per partition.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "data" / "sample_ohlcv.csv"
CLUSTER_SCRIPT = ROOT / "deploy" / "cluster.sh"
BUCKET_PREFIX = "s3://ploutos/bench"
BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


def training_overrides(timesteps: int) -> dict:
    return {"total_timesteps": timesteps, "device": "cpu", "checkpoint_freq": 10**12}


def evaluation_values(folds: int, seeds: int) -> dict:
    values = yaml.safe_load((ROOT / "config" / "evaluation.yaml").read_text())
    values["folds"]["n_folds"] = folds
    values["seeds"] = values["seeds"][:seeds]
    return values


# --- sequential, in its own process --------------------------------------------------------------


def run_sequential(settings: dict) -> dict:
    """Every fold x seed trained and backtested in this process; wall seconds."""
    from ploutos_core.config import (
        EvaluationConfig,
        TrainingConfig,
        default_config_path,
        load_config,
        parse_config,
    )
    from ploutos_core.evaluation.folds import make_folds
    from ploutos_core.evaluation.run import backtest_fold, fold_name, train_fold

    training = load_config(
        TrainingConfig, default_config_path("training"), training_overrides(settings["timesteps"])
    )
    evaluation = parse_config(
        EvaluationConfig, evaluation_values(settings["folds"], settings["seeds"]), "bench"
    )
    with open(settings["market"], "rb") as f:
        market = pickle.load(f)
    output = Path(settings["output"])
    started = time.perf_counter()
    for fold in make_folds(market.dates, evaluation.folds):
        for seed in evaluation.seeds:
            directory = output / fold_name(fold.index, seed)
            model = train_fold(training, market, fold, seed, directory / "model")
            backtest_fold(
                model, market, fold, seed, directory / "backtest",
                baselines=evaluation.baselines, cost_multipliers=evaluation.cost_multipliers,
            )  # fmt: skip
    return {"wall": time.perf_counter() - started}


def sequential_wall(
    market_path: Path, output: Path, args: argparse.Namespace, threads: int | None = None
) -> float:
    """Wall seconds of :func:`run_sequential` in a fresh process; ``threads``: its
    ``OMP_NUM_THREADS`` (None: torch's default, every core)."""
    settings = {
        "market": str(market_path),
        "output": str(output),
        "folds": args.folds,
        "seeds": args.seeds,
        "timesteps": args.timesteps,
    }
    command = [sys.executable, __file__, "--sequential", json.dumps(settings)]
    env = {**os.environ, **({} if threads is None else {"OMP_NUM_THREADS": str(threads)})}
    out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["wall"]


def sample_market():
    from ploutos_core.data import load_ohlcv
    from ploutos_core.features import compute_features_many
    from ploutos_core.market import build_market

    ohlcv = load_ohlcv(SAMPLE_CSV)
    return build_market(compute_features_many(ohlcv), ohlcv)


# --- the cluster ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs if not key.startswith("#")}


@contextlib.contextmanager
def local_cluster(root: Path, code_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """``cluster.sh up`` on free ports in ``root``; the environment of its processes. Always
    ``cluster.sh down``."""
    env = {
        **os.environ,
        **code_env,
        "PLOUTOS_CLUSTER_DIR": str(root),
        "PYTHON": sys.executable,
        "PLOUTOS_PG_PORT": str(free_port()),
        "PLOUTOS_REDIS_PORT": str(free_port()),
        "PLOUTOS_S3_PORT": str(free_port()),
        "PLOUTOS_WEB_PORT": str(free_port()),
    }

    def script(command: str) -> None:
        result = subprocess.run(
            [str(CLUSTER_SCRIPT), command], env=env, cwd=ROOT, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"cluster.sh {command} failed:\n{result.stderr[-4000:]}")

    try:
        script("up")
        cluster_env = {**env, **read_env(root / "env")}
        # What cluster.sh gives its processes: boto (s3fs) reads the endpoint from here.
        yield {**cluster_env, "AWS_ENDPOINT_URL": cluster_env["PLOUTOS_S3_ENDPOINT"]}
    finally:
        script("down")


def prepare_data(storage: str, data: str) -> None:
    """raw_ohlcv and every features partition, in this process, into the cluster."""
    from ploutos_pipeline.definitions import build_definitions
    from ploutos_pipeline.partitions import ticker_partitions

    defs = build_definitions(data, storage)
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    with dg.DagsterInstance.get() as instance:
        defs.resolve_job_def("refresh_raw_ohlcv").execute_in_process(
            instance=instance, run_config=quiet
        )
        tickers = instance.get_dynamic_partitions(ticker_partitions.name)
        defs.resolve_job_def("refresh_features").execute_in_process(
            instance=instance,
            run_config=quiet,
            tags={
                "dagster/asset_partition_range_start": tickers[0],
                "dagster/asset_partition_range_end": tickers[-1],
            },
        )


def backfill_wall(env: dict[str, str], keys: list[str], timesteps: int) -> dict:
    """Launch the fold backfill as the UI does; seconds until its last run ended."""
    from dagster_graphql import DagsterGraphQLClient

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(env["PLOUTOS_WEB_PORT"]))
    params = {
        "assetSelection": [{"path": ["fold_model"]}, {"path": ["fold_backtest"]}],
        "partitionNames": keys,
        "runConfigData": {"ops": {"fold_model": {"config": training_overrides(timesteps)}}},
    }
    launched = time.time()
    answer = client._execute(BACKFILL, {"params": params})["launchPartitionBackfill"]
    if answer["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"the backfill was refused: {answer}")
    runs_filter = dg.RunsFilter(tags={"dagster/backfill": answer["backfillId"]})
    with dg.DagsterInstance.get() as instance:
        while True:
            records = instance.get_run_records(runs_filter)
            if len(records) == len(keys) and all(r.dagster_run.is_finished for r in records):
                break
            time.sleep(1)
        failed = [r.dagster_run.run_id for r in records if r.dagster_run.status.value != "SUCCESS"]
        if failed:
            raise RuntimeError(f"backfill runs failed: {failed}")
        phases = [run_phases(instance, record) for record in records]
    trainings = [(p["fold_model"][0], p["fold_model"][1]) for p in phases]
    return {
        "wall": max(r.end_time for r in records) - launched,
        "training": sum(end - start for start, end in trainings),
        "overlap": max_overlap(trainings),
        "phases": {
            name: statistics.mean(p[name][1] - p[name][0] for p in phases) for name in PHASES
        },
    }


Window = tuple[float, float]
PHASES = ("queued", "to_training", "fold_model", "between", "fold_backtest", "to_end")
"""Where a backfill run's time goes: created to started (the run queue and the launch), started
to the training step's start (the run worker loads the code, the step waits for a gpu slot and a
worker), the training step, the gap to the backtest step, the backtest step, and its end to the
run's end."""


def run_phases(instance: dg.DagsterInstance, record: dg.RunRecord) -> dict[str, Window]:
    """(start, end) of each of :data:`PHASES` in one run."""
    steps: dict[tuple[str, str], float] = {
        (r.step_key, r.dagster_event.event_type_value): r.timestamp
        for r in instance.all_logs(record.dagster_run.run_id)
        if r.dagster_event is not None
        and r.dagster_event.event_type_value in ("STEP_START", "STEP_SUCCESS")
    }
    created = record.create_timestamp.timestamp()
    model = (steps["fold_model", "STEP_START"], steps["fold_model", "STEP_SUCCESS"])
    backtest = (steps["fold_backtest", "STEP_START"], steps["fold_backtest", "STEP_SUCCESS"])
    return {
        "queued": (created, record.start_time),
        "to_training": (record.start_time, model[0]),
        "fold_model": model,
        "between": (model[1], backtest[0]),
        "fold_backtest": backtest,
        "to_end": (backtest[1], record.end_time),
    }


def max_overlap(windows: list[Window]) -> int:
    """The most windows open at one time."""
    edges = sorted([(start, 1) for start, _ in windows] + [(end, -1) for _, end in windows])
    open_now = best = 0
    for _, step in edges:
        open_now += step
        best = max(best, open_now)
    return best


def floor_ms(instance: dg.DagsterInstance, partitions: int) -> float:
    """Dagster's cost per partition of one run over ``partitions`` partitions, in ms."""
    from bench_features import time_dagster_floor

    tickers = [f"F{i:05d}" for i in range(partitions)]
    return time_dagster_floor(tickers, instance) / partitions * 1000


# --- the bench ------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=4, help="walk-forward folds")
    parser.add_argument("--seeds", type=int, default=2, help="the evaluation config's first K")
    parser.add_argument("--timesteps", type=int, default=32_768, help="PPO timesteps per training")
    parser.add_argument("--training-workers", type=int, default=2, help="gpu-queue workers")
    parser.add_argument("--worker-threads", type=int, help="torch threads per worker")
    parser.add_argument("--repeat", type=int, default=3, help="sequential and cluster runs")
    parser.add_argument("--floor-partitions", type=int, default=200)
    parser.add_argument("--sequential", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    if args.sequential:
        print(json.dumps(run_sequential(json.loads(args.sequential))))
        return 0

    cpus = os.cpu_count() or 1
    threads = args.worker_threads or max(1, cpus // args.training_workers)
    trainings = args.folds * args.seeds
    print(
        f"bench_cluster: {args.folds} folds x {args.seeds} seeds = {trainings} trainings of "
        f"{args.timesteps:,} timesteps, sample data; {cpus} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; cluster: {args.training_workers} gpu-queue workers "
        f"({threads} torch threads each) + 1 cpu-queue worker, artifacts on moto S3"
    )
    print(
        "command: "
        + shlex.join([sys.executable, "benchmarks/bench_cluster.py", *(argv or sys.argv[1:])])
    )
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        tmp_path = Path(tmp)
        market_path = tmp_path / "market.pkl"
        market_path.write_bytes(pickle.dumps(sample_market()))
        evaluation = evaluation_values(args.folds, args.seeds)
        evaluation_path = tmp_path / "evaluation.yaml"
        evaluation_path.write_text(yaml.safe_dump(evaluation))
        # PostgreSQL runs as the postgres user: its directory must be reachable.
        cluster_root = Path(tempfile.mkdtemp(prefix="ploutos-bench-cluster-", dir="/tmp"))
        cluster_root.chmod(0o755)
        code_env = {
            "PLOUTOS_DATA": str(SAMPLE_CSV),
            "PLOUTOS_STORAGE": BUCKET_PREFIX,
            "PLOUTOS_EVALUATION_CONFIG": str(evaluation_path),
            "PLOUTOS_GPU_WORKERS": str(args.training_workers),
            "OMP_NUM_THREADS": str(threads),
        }
        started = time.perf_counter()
        try:
            with local_cluster(cluster_root, code_env) as env:
                os.environ.update({k: v for k, v in env.items() if k != "OMP_NUM_THREADS"})
                with dg.DagsterInstance.get() as instance:
                    slots = instance.event_log_storage.get_concurrency_info("gpu").slot_count
                print(
                    f"cluster up in {time.perf_counter() - started:.0f} s; gpu pool limit {slots}",
                    flush=True,
                )
                prepare_data(BUCKET_PREFIX, str(SAMPLE_CSV))
                keys = [f"{f}|{s}" for f in range(args.folds) for s in evaluation["seeds"]]
                rows = run_repeats(args, market_path, tmp_path, env, keys)
                with dg.DagsterInstance.get() as instance:
                    pg_ms = floor_ms(instance, args.floor_partitions)
        finally:
            shutil.rmtree(cluster_root, ignore_errors=True)
        with dg.instance_for_test() as instance:
            sqlite_ms = floor_ms(instance, args.floor_partitions)
    speedups = [row["speedup"] for row in rows]
    ideals = [row["ideal"] for row in rows]
    print(
        f"speed-up median {statistics.median(speedups):.2f}x over {len(rows)} runs "
        f"({', '.join(f'{s:.2f}x' for s in speedups)}); ideal median "
        f"{statistics.median(ideals):.2f}x ({', '.join(f'{s:.2f}x' for s in ideals)})"
    )
    print(
        f"Dagster per partition materialization ({args.floor_partitions} partitions in one run, "
        f"nothing computed): PostgreSQL {pg_ms:.1f} ms, SQLite {sqlite_ms:.1f} ms "
        f"({pg_ms / sqlite_ms:.2f}x)"
    )
    return 0


def run_repeats(
    args: argparse.Namespace,
    market_path: Path,
    tmp_path: Path,
    env: dict[str, str],
    keys: list[str],
) -> list[dict]:
    threads = int(env["OMP_NUM_THREADS"])
    print(
        f"{'run':>3} {'sequential s':>13} {'cluster s':>10} {'speed-up':>9} "
        f"{'training steps s':>17} {'most at once':>13} {f'sequential, {threads} thr s':>20} "
        f"{'vs it':>6} {'ideal':>6}"
    )
    rows = []
    for run in range(1, args.repeat + 1):
        sequential = sequential_wall(market_path, tmp_path / f"sequential{run}", args)
        cluster = backfill_wall(env, keys, args.timesteps)
        narrow = sequential_wall(market_path, tmp_path / f"narrow{run}", args, threads)
        row = {
            **cluster,
            "sequential": sequential,
            "speedup": sequential / cluster["wall"],
            "ideal": args.training_workers * sequential / narrow,
        }
        rows.append(row)
        print(
            f"{run:>3} {sequential:>13.1f} {cluster['wall']:>10.1f} {row['speedup']:>8.2f}x "
            f"{cluster['training']:>17.1f} {cluster['overlap']:>13} {narrow:>20.1f} "
            f"{narrow / cluster['wall']:>5.2f}x {row['ideal']:>5.2f}x",
            flush=True,
        )
        print(
            "    per cluster run, mean s: "
            + ", ".join(f"{name} {value:.1f}" for name, value in cluster["phases"].items()),
            flush=True,
        )
    return rows


if __name__ == "__main__":
    sys.exit(main())
