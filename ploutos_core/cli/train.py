"""``ploutos train``: the training guide's options, then the same ``train`` as the Dagster asset.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
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
        type=str,
        default=DEFAULT_OUTPUT,
        help=f"model directory, a path or a URL such as s3://bucket/models/m1 "
        f"(default: {DEFAULT_OUTPUT})",
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
        type=str,
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
    from ploutos_core import object_store
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
    with (
        _resumed(args.resume) as resume,
        object_store.working_copy(args.output, upload_on_error=True) as output,
    ):
        result = train(
            config,
            market,
            output.path,
            resume=resume,
            progress_bar=not args.no_progress_bar,
            logger=log,
            progress_every=PROGRESS_EVERY if args.no_progress_bar else None,
        )
    print(f"model:       {output.location_of(result.model_path)}")
    print(f"statistics:  {output.location_of(result.stats_path)}")
    print(f"manifest:    {output.location_of(result.manifest_path)}")
    print(
        f"trained {result.timesteps:,} timesteps in {result.wall_time_s:.1f} s "
        f"({result.steps_per_second:,.0f} timesteps/s) on {result.device}"
    )
    print(f"tensorboard --logdir {output.location_of(result.tensorboard_dir)}")
    return 0


@contextlib.contextmanager
def _resumed(location: str | None) -> Iterator[Path | None]:
    """The model to resume from as a local path, with its statistics, manifest and TensorBoard
    curves beside it (downloaded when it is a URL)."""
    from ploutos_core import object_store
    from ploutos_core.artifacts.model_dir import TENSORBOARD_DIR

    if location is None or not object_store.is_url(location):
        yield None if location is None else Path(location)
        return
    name = location.rstrip("/").rpartition("/")[2]
    fetch = [*object_store.model_files(name), f"{TENSORBOARD_DIR}/**"]
    with object_store.working_copy(object_store.parent(location), fetch=fetch, upload=False) as c:
        yield c.path / name
