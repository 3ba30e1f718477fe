"""Wall time of a walk-forward evaluation (folds x seeds, then the verdict) on the sample data at a
fixed timestep budget: the core alone, Dagster's in-process executor (sequential) and its
multiprocess executor, and what each adds to the sum of the trainings' own wall times.

    .venv/bin/python benchmarks/bench_evaluate.py                    # 5 folds x 5 seeds, 4096 steps
    .venv/bin/python benchmarks/bench_evaluate.py --folds 3 --seeds 3 --timesteps 2048 --repeat 3
    .venv/bin/python benchmarks/bench_evaluate.py --modes multiprocess --step-threads 0

Data: ``data/sample_ohlcv.csv`` with the 85 real features (computed once, then pickled for the
steps to load). Training: ``config/training.yaml`` (n_envs 32, n_steps 128: 4096 timesteps is one
rollout and one update) with ``--timesteps``, on the CPU. Evaluation: ``config/evaluation.yaml``
with ``--folds`` walk-forward folds and its first ``--seeds`` seeds, every baseline and cost
multiplier.

Modes, each in a fresh process:

- ``core``: :func:`ploutos_core.evaluation.run.run_evaluation`, no Dagster;
- ``in_process``: a Dagster job shaped like the ``evaluation`` assets, a training step (the
  ``fold_model`` step, :func:`~ploutos_core.evaluation.run.train_fold`) and a backtest step
  (``fold_backtest``, :func:`~ploutos_core.evaluation.run.backtest_fold`) per fold x seed and
  one ``verdict`` step, on a temporary instance with the in-process executor;
- ``multiprocess``: the same job on Dagster's multiprocess executor, ``--max-concurrent`` steps at
  a time (each step a new Python process). The instance has no ``gpu`` pool limit: with
  ``storage/dagster.yaml``'s limit of 1 the training steps would run one at a time. Each step
  process gets ``--step-threads`` torch threads (``OMP_NUM_THREADS``; default: the CPUs divided
  by ``--max-concurrent``): with torch's default, every concurrent training runs a thread per core
  and they slow each other down several times over (``--step-threads 0`` shows it).

The job is one run over all folds x seeds because a Dagster run holds one partition: the
``fold_model`` x ``fold_backtest`` partitions of the real assets parallelize across runs (a
backfill), which needs the daemon; the steps here call the same core functions.
"Sum of trainings" adds up the ``wall_time_s`` of every fold model's manifest; "rest" is the
wall time minus that sum (backtests, baselines, the verdict, process starts and Dagster).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pickle
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_CSV = ROOT / "data" / "sample_ohlcv.csv"
SETTINGS_ENV = "PLOUTOS_BENCH_EVALUATE"
MODES = ("core", "in_process", "multiprocess")


# --- settings shared by the bench process, the mode processes and Dagster's step processes ----


def configs(settings: dict):
    """The training and evaluation configs of ``settings``."""
    from ploutos_core.config import (
        EvaluationConfig,
        TrainingConfig,
        default_config_path,
        load_config,
    )

    training = load_config(
        TrainingConfig,
        default_config_path("training"),
        {"total_timesteps": settings["timesteps"], "device": "cpu", "checkpoint_freq": 10**12},
    )
    evaluation = load_config(EvaluationConfig, default_config_path("evaluation"))
    seeds = evaluation.seeds[: settings["seeds"]]
    evaluation = load_config(
        EvaluationConfig,
        default_config_path("evaluation"),
        {"folds": {"n_folds": settings["folds"]}, "seeds": seeds},
    )
    return training, evaluation


def load_market(settings: dict):
    with open(settings["market"], "rb") as f:
        return pickle.load(f)


def quiet_logger() -> logging.Logger:
    logger = logging.getLogger("bench_evaluate")
    logger.setLevel(logging.WARNING)
    return logger


# --- the Dagster job ---------------------------------------------------------------------------


def _fold_steps(fold_index: int, seed: int, settings: dict):
    from ploutos_core.evaluation.folds import make_folds
    from ploutos_core.evaluation.run import FOLDS_DIR, backtest_fold, fold_name, train_fold

    name = fold_name(fold_index, seed)
    directory = Path(settings["output"]) / FOLDS_DIR / name

    def fold(market, evaluation):
        return make_folds(market.dates, evaluation.folds)[fold_index]

    @dg.op(name=f"fold_model_{name}")
    def fold_model() -> str:
        training, evaluation = configs(settings)
        market = load_market(settings)
        path = train_fold(
            training, market, fold(market, evaluation), seed, directory / "model",
            logger=quiet_logger(),
        )  # fmt: skip
        return str(path)

    @dg.op(name=f"fold_backtest_{name}")
    def fold_backtest(model_path: str) -> dict:
        _, evaluation = configs(settings)
        market = load_market(settings)
        result = backtest_fold(
            model_path, market, fold(market, evaluation), seed, directory / "backtest",
            baselines=evaluation.baselines, cost_multipliers=evaluation.cost_multipliers,
        )  # fmt: skip
        return result.to_dict()

    return fold_model, fold_backtest


def evaluation_job() -> dg.JobDefinition:
    """The job of ``$PLOUTOS_BENCH_EVALUATE``'s settings (module level, so Dagster's step
    processes can rebuild it)."""
    from ploutos_core.evaluation.folds import make_folds
    from ploutos_core.evaluation.run import VERDICT_FILE, FoldResult, judge, market_fingerprint
    from ploutos_core.evaluation.trials import TrialRegistry

    settings = json.loads(os.environ[SETTINGS_ENV])
    _, evaluation = configs(settings)
    steps = [
        _fold_steps(f, s, settings)
        for f in range(evaluation.folds.n_folds)
        for s in evaluation.seeds
    ]

    @dg.op(ins={"results": dg.In(list)})
    def verdict(results: list) -> None:
        training, evaluation = configs(settings)
        market = load_market(settings)
        output = Path(settings["output"])
        judge(
            [FoldResult.from_dict(r) for r in results],
            evaluation,
            TrialRegistry(output / "trials.json"),
            market_fingerprint(market, make_folds(market.dates, evaluation.folds)),
            training,
            output_path=output / VERDICT_FILE,
        )

    @dg.job(name="bench_evaluate")
    def job() -> None:
        verdict([fold_backtest(fold_model()) for fold_model, fold_backtest in steps])

    return job


# --- one mode, in its own process ---------------------------------------------------------------


def training_seconds(output: Path) -> float:
    from ploutos_core.artifacts import Manifest

    return sum(
        Manifest.read(path).wall_time_s or 0.0
        for path in sorted(output.glob("folds/*/model/manifest.json"))
    )


def run_mode(mode: str, settings: dict, max_concurrent: int) -> dict:
    """Evaluate with ``mode``; wall seconds and the sum of the trainings' wall seconds."""
    from ploutos_core.evaluation.run import VERDICT_FILE, run_evaluation
    from ploutos_core.evaluation.trials import TrialRegistry

    output = Path(settings["output"])
    os.environ[SETTINGS_ENV] = json.dumps(settings)
    started = time.perf_counter()
    if mode == "core":
        training, evaluation = configs(settings)
        registry = TrialRegistry(output / "trials.json")
        run_evaluation(
            training, evaluation, load_market(settings), output, registry, logger=quiet_logger()
        )
    else:
        executor = {"in_process": {}} if mode == "in_process" else {
            "multiprocess": {"max_concurrent": max_concurrent}
        }  # fmt: skip
        with tempfile.TemporaryDirectory(prefix="dagster-home-") as home:
            instance = dg.DagsterInstance.local_temp(home)
            result = dg.execute_job(
                dg.reconstructable(evaluation_job),
                instance,
                run_config={"execution": {"config": executor}},
            )
            if not result.success:
                raise RuntimeError(f"the {mode} run failed")
    wall = time.perf_counter() - started
    promoted = json.loads((output / VERDICT_FILE).read_text())["promoted"]
    return {"wall": wall, "training": training_seconds(output), "promoted": promoted}


# --- the bench ------------------------------------------------------------------------------------


def sample_market():
    from ploutos_core.data import load_ohlcv
    from ploutos_core.features import compute_features_many
    from ploutos_core.market import build_market

    ohlcv = load_ohlcv(SAMPLE_CSV)
    return build_market(compute_features_many(ohlcv), ohlcv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5, help="walk-forward folds")
    parser.add_argument("--seeds", type=int, default=5, help="the evaluation config's first K")
    parser.add_argument("--timesteps", type=int, default=4096, help="PPO timesteps per training")
    parser.add_argument("--max-concurrent", type=int, default=2, help="multiprocess executor")
    parser.add_argument("--repeat", type=int, default=1, help="runs of every mode")
    parser.add_argument(
        "--modes", default=",".join(MODES), help=f"comma-separated, of {', '.join(MODES)}"
    )
    parser.add_argument(
        "--step-threads",
        type=int,
        help="torch threads of each multiprocess step (OMP_NUM_THREADS); default: CPUs divided "
        "by --max-concurrent; 0: torch's default (every core in every step)",
    )
    parser.add_argument("--mode", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.mode:
        print(
            json.dumps(
                run_mode(args.mode, json.loads(os.environ[SETTINGS_ENV]), args.max_concurrent)
            )
        )
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if set(modes) - set(MODES):
        parser.error(f"unknown modes {sorted(set(modes) - set(MODES))}; choose from {MODES}")
    cpus = os.cpu_count() or 1
    step_threads = (
        max(1, cpus // args.max_concurrent) if args.step_threads is None else args.step_threads
    )
    print(
        f"bench_evaluate: {args.folds} folds x {args.seeds} seeds, {args.timesteps:,} timesteps "
        f"per training, sample data; {cpus} CPUs, load average "
        f"{os.getloadavg()[0]:.2f}; multiprocess max_concurrent {args.max_concurrent}, "
        f"{step_threads or 'default'} torch threads per step"
    )
    print(
        "command: "
        + shlex.join([sys.executable, "benchmarks/bench_evaluate.py", *(argv or sys.argv[1:])])
    )
    with tempfile.TemporaryDirectory(prefix="bench-evaluate-") as tmp:
        market_path = Path(tmp) / "market.pkl"
        market_path.write_bytes(pickle.dumps(sample_market()))
        print(
            f"{'run':>3} {'mode':<13} {'wall s':>8} {'sum of trainings s':>19} {'rest s':>8} "
            f"{'vs first':>8} {'promoted':>9}"
        )
        for run in range(1, args.repeat + 1):
            first_wall = None
            for mode in modes:
                settings = {
                    "market": str(market_path),
                    "output": str(Path(tmp) / f"run{run}-{mode}"),
                    "folds": args.folds,
                    "seeds": args.seeds,
                    "timesteps": args.timesteps,
                }
                env = {**os.environ, SETTINGS_ENV: json.dumps(settings)}
                if mode == "multiprocess" and step_threads:
                    env["OMP_NUM_THREADS"] = str(step_threads)
                command = [sys.executable, __file__, "--mode", mode]
                command += ["--max-concurrent", str(args.max_concurrent)]
                out = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
                row = json.loads(out.stdout.strip().splitlines()[-1])
                first_wall = first_wall or row["wall"]
                print(
                    f"{run:>3} {mode:<13} {row['wall']:>8.1f} {row['training']:>19.1f} "
                    f"{row['wall'] - row['training']:>8.1f} {row['wall'] / first_wall:>7.2f}x "
                    f"{'yes' if row['promoted'] else 'no':>9}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
