"""Environment speed and memory, in one run: the vectorized env against the guide's reference.

Measures, at 500 tickers x 85 features x 2520 bars (synthetic prices from ``make_market``, random
float32 features, random actions):

- the time to build the market arrays from 500 cached feature partitions (``load_market``);
- the memory of the shared arrays;
- env-steps per second (one env-step = one bar of one sub-environment) of ``PortfolioVecEnv``
  with 32 sub-envs, without and with ``VecNormalize``;
- the same for the reference environment (``tests/support/reference_env.py``: one gymnasium env
  per portfolio, Python loops over tickers) through ``DummyVecEnv`` and ``SubprocVecEnv``;
- the ratios and the peak RSS.

Usage::

    python benchmarks/bench_env.py [--tickers 500] [--days 2520] [--seconds 5] [--workers 2 4]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecNormalize

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ploutos_core.config import EnvConfig  # noqa: E402
from ploutos_core.data.sample import make_market
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.features import FEATURE_NAMES  # noqa: E402
from ploutos_core.market import MarketData, load_market
from ploutos_core.storage import write_parquet_atomic  # noqa: E402
from tests.support.reference_env import ReferencePortfolioEnv, ticker_series  # noqa: E402

GIB = 1024**3
ACTION_POOL = 64
ORIGINAL = {"steps_per_s": 4_900, "build_s": 33.0, "gb_per_worker": 2.4}
"""The original project's environment on this kind of machine at 500 tickers (from the issue)."""


def write_partitions(root: Path, n_tickers: int, n_days: int, seed: int = 0) -> tuple[Path, Path]:
    """The raw OHLCV Parquet and one feature Parquet per ticker (every OHLCV date, random)."""
    ohlcv = make_market(n_tickers, n_days, seed=seed)
    rng = np.random.default_rng(seed)
    features_dir = root / "features"
    for ticker, rows in ohlcv.groupby("ticker", sort=True):
        dates = pd.DatetimeIndex(rows["date"].to_numpy(), name="date")
        values = rng.standard_normal((len(dates), len(FEATURE_NAMES)), dtype=np.float32)
        frame = pd.DataFrame(values, index=dates, columns=list(FEATURE_NAMES))
        write_parquet_atomic(features_dir / f"{ticker}.parquet", frame)
    ohlcv_path = write_parquet_atomic(root / "raw_ohlcv.parquet", ohlcv)
    return features_dir, ohlcv_path


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU time of ``processes``."""
    return sum(sum(p.cpu_times()[:2]) for p in processes)


def steps_per_second(
    venv: VecEnv, n_tickers: int, seconds: float, seed: int = 0
) -> tuple[float, float]:
    """Env-steps per wall second and per CPU second (this process plus any SubprocVecEnv workers)
    of ``venv`` under uniformly random actions, drawn beforehand so that only the environment is
    timed. The CPU figure is the cost of the work whatever else the machine runs; the wall figure
    is what a user waits for."""
    rng = np.random.default_rng(seed)
    n_envs = venv.num_envs
    actions = rng.integers(0, 3, (ACTION_POOL, n_envs, n_tickers))
    processes = [psutil.Process()]
    processes += [psutil.Process(p.pid) for p in getattr(venv, "processes", [])]
    venv.reset()
    for step in range(3):
        venv.step(actions[step])
    steps = 0
    cpu = cpu_seconds(processes)
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        venv.step(actions[steps % ACTION_POOL])
        steps += 1
    cpu = cpu_seconds(processes) - cpu
    return steps * n_envs / elapsed, steps * n_envs / cpu


def reference_factory(
    series: list, dates: np.ndarray, config: EnvConfig, seed: int
) -> Callable[[], ReferencePortfolioEnv]:
    return lambda: ReferencePortfolioEnv(series, dates, config, seed=seed)


def peak_rss_gb() -> tuple[float, float]:
    """Peak RSS of this process and of its largest (finished) child, in GiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB
    return own, child


def run(args: argparse.Namespace) -> None:
    config = EnvConfig()
    print(
        f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / GIB:.1f} GiB RAM, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"market: {args.tickers} tickers x {len(FEATURE_NAMES)} features x {args.days} bars; "
        "random actions\n"
    )
    with tempfile.TemporaryDirectory(prefix="ploutos-bench-") as tmp:
        start = time.perf_counter()
        features_dir, ohlcv_path = write_partitions(Path(tmp), args.tickers, args.days)
        print(f"wrote {args.tickers} feature partitions in {time.perf_counter() - start:.1f} s")
        builds = []
        for _ in range(3):
            start, cpu = time.perf_counter(), time.process_time()
            market: MarketData = load_market(features_dir, ohlcv_path)
            builds.append((time.perf_counter() - start, time.process_time() - cpu))
    print(
        f"build arrays (load_market): {builds[0][0]:.2f} s first, "
        f"{min(b[0] for b in builds):.2f} s best of 3, CPU {min(b[1] for b in builds):.2f} s "
        f"(target <= 3 s; original {ORIGINAL['build_s']:.0f} s)"
    )
    print(
        f"shared arrays: {market.nbytes / GIB:.3f} GiB "
        f"(features {market.features.nbytes / GIB:.3f} GiB), once for all sub-envs; each "
        f"PortfolioVecEnv adds float64 open/close of {2 * market.open.size * 8 / GIB:.3f} GiB\n"
    )

    results: dict[str, tuple[float, float]] = {}
    venv = PortfolioVecEnv(market, config, args.n_envs, seed=0)
    results[f"PortfolioVecEnv x{args.n_envs}"] = steps_per_second(venv, market.N, args.seconds)
    normalized = VecNormalize(PortfolioVecEnv(market, config, args.n_envs, seed=0))
    results[f"PortfolioVecEnv x{args.n_envs} + VecNormalize"] = steps_per_second(
        normalized, market.N, args.seconds
    )
    del venv, normalized

    series = ticker_series(market)
    reference = DummyVecEnv(
        [reference_factory(series, market.dates, config, seed) for seed in range(args.ref_envs)]
    )
    results[f"reference DummyVecEnv x{args.ref_envs}"] = steps_per_second(
        reference, market.N, args.seconds
    )
    reference.close()
    worker_memory = {}
    for workers in args.workers:
        fns = [reference_factory(series, market.dates, config, seed) for seed in range(workers)]
        subproc = SubprocVecEnv(fns, start_method="fork")
        name = f"reference SubprocVecEnv x{workers} (fork)"
        results[name] = steps_per_second(subproc, market.N, args.seconds)
        infos = [psutil.Process(p.pid).memory_full_info() for p in subproc.processes]
        worker_memory[name] = (
            max(i.rss for i in infos) / GIB,
            max(i.uss for i in infos) / GIB,
        )
        subproc.close()

    ours = results[f"PortfolioVecEnv x{args.n_envs}"][0]
    references = [k for k in results if k.startswith("reference")]
    best_name = max(references, key=lambda k: results[k][0])
    best = results[best_name][0]
    print(f"{'environment':46s} {'env-steps/s':>12s} {'per CPU-s':>11s} {'vs best ref':>12s}")
    for name, (wall, per_cpu) in results.items():
        print(f"{name:46s} {wall:12,.0f} {per_cpu:11,.0f} {wall / best:11.1f}x")
    print(
        f"{'original project (issue)':46s} {ORIGINAL['steps_per_s']:12,.0f} {'':11s} "
        f"{ORIGINAL['steps_per_s'] / best:11.1f}x"
    )
    print(
        f"\nPortfolioVecEnv: {ours:,.0f} env-steps/s (target >= 40,000); "
        f"{ours / best:.1f}x the best reference, {best_name} (target >= 15x)"
    )
    for name, (rss, uss) in worker_memory.items():
        print(
            f"{name}: per worker RSS {rss:.2f} GiB, unique to the worker {uss:.2f} GiB "
            f"(original {ORIGINAL['gb_per_worker']} GB per worker)"
        )
    own, child = peak_rss_gb()
    print(
        f"peak RSS: this process {own:.2f} GiB, largest worker {child:.2f} GiB; "
        f"load average now {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--n-envs", type=int, default=32)
    parser.add_argument("--ref-envs", type=int, default=4, help="reference envs in DummyVecEnv")
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[2, 4],
        help="SubprocVecEnv worker counts to measure",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="measuring time per setup")
    run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
