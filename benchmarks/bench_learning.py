"""Does the agent learn? The default training config on a market with a planted pattern, judged
out of sample against buy-and-hold and the rule that knows the pattern, and on a control market
without the pattern.

    .venv/bin/python benchmarks/bench_learning.py                     # 3 seeds x 300k timesteps
    .venv/bin/python benchmarks/bench_learning.py --timesteps 20000 --seeds 1   # a smoke run
    .venv/bin/python benchmarks/bench_learning.py --policy shared --markets planted
    .venv/bin/python benchmarks/bench_learning.py --policy shared --markets planted --unseen
    .venv/bin/python benchmarks/bench_learning.py --policy shared --pooling attention \
        --markets planted

Markets: ``make_planted_market(tickers, days, seed=s, strength=...)`` (per-ticker drift regimes
that a trailing momentum reveals, see its docstring) and ``make_control_market(tickers, days,
seed=s)`` (the same generator, noise and volatility, without the regimes), with the 85 real
features. Per seed ``s`` (0, 1, ...) and market: PPO with ``config/training.yaml`` (seed ``s``,
``--timesteps``) on the training period, then on the test period of its split the agent's
backtest (deterministic actions), the equal-weight buy-and-hold and the momentum rule
(``momentum_rule``, ``--window`` bars), all through the same environment and costs. Printed: the
out-of-sample Sharpe and total return of each, per seed and the median over the seeds.

``--config`` trains another config, e.g. one with ``env: {observe_reward_state: false}`` to see
what the reward-state input changes; ``--policy`` replaces the config's policy and ``--pooling``
the shared policy's pooled summary (to compare them at the same budget). ``--unseen`` measures
generalization to tickers never seen in training (``policy: shared`` only): each seed's market is
split into its first and second half of tickers (sorted), the agent trains on the first and is
backtested on the second, beside buy-and-hold and the rule of that second half.

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


def build(kind: str, tickers: int, days: int, seed: int, strength: float, unseen: bool):
    """The planted or the control market of ``seed`` with the registry's features: one market, or
    with ``unseen`` the markets of its first and of its second half of tickers."""
    from ploutos_core.data.sample import make_control_market, make_planted_market
    from ploutos_core.features import compute_features_many
    from ploutos_core.market import build_market

    if kind == "planted":
        ohlcv = make_planted_market(tickers, days, seed=seed, strength=strength)
    else:
        ohlcv = make_control_market(tickers, days, seed=seed)
    features = compute_features_many(ohlcv)
    if not unseen:
        market = build_market(features, ohlcv)
        return market, market
    names = sorted(features)
    halves = names[: len(names) // 2], names[len(names) // 2 :]
    return tuple(
        build_market({t: features[t] for t in half}, ohlcv[ohlcv["ticker"].isin(half)])
        for half in halves
    )


def evaluate(
    train_market,
    test_market,
    seed: int,
    args: argparse.Namespace,
) -> dict[str, dict]:
    """Train ``args.config`` (with ``args.policy`` and ``args.pooling``) on ``train_market``; the
    test-period metrics of each side on ``test_market`` (the same market, or other tickers over
    the same dates)."""
    from ploutos_core.backtest import momentum_rule, run_backtest, simulate
    from ploutos_core.config import BacktestConfig, TrainingConfig, load_config
    from ploutos_core.training import train

    overrides = {"seed": seed, "total_timesteps": args.timesteps, "device": args.device}
    if args.policy:
        overrides["policy"] = args.policy
    if args.pooling:
        overrides["pooling"] = args.pooling
    config = load_config(TrainingConfig, args.config, {**overrides, "checkpoint_freq": 10**12})
    quiet = logging.getLogger("bench_learning")
    quiet.setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as out:
        result = train(config, train_market, Path(out) / "model", logger=quiet, progress_every=None)
        report = run_backtest(
            result.model_path, test_market, BacktestConfig(top_k=0), Path(out) / "bt"
        )
    test = test_market.period(report.test_start, report.test_end)
    rule = simulate(test, config.env, momentum_rule(test_market, report.test_start, args.window))
    return {
        "agent": report.metrics["strategy"],
        "buy_and_hold": report.metrics["buy_and_hold"],
        "rule": rule.metrics(),
        "test": {"start": report.test_start, "end": report.test_end, "bars": test.T},
        "policy": config.policy if config.policy != "shared" else f"shared/{config.pooling}",
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
    from ploutos_core.config import default_config_path
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
    parser.add_argument(
        "--config", default=str(default_config_path("training")), help="training config YAML"
    )
    parser.add_argument("--policy", help="encoder | flat | shared (default: the config's)")
    parser.add_argument("--pooling", help="max | attention: policy shared's pooled summary")
    parser.add_argument(
        "--markets", default="planted,control", help="comma-separated: planted, control"
    )
    parser.add_argument(
        "--unseen",
        action="store_true",
        help="train on the first half of the tickers, backtest on the other half (shared policy)",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)

    given = sys.argv[1:] if argv is None else argv
    print("command: " + shlex.join([sys.executable, "benchmarks/bench_learning.py", *given]))
    print(
        f"settings: {os.path.relpath(args.config, ROOT)}, {args.timesteps:,} timesteps, "
        f"seeds 0..{args.seeds - 1}, "
        f"{args.tickers} tickers x {args.days} days, planted strength {args.strength} "
        f"(mean regime {PLANTED_MEAN_DAYS:g} bars), rule window {args.window}, device "
        f"{args.device}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    header = "   ".join(f"{s:>16}" for s in SIDES)
    where = "the other half of the tickers (never seen in training)" if args.unseen else ""
    for kind in args.markets.split(","):
        print(f"\n{kind} market, test period{', ' + where if where else ''}: Sharpe, total return")
        print(f"{'':<16}{header}")
        runs = []
        for seed in range(args.seeds):
            markets = build(kind, args.tickers, args.days, seed, args.strength, args.unseen)
            runs.append(evaluate(*markets, seed, args))
            test = runs[-1]["test"]
            print(
                row(f"seed {seed}", runs[-1]) + f"   ({test['start']}..{test['end']}, "
                f"{test['bars']} bars, policy {runs[-1]['policy']})",
                flush=True,
            )
        print(row("median", median_of(runs)))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
