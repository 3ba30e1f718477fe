"""What every subcommand shares: the ``ploutos`` logger and the market built from a user's CSV.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from ploutos_core.config import DataConfig, default_config_path, load_config

if TYPE_CHECKING:
    from ploutos_core.market import MarketData

log = logging.getLogger("ploutos")
DEFAULT_MODEL_DIR = Path("models") / "ploutos_production"
"""Where ``ploutos train`` writes and ``ploutos backtest`` reads by default (the guide's name)."""


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
