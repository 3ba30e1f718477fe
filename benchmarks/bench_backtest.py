"""Benchmark of the backtest (issue 6, "Speed"): 500 tickers, a two-year (504-bar) test period.

Untimed setup: a synthetic market (``make_market``) with random values for the 85 features
(the backtest's cost does not depend on their values), then a PPO model trained for a few
thousand timesteps on its training period with the default policy of ``config/training.yaml``
(ticker encoder [16], ``net_arch`` [256, 256]).
Timed: ``run_backtest`` end to end (load the model, statistics and manifest; simulate the
strategy and the benchmarks; metrics; the equity figure, its thumbnail and the ``top_k`` trade
figures; writing the files), with its phases, against a 10 s target on a 2-core machine. The
one-off import of torch and Stable-Baselines3 is printed separately. Also timed: the paper
ledger's replay over the same test period (``run_paper`` from its first bar, the last session's
record and the next orders), what every ``paper_ledger`` partition and ``signals`` run does.

Usage::

    python benchmarks/bench_backtest.py [--tickers 500] [--test-bars 504] [--timesteps 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_S = 10.0
EMBARGO = 10
TRAIN_BARS = 260
SEED = 17


def synthetic_market(n_tickers: int, n_days: int):
    from ploutos_core.data.sample import make_market
    from ploutos_core.features import FEATURE_NAMES
    from ploutos_core.market import build_market

    ohlcv = make_market(n_tickers, n_days, seed=SEED)
    rng = np.random.default_rng(SEED)
    features = {}
    for ticker, rows in ohlcv.groupby("ticker", sort=True, observed=True):
        dates = pd.DatetimeIndex(rows["date"], name="date")
        values = rng.standard_normal((len(dates), len(FEATURE_NAMES))).astype(np.float32)
        features[str(ticker)] = pd.DataFrame(values, index=dates, columns=list(FEATURE_NAMES))
    return build_market(features, ohlcv)


def paper_replay(model_path: Path, market, start: str) -> tuple[float, int]:
    """Seconds to replay the paper ledger from ``start`` (the test period's first bar) to the
    data's end, book its last session and decide the next orders; and the sessions replayed."""
    from ploutos_core.artifacts import load_trained_model
    from ploutos_core.config import PaperConfig
    from ploutos_core.signals import decide_orders, run_paper

    clock = time.perf_counter()
    trained = load_trained_model(model_path)
    ledger = run_paper(trained, market, start, PaperConfig())
    ledger.session_record(ledger.sessions[-1])
    decide_orders(trained, ledger)
    return time.perf_counter() - clock, len(ledger.sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--test-bars", type=int, default=504)
    parser.add_argument("--timesteps", type=int, default=2048)
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()

    clock = time.perf_counter()
    import stable_baselines3  # noqa: F401  (one-off import cost, reported separately)
    import torch

    from ploutos_core.backtest import run_backtest
    from ploutos_core.config import BacktestConfig, TrainingConfig
    from ploutos_core.training import train

    import_s = time.perf_counter() - clock

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads")
    n_days = TRAIN_BARS + EMBARGO + args.test_bars
    clock = time.perf_counter()
    market = synthetic_market(args.tickers, n_days)
    train_end = str(market.dates[-(args.test_bars + EMBARGO) - 1])[:10]
    print(f"setup (untimed): market {market.N} tickers x {market.T} bars x {market.F} features "
          f"({market.nbytes / 1e9:.2f} GB) in {time.perf_counter() - clock:.1f} s")

    config = TrainingConfig.model_validate(
        {
            "seed": SEED,
            "total_timesteps": args.timesteps,
            "device": "cpu",
            "n_envs": 8,
            "n_steps": 128,
            "batch_size": 256,
            "n_epochs": 1,
            "checkpoint_freq": 10 * args.timesteps,
            "split": {"train_end": train_end, "embargo_days": EMBARGO},
        }
    )
    with tempfile.TemporaryDirectory(prefix="bench_backtest_") as tmp:
        clock = time.perf_counter()
        result = train(config, market, Path(tmp) / "model")
        print(f"setup (untimed): trained {result.timesteps} timesteps, ticker_encoder "
              f"{config.ticker_encoder}, net_arch {config.net_arch}, in "
              f"{time.perf_counter() - clock:.1f} s")

        clock = time.perf_counter()
        report = run_backtest(
            result.model_path, market, BacktestConfig(top_k=args.top_k), Path(tmp) / "bt"
        )
        total = time.perf_counter() - clock
        paper_s, sessions = paper_replay(result.model_path, market, report.test_start)

    strategy = report.metrics["strategy"]
    print(f"\nbacktest {report.test_start} to {report.test_end}: {report.n_bars} bars x "
          f"{market.N} tickers, {int(strategy['n_trades'])} strategy fills, "
          f"{len(report.trade_plots)} trade plots")
    print(f"  imports (one-off per process)  {import_s:6.2f} s")
    for phase, seconds in report.timings.items():
        print(f"  {phase:<31}{seconds:6.2f} s")
    print(f"  {'total run_backtest':<31}{total:6.2f} s   (target <= {TARGET_S:.0f} s: "
          f"{'met' if total <= TARGET_S else 'MISSED'})")
    simulate_s = report.timings["simulate"]
    print(f"  simulate: {report.n_bars / simulate_s:,.0f} bars/s "
          f"({1e3 * simulate_s / report.n_bars:.2f} ms per bar incl. the policy)")
    print(f"  paper: booking the last of {sessions} sessions and the next orders (the replay "
          f"the paper_ledger and signals assets run) {paper_s:6.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"  peak RSS (whole process, incl. training): {peak:.2f} GB")
    print()
    print(report.table)


if __name__ == "__main__":
    main()
