"""The ``ploutos`` command line: ``ploutos train`` and ``ploutos backtest``.

``ploutos train`` runs the same core code as the Dagster assets: it reads the CSV with
``ploutos_core.data``, computes the features with ``ploutos_core.features``, builds the market
with ``ploutos_core.env`` and trains with ``ploutos_core.training``. Heavy imports (torch,
Stable-Baselines3, pandas-ta) happen inside the commands so that ``ploutos --help`` is fast.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ploutos_core.config import DataConfig, TrainingConfig, default_config_path, load_config
from ploutos_core.errors import PloutosError
from ploutos_core.paths import DEFAULT_DATA

if TYPE_CHECKING:
    from ploutos_core.env import MarketData

DEFAULT_OUTPUT = Path("models") / "ploutos_production"
EXIT_ERROR = 1
PROGRESS_EVERY = 0.05

log = logging.getLogger("ploutos")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` subcommand's options; defaults not given here come from the YAML config."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config_path("training"),
        help="training config YAML (default: config/training.yaml)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help=f"model directory (default: {DEFAULT_OUTPUT})",
    )
    parser.add_argument(
        "--device",
        help="auto | cpu | cuda | cuda:N (default: the config's device, auto)",
    )
    parser.add_argument(
        "--timesteps",
        type=int,
        help="total training timesteps (default: the config's total_timesteps)",
    )
    parser.add_argument("--seed", type=int, help="random seed (default: the config's seed)")
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="OHLCV CSV (default: the bundled data/sample_ohlcv.csv)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="continue from a checkpoint or interrupted_model.zip (its VecNormalize stats "
        "must be beside it)",
    )
    parser.add_argument(
        "--checkpoint-freq",
        type=int,
        help="timesteps between checkpoints (default: the config's checkpoint_freq)",
    )
    parser.add_argument(
        "--no-progress-bar",
        action="store_true",
        help="log a progress line every 5%% instead of drawing a progress bar",
    )


def market_from_csv(path: str | Path) -> MarketData:
    """Read a user's CSV, compute its features and build the market: what every subcommand needs.

    The same core functions as the Dagster assets, so the command line and the pipeline agree.
    """
    from ploutos_core.data import load_ohlcv
    from ploutos_core.env import build_market
    from ploutos_core.features import compute_features_many

    data_config = load_config(DataConfig, default_config_path("data"))
    log.info("reading %s", path)
    ohlcv = load_ohlcv(path, adjust=data_config.adjust_prices)
    log.info("computing features for %d tickers", ohlcv["ticker"].nunique())
    return build_market(compute_features_many(ohlcv), ohlcv)


def run_train_command(args: argparse.Namespace) -> int:
    """Load the data, compute features, build the market and train; 0 on success."""
    from ploutos_core.training import train

    overrides = {
        key: value
        for key, value in (
            ("total_timesteps", args.timesteps),
            ("seed", args.seed),
            ("device", args.device),
            ("checkpoint_freq", args.checkpoint_freq),
        )
        if value is not None
    }
    config = load_config(TrainingConfig, args.config, overrides)
    market = market_from_csv(args.data)
    result = train(
        config,
        market,
        args.output,
        resume=args.resume,
        progress_bar=not args.no_progress_bar,
        logger=log,
        progress_every=PROGRESS_EVERY if args.no_progress_bar else None,
    )
    print(f"model:       {result.model_path}")
    print(f"statistics:  {result.stats_path}")
    print(f"manifest:    {result.manifest_path}")
    print(
        f"trained {result.timesteps:,} timesteps in {result.wall_time_s:.1f} s "
        f"({result.steps_per_second:,.0f} timesteps/s) on {result.device}"
    )
    print(f"tensorboard --logdir {result.tensorboard_dir}")
    return 0


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
    try:
        from ploutos_core.backtest_cli import add_backtest_arguments, run_backtest_command
    except ModuleNotFoundError as exc:
        if exc.name != "ploutos_core.backtest_cli":
            raise
    else:
        backtest_parser = commands.add_parser("backtest", help="backtest a trained agent")
        add_backtest_arguments(backtest_parser)
        backtest_parser.set_defaults(handler=run_backtest_command)
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


if __name__ == "__main__":
    sys.exit(main())
