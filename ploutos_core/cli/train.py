"""``ploutos train``: the training guide's options, then the same ``train`` as the Dagster asset.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ploutos_core.cli.common import (
    DEFAULT_MODEL_DIR,
    add_data_argument,
    add_training_config_argument,
    log,
    market_from_csv,
)
from ploutos_core.config import TrainingConfig, load_config

DEFAULT_OUTPUT = DEFAULT_MODEL_DIR

PROGRESS_EVERY = 0.05


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``train`` subcommand's options; defaults not given here come from the YAML config."""
    add_training_config_argument(parser)
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
    add_data_argument(parser)
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
