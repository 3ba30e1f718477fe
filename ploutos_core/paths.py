"""Where the pipeline's inputs and artifacts live, from the environment.

``PLOUTOS_DATA`` is the input CSV (default: the bundled sample), ``PLOUTOS_STORAGE`` the
artifact root (default: ``storage/`` in the checkout). Layout under the root::

    raw_ohlcv/raw_ohlcv.parquet      validated long OHLCV table
    raw_ohlcv/fingerprints.json      one content hash per ticker (what changed between two CSVs)
    features/<TICKER>.parquet        85 features per ticker
    models/<run id>/                 one directory per training run
    backtests/<run id>/              one directory per backtest run
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = PROJECT_ROOT / "data" / "sample_ohlcv.csv"
DEFAULT_STORAGE = PROJECT_ROOT / "storage"


def data_path() -> str:
    """The input CSV: ``$PLOUTOS_DATA`` or the bundled sample."""
    return os.environ.get("PLOUTOS_DATA") or str(DEFAULT_DATA)


def storage_root() -> str:
    """The artifact root: ``$PLOUTOS_STORAGE`` (a path or an fsspec URL) or ``storage/``."""
    return os.environ.get("PLOUTOS_STORAGE") or str(DEFAULT_STORAGE)
