"""Resources: where the input CSV is and where artifacts go. Assets never spell paths themselves."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
import pandas as pd
from pydantic import Field

from ploutos_core import object_store
from ploutos_core.artifacts import ModelDir
from ploutos_core.errors import StorageError
from ploutos_core.object_store import WorkingCopy
from ploutos_core.storage import parquet_bytes, read_parquet, remove_stale_temporaries

if TYPE_CHECKING:
    from ploutos_core.market import MarketData

RAW_OHLCV = "raw_ohlcv/raw_ohlcv.parquet"
FINGERPRINTS = "raw_ohlcv/fingerprints.json"
FEATURES = "features"
MODELS = "models"
BACKTESTS = "backtests"
EVALUATION = "evaluation"
PAPER = "paper"


def run_stamp(run_id: str) -> str:
    """The name of a run's own model or backtest directory: ``<UTC time>-<run id>``."""
    return f"{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{run_id[:8]}"


class OhlcvSource(dg.ConfigurableResource):
    """The user's OHLCV CSV (long or yfinance wide layout, optionally gzipped)."""

    path: str = Field(description="Path of the input CSV ($PLOUTOS_DATA).")


class PloutosStorage(dg.ConfigurableResource):
    """The artifact root ($PLOUTOS_STORAGE) and the layout beneath it.

    The root is a local directory or an fsspec URL (``s3://bucket/prefix``). Assets read and
    write through this resource: small files directly (:meth:`read_fingerprints`,
    :meth:`write_raw_ohlcv`), directories through :meth:`working_copy`, a local directory that
    is the root's own for a local root and a scratch copy uploaded whole for a URL
    (:mod:`ploutos_core.object_store` explains why and the atomic rule). The ``*_path`` and
    ``*_dir`` properties are the local layout and exist for a local root only.
    """

    root: str = Field(description="Artifact root: a local directory or an fsspec URL.")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Remove what killed runs left half-written (temporary names no reader matches) in the
        artifact directories; the Dagster instance may live under the same root and is not
        walked. An object store holds no temporary names (every object is one whole PUT)."""
        if self.remote:
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
    def remote(self) -> bool:
        """Whether the root is an object store URL."""
        return object_store.is_url(self.root)

    def location(self, *parts: str) -> str:
        """The local path or URL of ``parts`` under the root (what metadata and messages show)."""
        return object_store.join(self.root, *parts)

    def working_copy(
        self, *parts: str, fetch: Sequence[str] = (), **kwargs: Any
    ) -> contextlib.AbstractContextManager[WorkingCopy]:
        """:func:`ploutos_core.object_store.working_copy` of ``parts`` under the root."""
        return object_store.working_copy(self.location(*parts), fetch=fetch, **kwargs)

    @property
    def base(self) -> Path:
        if self.remote:
            raise StorageError(
                f"{self.root} is an object store: read and write it through "
                "PloutosStorage.working_copy or location, not as a local path"
            )
        return Path(self.root)

    @property
    def raw_ohlcv_path(self) -> Path:
        return self.base / RAW_OHLCV

    @property
    def fingerprints_path(self) -> Path:
        return self.base / FINGERPRINTS

    @property
    def features_dir(self) -> Path:
        return self.base / FEATURES

    @property
    def models_dir(self) -> Path:
        return self.base / MODELS

    @property
    def backtests_dir(self) -> Path:
        return self.base / BACKTESTS

    def new_model_dir(self, run_id: str) -> ModelDir:
        """A model directory of its own for run ``run_id``: ``models/<UTC time>-<run id>``."""
        return ModelDir(self.models_dir / run_stamp(run_id))

    def new_model_location(self, run_id: str) -> str:
        """:meth:`new_model_dir` as a path or URL (a local or a remote root)."""
        return self.location(MODELS, run_stamp(run_id))

    def new_backtest_dir(self, run_id: str) -> Path:
        """A backtest directory of its own for run ``run_id``: ``backtests/<UTC time>-<run id>``."""
        return self.backtests_dir / run_stamp(run_id)

    def read_fingerprints(self) -> dict[str, str]:
        """Per-ticker content hashes of the current raw_ohlcv (empty before its first run)."""
        location = self.location(FINGERPRINTS)
        if not object_store.exists(location):
            return {}
        return json.loads(object_store.read_bytes(location))

    def write_raw_ohlcv(self, frame: pd.DataFrame, fingerprints: dict[str, str]) -> None:
        """The raw table, then its fingerprints (what readers check it against), each atomic."""
        object_store.write_bytes(self.location(RAW_OHLCV), parquet_bytes(frame))
        text = json.dumps(fingerprints, indent=2, sort_keys=True, default=str) + "\n"
        object_store.write_bytes(self.location(FINGERPRINTS), text.encode())

    def feature_path(self, ticker: str) -> Path:
        return self.features_dir / f"{ticker}.parquet"

    def feature_location(self, ticker: str) -> str:
        return self.location(FEATURES, f"{ticker}.parquet")

    def feature_tickers(self) -> set[str]:
        """The tickers that have a feature file (one listing of ``features/``)."""
        suffix = ".parquet"
        return {
            name[: -len(suffix)]
            for name in object_store.file_names(self.location(FEATURES))
            if name.endswith(suffix)
        }

    def read_feature(self, ticker: str) -> pd.DataFrame:
        """One ticker's feature frame, with its provenance attributes."""
        if not self.remote:
            return read_parquet(self.feature_path(ticker), use_threads=False)
        location = self.feature_location(ticker)
        return read_parquet(io.BytesIO(object_store.read_bytes(location)), use_threads=False)

    @contextlib.contextmanager
    def market_inputs(self, tickers: Sequence[str] | None = None) -> Iterator[tuple[Path, Path]]:
        """Local ``(features_dir, raw_ohlcv_path)`` holding ``tickers``' files (every feature
        file when None): the root's own for a local root, downloaded for a URL."""
        names = ["*.parquet"] if tickers is None else [f"{t}.parquet" for t in tickers]
        fetch = [RAW_OHLCV, *(f"{FEATURES}/{name}" for name in names)]
        with self.working_copy(fetch=fetch, upload=False) as copy:
            yield copy.path / FEATURES, copy.path / RAW_OHLCV

    def load_market(self, tickers: Sequence[str]) -> MarketData:
        """:func:`ploutos_core.market.load_market` of ``tickers`` from this root, features
        checked against the current raw fingerprints."""
        from ploutos_core.market import load_market

        fingerprints = self.read_fingerprints()
        with self.market_inputs(tickers) as (features_dir, raw_path):
            return load_market(features_dir, raw_path, tickers, fingerprints=fingerprints)

    def read_ohlcv_rows(
        self, tickers: list[str] | None = None, columns: list[str] | None = None
    ) -> pd.DataFrame:
        """Read the raw_ohlcv table, or only ``tickers``' rows and ``columns`` (both pushed down
        to Parquet)."""
        location = self.location(RAW_OHLCV)
        if not object_store.exists(location):
            raise StorageError(f"{location} does not exist; materialize raw_ohlcv first")
        filters = None if tickers is None else [("ticker", "in", list(tickers))]
        table = object_store.read_table(location, filters=filters, columns=columns)
        frame = table.to_pandas()
        if "ticker" in frame:
            frame["ticker"] = frame["ticker"].astype("string")
        return frame.reset_index(drop=True)

    def paper_location(self, model_location: str) -> str:
        """Signals and the paper ledger of the model at ``model_location`` (a path or a URL):
        ``paper/<model directory name>``."""
        return self.location(PAPER, object_store.name(model_location))
