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

from bench_cluster import prepare_data

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "data" / "sample_ohlcv.csv"
TRAINING = {
    "total_timesteps": 1024, "n_envs": 4, "n_steps": 128, "batch_size": 256, "n_epochs": 1,
    "net_arch": [32, 32], "checkpoint_freq": 1024, "device": "cpu",
}  # fmt: skip
START_METHODS = ("spawn", "forkserver")


def retrain(env: dict[str, str], start_method: str, config_file: Path) -> float:
    from ploutos_pipeline.executors import CODE_LOCATION_MODULE, FORKSERVER

    method = FORKSERVER if start_method == "forkserver" else {"spawn": {}}
    config = {
        "ops": {"trained_model": {"config": TRAINING}},
        "execution": {"config": {"multiprocess": {"start_method": method}}},
    }
    config_file.write_text(json.dumps(config))  # JSON is YAML
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [dagster, "job", "execute", "-m", CODE_LOCATION_MODULE, "-j", "retrain",
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
        os.environ["DAGSTER_HOME"] = env["DAGSTER_HOME"]  # the instance prepare_data opens
        prepare_data(env["PLOUTOS_STORAGE"], env["PLOUTOS_DATA"])
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
