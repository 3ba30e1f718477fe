"""What every subcommand shares: the ``ploutos`` logger and the market built from a user's CSV.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ploutos_core.config import DataConfig, default_config_path, load_config
from ploutos_core.paths import DEFAULT_DATA

if TYPE_CHECKING:
    from ploutos_core.market import MarketData

log = logging.getLogger("ploutos")
DEFAULT_MODEL_DIR = Path("models") / "ploutos_production"
"""Where ``ploutos train`` writes and ``ploutos backtest`` reads by default (the guide's name)."""


def add_training_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config``: the training config YAML, as ``train`` and ``evaluate`` read it."""
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config_path("training"),
        help="training config YAML (default: config/training.yaml)",
    )


def add_data_argument(
    parser: argparse.ArgumentParser,
    help: str = "OHLCV CSV (default: the bundled data/sample_ohlcv.csv)",
) -> None:
    """``--data``: the user's OHLCV CSV, the bundled sample by default."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=help)


def market_from_csv(path: str | Path) -> MarketData:
    """Read a user's CSV, compute its features and build the market: what every subcommand needs.

    The same core functions as the Dagster assets, so the command line and the pipeline agree.
    """
    from ploutos_core.data import load_ohlcv
    from ploutos_core.features import MIN_HISTORY_BARS, compute_features_many
    from ploutos_core.market import build_market

    data_config = load_config(DataConfig, default_config_path("data"))
    log.info("reading %s", path)
    ohlcv = load_ohlcv(path, adjust=data_config.adjust_prices, min_history=MIN_HISTORY_BARS)
    log.info("computing features for %d tickers", ohlcv["ticker"].nunique())
    return build_market(compute_features_many(ohlcv), ohlcv)
