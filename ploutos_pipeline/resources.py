"""Resources: where the input CSV is and where artifacts go. Assets never spell paths themselves."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
from pydantic import Field

from ploutos_core.artifacts import ModelDir
from ploutos_core.errors import StorageError
from ploutos_core.storage import remove_stale_temporaries


def _run_stamp(run_id: str) -> str:
    return f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{run_id[:8]}"


class OhlcvSource(dg.ConfigurableResource):
    """The user's OHLCV CSV (long or yfinance wide layout, optionally gzipped)."""

    path: str = Field(description="Path of the input CSV ($PLOUTOS_DATA).")


class PloutosStorage(dg.ConfigurableResource):
    """The artifact root ($PLOUTOS_STORAGE) and the layout beneath it."""

    root: str = Field(description="Artifact root: a local directory or an fsspec URL.")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Remove what killed runs left half-written (temporary names no reader matches) in the
        artifact directories; the Dagster instance may live under the same root and is not
        walked."""
        if "://" in self.root:
            return
        artifact_dirs = (
            self.raw_ohlcv_path.parent,
            self.features_dir,
            self.models_dir,
            self.backtests_dir,
        )
        removed = [
            path
            for directory in artifact_dirs
            if directory.is_dir()
            for path in remove_stale_temporaries(directory)
        ]
        if removed and context.log is not None:
            context.log.info(
                f"removed {len(removed)} temporary file(s) left by killed runs under {self.root}"
            )

    @property
    def base(self) -> Path:
        return Path(self.root)

    @property
    def raw_ohlcv_path(self) -> Path:
        return self.base / "raw_ohlcv" / "raw_ohlcv.parquet"

    @property
    def fingerprints_path(self) -> Path:
        return self.base / "raw_ohlcv" / "fingerprints.json"

    @property
    def features_dir(self) -> Path:
        return self.base / "features"

    @property
    def models_dir(self) -> Path:
        return self.base / "models"

    @property
    def backtests_dir(self) -> Path:
        return self.base / "backtests"

    def new_model_dir(self, run_id: str) -> ModelDir:
        """A model directory of its own for run ``run_id``: ``models/<UTC time>-<run id>``."""
        return ModelDir(self.models_dir / _run_stamp(run_id))

    def new_backtest_dir(self, run_id: str) -> Path:
        """A backtest directory of its own for run ``run_id``: ``backtests/<UTC time>-<run id>``."""
        return self.backtests_dir / _run_stamp(run_id)

    def read_fingerprints(self) -> dict[str, str]:
        """Per-ticker content hashes of the current raw_ohlcv (empty before its first run)."""
        path = self.fingerprints_path
        return json.loads(path.read_text()) if path.exists() else {}

    def feature_path(self, ticker: str) -> Path:
        return self.features_dir / f"{ticker}.parquet"

    def read_ohlcv_rows(self, tickers: list[str] | None = None) -> pd.DataFrame:
        """Read the raw_ohlcv table, or only ``tickers``' rows (a Parquet predicate pushdown)."""
        path = self.raw_ohlcv_path
        if not path.exists():
            raise StorageError(f"{path} does not exist; materialize raw_ohlcv first")
        filters = None if tickers is None else [("ticker", "in", list(tickers))]
        table = pq.read_table(path, filters=filters)
        frame = table.to_pandas()
        frame["ticker"] = frame["ticker"].astype("string")
        return frame.reset_index(drop=True)

    def read_ohlcv_bars(self) -> pd.DataFrame:
        """The ``date`` and ``ticker`` columns of raw_ohlcv: which ticker has a bar on which day."""
        path = self.raw_ohlcv_path
        if not path.exists():
            raise StorageError(f"{path} does not exist; materialize raw_ohlcv first")
        frame = pq.read_table(path, columns=["date", "ticker"]).to_pandas()
        frame["ticker"] = frame["ticker"].astype("string")
        return frame

    def paper_dir(self, model_dir: ModelDir) -> Path:
        """Signals and the paper ledger of a model: ``paper/<model directory name>``."""
        return self.base / "paper" / model_dir.path.name
