"""Does the agent learn? The default training config on a market with a planted pattern, judged
out of sample against buy-and-hold and the rule that knows the pattern, and on a control market
without the pattern.

    .venv/bin/python benchmarks/bench_learning.py                     # 3 seeds x 300k timesteps
    .venv/bin/python benchmarks/bench_learning.py --timesteps 20000 --seeds 1   # a smoke run

Markets: ``make_planted_market(tickers, days, seed=s, strength=...)`` (per-ticker drift regimes
that a trailing momentum reveals, see its docstring) and ``make_control_market(tickers, days,
seed=s)`` (the same generator, noise and volatility, without the regimes), with the 85 real
features. Per seed ``s`` (0, 1, ...) and market: PPO with ``config/training.yaml`` (seed ``s``,
``--timesteps``) on the training period, then on the test period of its split the agent's
backtest (deterministic actions), the equal-weight buy-and-hold and the momentum rule
(``momentum_rule``, ``--window`` bars), all through the same environment and costs. Printed: the
out-of-sample Sharpe and total return of each, per seed and the median over the seeds.

An agent that learned the pattern beats buy-and-hold on the planted market, approaches the rule
there, and has no such edge on the control market.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("agent", "buy_and_hold", "rule")


def build(kind: str, tickers: int, days: int, seed: int, strength: float):
    """The planted or the control market of ``seed`` with the registry's features."""
    from ploutos_core.data.sample import make_control_market, make_planted_market
    from ploutos_core.features import compute_features_many
    from ploutos_core.market import build_market

    if kind == "planted":
        ohlcv = make_planted_market(tickers, days, seed=seed, strength=strength)
    else:
        ohlcv = make_control_market(tickers, days, seed=seed)
    return build_market(compute_features_many(ohlcv), ohlcv)


def evaluate(market, seed: int, timesteps: int, window: int, device: str) -> dict[str, dict]:
    """Train the default config on ``market``; the test-period metrics of each side."""
    from ploutos_core.backtest import momentum_rule, run_backtest, simulate
    from ploutos_core.config import BacktestConfig, TrainingConfig, default_config_path, load_config
    from ploutos_core.training import train

    config = load_config(
        TrainingConfig,
        default_config_path("training"),
        {"seed": seed, "total_timesteps": timesteps, "device": device, "checkpoint_freq": 10**12},
    )
    quiet = logging.getLogger("bench_learning")
    quiet.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as out:
        result = train(config, market, Path(out) / "model", logger=quiet, progress_every=None)
        report = run_backtest(result.model_path, market, BacktestConfig(top_k=0), Path(out) / "bt")
    test = market.period(report.test_start, report.test_end)
    rule = simulate(test, config.env, momentum_rule(market, report.test_start, window))
    return {
        "agent": report.metrics["strategy"],
        "buy_and_hold": report.metrics["buy_and_hold"],
        "rule": rule.metrics(),
        "test": {"start": report.test_start, "end": report.test_end, "bars": test.T},
    }


def row(label: str, results: dict[str, dict]) -> str:
    """One line: Sharpe and total return of every side."""
    cells = [
        f"{results[s]['sharpe']:>7.2f} {100 * results[s]['total_return']:>7.1f}%" for s in SIDES
    ]
    return f"{label:<16}" + "   ".join(cells)


def median_of(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """Per side, the median Sharpe and total return over ``runs``."""
    return {
        side: {
            key: statistics.median(run[side][key] for run in runs)
            for key in ("sharpe", "total_return")
        }
        for side in SIDES
    }


def main(argv: list[str] | None = None) -> int:
    from ploutos_core.backtest.rules import MOMENTUM_WINDOW
    from ploutos_core.data.sample import PLANTED_MEAN_DAYS, PLANTED_STRENGTH

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timesteps", type=int, default=300_000, help="PPO timesteps per run")
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0 .. N-1 (market and PPO)")
    parser.add_argument("--tickers", type=int, default=10)
    parser.add_argument("--days", type=int, default=2520, help="business days of each market")
    parser.add_argument(
        "--strength",
        type=float,
        default=PLANTED_STRENGTH,
        help="planted drift, a fraction of the daily volatility",
    )
    parser.add_argument("--window", type=int, default=MOMENTUM_WINDOW, help="rule's look-back")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    given = sys.argv[1:] if argv is None else argv
    print("command: " + shlex.join([sys.executable, "benchmarks/bench_learning.py", *given]))
    print(
        f"settings: config/training.yaml, {args.timesteps:,} timesteps, seeds 0..{args.seeds - 1}, "
        f"{args.tickers} tickers x {args.days} days, planted strength {args.strength} "
        f"(mean regime {PLANTED_MEAN_DAYS:g} bars), rule window {args.window}, device "
        f"{args.device}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    header = "   ".join(f"{s:>16}" for s in SIDES)
    for kind in ("planted", "control"):
        print(f"\n{kind} market, test period: Sharpe, total return\n{'':<16}{header}")
        runs = []
        for seed in range(args.seeds):
            market = build(kind, args.tickers, args.days, seed, args.strength)
            runs.append(evaluate(market, seed, args.timesteps, args.window, args.device))
            test = runs[-1]["test"]
            print(
                row(f"seed {seed}", runs[-1]) + f"   ({test['start']}..{test['end']}, "
                f"{test['bars']} bars)",
                flush=True,
            )
        print(row("median", median_of(runs)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
