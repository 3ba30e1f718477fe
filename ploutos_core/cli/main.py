"""The ``ploutos`` command line: ``ploutos train``, ``backtest``, ``evaluate`` and ``signal``.

Each subcommand runs the same core code as the Dagster assets: it reads the CSV with
``ploutos_core.data``, computes the features with ``ploutos_core.features``, builds the market with
``ploutos_core.market`` and trains (``ploutos_core.training``) or backtests
(``ploutos_core.backtest``). Heavy imports (torch, Stable-Baselines3, pandas-ta) happen inside the
commands so that ``ploutos --help`` is fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence

from ploutos_core.cli.backtest import add_backtest_arguments, run_backtest_command
from ploutos_core.cli.evaluate import add_evaluate_arguments, run_evaluate_command
from ploutos_core.cli.signal import add_signal_arguments, run_signal_command
from ploutos_core.cli.train import add_train_arguments, run_train_command
from ploutos_core.errors import PloutosError

EXIT_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    """The ``ploutos`` parser with its subcommands."""
    parser = argparse.ArgumentParser(
        prog="ploutos", description="Train and backtest reinforcement-learning trading agents."
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_parser = commands.add_parser("train", help="train a PPO agent")
    add_train_arguments(train_parser)
    train_parser.set_defaults(handler=run_train_command)
    backtest_parser = commands.add_parser("backtest", help="backtest a trained agent")
    add_backtest_arguments(backtest_parser)
    backtest_parser.set_defaults(handler=run_backtest_command)
    evaluate_parser = commands.add_parser(
        "evaluate", help="judge a training config over folds x seeds against baselines"
    )
    add_evaluate_arguments(evaluate_parser)
    evaluate_parser.set_defaults(handler=run_evaluate_command)
    signal_parser = commands.add_parser(
        "signal", help="the promoted model's orders for the next session, and its paper ledger"
    )
    add_signal_arguments(signal_parser)
    signal_parser.set_defaults(handler=run_signal_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ploutos`` console script; returns the exit status.

    0 on success, 1 for an error the user can fix (the message says how), 128 + the signal
    number when interrupted (130 for Ctrl+C, 143 for SIGTERM) after the interrupted model was
    saved.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except PloutosError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum
