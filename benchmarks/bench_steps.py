"""Wall time of a `retrain` run on the default executor, its step processes started by `spawn`
(each imports the code location) or by the `forkserver` the executor uses by default (forked
from a server that imported it once per run), side by side.

    .venv/bin/python benchmarks/bench_steps.py --repeat 3

Each run is `dagster job execute -m ploutos_pipeline.definitions -j retrain` (a tiny training, then
the backtest and its checks: the steps' own work is seconds, so the start-up cost shows), on a
temporary instance whose raw table and features were materialized once beforehand, on the sample
data. The two start methods alternate, so the machine's load affects both alike.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "data" / "sample_ohlcv.csv"
TRAINING = {
    "total_timesteps": 1024, "n_envs": 4, "n_steps": 128, "batch_size": 256, "n_epochs": 1,
    "net_arch": [32, 32], "checkpoint_freq": 1024, "device": "cpu",
}  # fmt: skip
START_METHODS = ("spawn", "forkserver")


def prepare(env: dict[str, str]) -> None:
    """raw_ohlcv and every features partition, in process, on the temporary instance."""
    code = (
        "import dagster as dg\n"
        "from ploutos_pipeline.definitions import build_definitions\n"
        "defs = build_definitions()\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    defs.resolve_job_def('refresh_raw_ohlcv').execute_in_process(instance=instance)\n"
        "    tickers = instance.get_dynamic_partitions('tickers')\n"
        "    tags = {'dagster/asset_partition_range_start': tickers[0],\n"
        "            'dagster/asset_partition_range_end': tickers[-1]}\n"
        "    job = defs.resolve_job_def('refresh_features')\n"
        "    job.execute_in_process(instance=instance, tags=tags)\n"
    )
    subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, check=True,
                   capture_output=True)  # fmt: skip


def retrain(env: dict[str, str], start_method: str, config_file: Path) -> float:
    from ploutos_pipeline.executors import FORKSERVER

    method = FORKSERVER if start_method == "forkserver" else {"spawn": {}}
    config = {
        "ops": {"trained_model": {"config": TRAINING}},
        "execution": {"config": {"multiprocess": {"start_method": method}}},
    }
    config_file.write_text(json.dumps(config))  # JSON is YAML
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "job", "execute", "-m", "ploutos_pipeline.definitions", "-j", "retrain",
               "-c", str(config_file)]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0 or "RUN_SUCCESS" not in done.stdout + done.stderr:
        raise RuntimeError(f"the {start_method} run failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each start method")
    args = parser.parse_args(argv)
    print(f"bench_steps: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("command: " + shlex.join([sys.executable, "benchmarks/bench_steps.py", *(argv or [])]))
    with tempfile.TemporaryDirectory(prefix="bench-steps-") as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        env = {
            **os.environ, "DAGSTER_HOME": str(home), "PLOUTOS_DATA": str(SAMPLE_CSV),
            "PLOUTOS_STORAGE": str(Path(tmp) / "storage"), "PYTHONWARNINGS": "ignore",
        }  # fmt: skip
        env.pop("PLOUTOS_EXECUTOR", None)
        prepare(env)
        print(f"{'run':>3} {'spawn s':>8} {'forkserver s':>13} {'speed-up':>9}")
        for run in range(1, args.repeat + 1):
            walls = {m: retrain(env, m, Path(tmp) / "run.yaml") for m in START_METHODS}
            print(
                f"{run:>3} {walls['spawn']:>8.1f} {walls['forkserver']:>13.1f} "
                f"{walls['spawn'] / walls['forkserver']:>8.2f}x",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
