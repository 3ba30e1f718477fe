"""Benchmark of the feature computation (issue 3, "Speed").

Builds a synthetic market (default 500 tickers x 2,520 days) and prints, in one run:

(a) ``compute_features_many`` over all tickers with the parallelism the ``features`` asset uses,
    warm (numba cache present) and cold (a fresh, empty ``NUMBA_CACHE_DIR`` in a subprocess),
    plus ``compute_features`` per ticker on one core;
(b) a naive reference: the same indicator set computed one ticker at a time with plain pandas-ta
    calls (no shared calls, pandas-ta's own aroon/adx/uo/cci/bop, no parallelism), and the ratio;
(c) the Dagster single-run backfill of all partitions end to end (the ``refresh_features`` job
    over the whole partition range on a temporary instance, Parquet writes and the blocking
    check included), with its ratio to (a); and Dagster's own floor for the same run shape: an
    asset on the same partitions that computes and stores nothing but the same per-partition
    metadata, with a blocking check that reads nothing;
(d) peak memory;
and the ten indicator calls that cost the most per ticker.

Usage::

    NUMBA_CACHE_DIR=storage/numba_cache python benchmarks/bench_features.py [--tickers 500]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import inspect
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pandas_ta as ta
import psutil

from ploutos_core.data.sample import make_market
from ploutos_core.features import (
    FEATURE_NAMES,
    REGISTRY,
    WARMUP_BARS,
    compute_features,
    compute_features_many,
)
from ploutos_core.features.compute import (
    PRICE_COLUMNS,
    _call,
    _resolve,
    _transform,
    as_columns,
)
from ploutos_core.features.memo import sharing
from ploutos_pipeline.partitions import ticker_partitions

SEED = 11
TARGET_MANY_S = 10.0
TARGET_PER_TICKER_MS = 35.0
TARGET_MEMORY_GB = 4.0
TARGET_BACKFILL_RATIO = 1.3

# What a plain pandas-ta pipeline would call where we use a faster or fixed equivalent.
NAIVE_FUNCTIONS = {
    "custom.aroon": ta.aroon,
    "custom.adx": ta.adx,
    "custom.macd": ta.macd,
    "custom.stochrsi": ta.stochrsi,
    "custom.kc": ta.kc,
    "custom.atr": ta.atr,
    "custom.uo": ta.uo,
    "custom.cci": ta.cci,
    "custom.body_ratio": ta.bop,
}


class ProcessTree:
    """Samples this process and its descendants every 0.1 s: peak summed RSS, and CPU seconds
    used while the block ran (what the run would take on free cores, whatever else is running)."""

    def __init__(self) -> None:
        self.peak_rss = 0
        self._cpu: dict[int, float] = {}
        self._start_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _cpu_of(proc: psutil.Process) -> float:
        times = proc.cpu_times()
        return times.user + times.system

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                    self._cpu[proc.pid] = self._cpu_of(proc)
                except psutil.Error:
                    continue
            self.peak_rss = max(self.peak_rss, total)
            self._stop.wait(0.1)

    @property
    def cpu_seconds(self) -> float:
        return sum(self._cpu.values()) - self._start_cpu

    def __enter__(self) -> ProcessTree:
        self._start_cpu = self._cpu_of(psutil.Process())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._cpu[os.getpid()] = self._cpu_of(psutil.Process())


def _load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def build_market(n_tickers: int, n_days: int) -> pd.DataFrame:
    return make_market(n_tickers, n_days, seed=SEED)


def time_many(market: pd.DataFrame, workers: int) -> tuple[float, dict[str, pd.DataFrame]]:
    start = time.perf_counter()
    result = compute_features_many(market, workers=workers)
    return time.perf_counter() - start, result


def cold_child(args: argparse.Namespace) -> None:
    """Runs in a subprocess with an empty NUMBA_CACHE_DIR: print the cold timing as JSON."""
    market = build_market(args.tickers, args.days)
    seconds, _ = time_many(market, args.workers)
    print(json.dumps({"seconds": seconds}))


def time_cold(args: argparse.Namespace) -> float:
    with tempfile.TemporaryDirectory(prefix="numba-cold-") as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        command = [
            sys.executable,
            __file__,
            "--cold-child",
            "--tickers",
            str(args.tickers),
            "--days",
            str(args.days),
            "--workers",
            str(args.workers),
        ]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def per_ticker_frames(market: pd.DataFrame, n: int) -> list[pd.DataFrame]:
    groups = market.groupby("ticker", sort=False)
    return [rows.reset_index(drop=True) for _, rows in list(groups)[:n]]


def time_one_core(frames: list[pd.DataFrame]) -> tuple[float, float]:
    """Wall and CPU ms per ticker of compute_features in this process."""
    compute_features(frames[0])
    wall, cpu = time.perf_counter(), time.process_time()
    for frame in frames:
        compute_features(frame)
    scale = 1000 / len(frames)
    return (time.perf_counter() - wall) * scale, (time.process_time() - cpu) * scale


def naive_features(rows: pd.DataFrame) -> pd.DataFrame:
    """Every feature by its own plain pandas-ta call on the ticker's frame: nothing shared."""
    bars = {c: rows[c] for c in PRICE_COLUMNS}
    columns = {}
    for spec in REGISTRY:
        fn, required, _ = _resolve(spec.func)
        fn = NAIVE_FUNCTIONS.get(spec.func, fn)
        kwargs = dict(spec.params)
        if "talib" in inspect.signature(fn).parameters:
            kwargs["talib"] = False
        result = fn(*(bars[c] for c in spec.inputs or required), **kwargs)
        columns[spec.name] = _transform(spec, as_columns(result), bars["close"].to_numpy())
    frame = pd.DataFrame(columns, index=rows["date"].to_numpy())
    return frame.iloc[WARMUP_BARS:].astype(np.float32)


def time_naive(market: pd.DataFrame, n: int) -> float:
    start = time.perf_counter()
    for i, (_, rows) in enumerate(market.groupby("ticker", sort=False)):
        if i == n:
            break
        naive_features(rows.set_index("date", drop=False))
    return time.perf_counter() - start


def indicator_costs(frames: list[pd.DataFrame]) -> list[tuple[float, str]]:
    """Mean CPU ms per ticker of each registry call, as the generic loop makes them (a call
    shared with an earlier row costs nothing; shared sub-calls count for the first caller).

    This thread's CPU time only, after an untimed pass and with the garbage collector paused,
    so that no one-time load and no other thread's work lands on whichever call is running.
    """
    costs: dict[str, float] = defaultdict(float)
    gc.collect()
    gc.disable()
    try:
        for i, frame in enumerate([frames[0], *frames]):
            bars = {c: pd.Series(frame[c].to_numpy(dtype=np.float64)) for c in PRICE_COLUMNS}
            with sharing():
                for spec in REGISTRY:
                    start = time.thread_time()
                    _call(spec, bars)
                    if i:
                        costs[spec.call] += time.thread_time() - start
    finally:
        gc.enable()
    return sorted(((t / len(frames) * 1000, call) for call, t in costs.items()), reverse=True)


def _time_single_run(
    defs: dg.Definitions, job: str, instance: dg.DagsterInstance, tickers: list[str]
) -> float:
    """Seconds of one run of ``job`` over the whole ``tickers`` partition range."""
    start = time.perf_counter()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        tags={
            "dagster/asset_partition_range_start": tickers[0],
            "dagster/asset_partition_range_end": tickers[-1],
        },
    )
    elapsed = time.perf_counter() - start
    assert result.success
    return elapsed


def time_dagster_backfill(market: pd.DataFrame) -> float:
    """Seconds of the ``refresh_features`` job over every partition, as one single run."""
    from ploutos_core.storage import write_parquet_atomic
    from ploutos_pipeline.definitions import build_definitions

    tickers = sorted(market["ticker"].unique())
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test() as instance:
        defs = build_definitions(storage_root=tmp)
        write_parquet_atomic(Path(tmp) / "raw_ohlcv" / "raw_ohlcv.parquet", market)
        instance.add_dynamic_partitions(ticker_partitions.name, tickers)
        elapsed = _time_single_run(defs, "refresh_features", instance, tickers)
        assert len(list((Path(tmp) / "features").glob("*.parquet"))) == len(tickers)
    return elapsed


def time_dagster_floor(tickers: list[str], instance: dg.DagsterInstance | None = None) -> float:
    """Seconds of the same run shape with nothing computed, stored or read: what Dagster itself
    costs for a single run over these partitions (planned and materialization events, the
    per-partition metadata calls, a blocking check step), on ``instance`` (default: a temporary
    SQLite one). The tickers are added to the instance's ``ticker`` partitions."""

    @dg.asset(
        name="features",
        partitions_def=ticker_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    # `context` unannotated: Dagster refuses the string annotation `from __future__` makes.
    def empty_features(context) -> dg.MaterializeResult:
        for key in context.partition_keys:
            context.add_asset_metadata(
                {"rows": 0, "first_date": "", "last_date": "", "path": dg.MetadataValue.path(key)},
                partition_key=key,
            )
        return dg.MaterializeResult()

    @dg.asset_check(asset=empty_features, blocking=True, partitions_def=ticker_partitions)
    def empty_check() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=True)

    defs = dg.Definitions(
        assets=[empty_features],
        asset_checks=[empty_check],
        jobs=[dg.define_asset_job("floor", selection=[empty_features])],
    )
    with contextlib.ExitStack() as stack:
        if instance is None:
            instance = stack.enter_context(dg.instance_for_test())
        instance.add_dynamic_partitions(ticker_partitions.name, tickers)
        return _time_single_run(defs, "floor", instance, tickers)


def main() -> None:
    parser = argparse.ArgumentParser(description="Benchmark the 85-feature computation.")
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--days", type=int, default=2520)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--naive-tickers",
        type=int,
        default=100,
        help="tickers timed for the naive reference (extrapolated to all)",
    )
    parser.add_argument("--one-core-tickers", type=int, default=50)
    parser.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        cold_child(args)
        return

    print(
        f"bench_features: {args.tickers} tickers x {args.days} days, {args.workers} workers, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, pandas {pd.__version__}, "
        f"pandas-ta {ta.version}, {len(FEATURE_NAMES)} features, warm-up {WARMUP_BARS} bars, "
        f"NUMBA_CACHE_DIR={os.environ.get('NUMBA_CACHE_DIR', '(unset)')}, "
        f"load average {_load()}"
    )
    start = time.perf_counter()
    market = build_market(args.tickers, args.days)
    print(f"market: {len(market):,} rows built in {time.perf_counter() - start:.1f} s")
    frames = per_ticker_frames(market, max(args.one_core_tickers, 20))
    compute_features(frames[0])  # fills the numba cache if it is empty: the warm run finds it

    with ProcessTree() as tree:
        warm_s, result = time_many(market, args.workers)
    rows = sum(len(frame) for frame in result.values())
    print(
        f"\n(a) compute_features_many, warm numba cache: {warm_s:6.2f} s "
        f"({rows:,} feature rows; target <= {TARGET_MANY_S:.0f} s)"
    )
    print(
        f"(a)   CPU used by the process tree: {tree.cpu_seconds:.2f} s = "
        f"{tree.cpu_seconds / args.workers:.2f} s per worker core if the cores were free"
    )
    del result
    cold_s = time_cold(args)
    print(
        f"(a) compute_features_many, cold numba cache: {cold_s:6.2f} s "
        f"(fresh NUMBA_CACHE_DIR in a subprocess; compile {cold_s - warm_s:+.2f} s)"
    )
    wall_ms, cpu_ms = time_one_core(frames[: args.one_core_tickers])
    print(
        f"(a) compute_features on one core: {wall_ms:6.1f} ms wall, {cpu_ms:.1f} ms CPU per "
        f"{args.days}-bar ticker (mean of {args.one_core_tickers}; "
        f"target <= {TARGET_PER_TICKER_MS:.0f} ms)"
    )

    n_naive = min(args.naive_tickers, args.tickers)
    naive_s = time_naive(market, n_naive)
    naive_all = naive_s / n_naive * args.tickers
    print(
        f"\n(b) naive reference (plain pandas-ta per ticker, no sharing, 1 process): "
        f"{naive_s:6.2f} s for {n_naive} tickers = {naive_s / n_naive * 1000:.0f} ms per ticker"
        f" -> {naive_all:.1f} s for {args.tickers}"
        f"{' (extrapolated)' if n_naive < args.tickers else ''}"
    )
    print(
        f"(b) speed-up over the naive reference: {naive_all / warm_s:.1f}x for (a) warm, "
        f"{naive_s / n_naive * 1000 / wall_ms:.1f}x per ticker on one core"
    )

    backfill_s = time_dagster_backfill(market)
    print(
        f"\n(c) Dagster single-run backfill of {args.tickers} partitions: {backfill_s:6.2f} s "
        f"= {backfill_s / warm_s:.2f}x (a) (target <= {TARGET_BACKFILL_RATIO} x (a))"
    )
    floor_s = time_dagster_floor(sorted(market["ticker"].unique()))
    print(
        f"(c) Dagster's floor, the same run computing and storing nothing: {floor_s:6.2f} s; "
        f"(c) minus floor = {backfill_s - floor_s:.2f} s "
        f"= {(backfill_s - floor_s) / warm_s:.2f}x (a)"
    )

    kb = 1024
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb
    print(
        f"\n(d) peak memory: this process {self_peak:,.0f} MiB, largest waited-for child "
        f"(the cold run) {child_peak:,.0f} MiB (resource.getrusage); process tree during the "
        f"warm run {tree.peak_rss / kb**2:,.0f} MiB summed RSS, sampled "
        f"(target <= {TARGET_MEMORY_GB:.0f} GB)"
    )

    costs = indicator_costs(frames[:20])
    total = sum(ms for ms, _ in costs)
    print(
        f"\nslowest indicator calls (CPU ms per {args.days}-bar ticker, mean of 20; "
        f"all {len(costs)} distinct calls: {total:.1f} ms):"
    )
    for ms, call in costs[:10]:
        print(f"  {ms:6.2f} ms  {100 * ms / total:4.1f}%  {call}")
    print(f"\nload average at the end: {_load()} (other processes share these cores)")


if __name__ == "__main__":
    main()
