"""Stale feature partitions are found from the files' footers: missing, another definition, or
computed from other raw rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ploutos_core.features.staleness import stale_tickers
from ploutos_core.storage import FEATURE_VERSION_ATTR, SOURCE_FINGERPRINT_ATTR, write_parquet_atomic


def write_features(directory: Path, ticker: str, version: str, fingerprint: str | None) -> None:
    index = pd.DatetimeIndex(pd.bdate_range("2024-01-01", periods=3), name="date")
    frame = pd.DataFrame(np.zeros((3, 2), np.float32), index=index, columns=["a", "b"])
    frame.attrs[FEATURE_VERSION_ATTR] = version
    if fingerprint is not None:
        frame.attrs[SOURCE_FINGERPRINT_ATTR] = fingerprint
    write_parquet_atomic(directory / f"{ticker}.parquet", frame)


def test_missing_other_version_and_other_rows_are_stale(tmp_path: Path) -> None:
    write_features(tmp_path, "AAA", "v2", "fa")
    write_features(tmp_path, "BBB", "v1", "fb")  # an earlier feature definition
    write_features(tmp_path, "CCC", "v2", "old")  # its raw rows changed since
    write_features(tmp_path, "DDD", "v2", None)  # written before files recorded their source
    (tmp_path / "EEE.parquet").write_bytes(b"not parquet")
    fingerprints = {"AAA": "fa", "BBB": "fb", "CCC": "fc", "DDD": "fd", "EEE": "fe", "FFF": "ff"}
    assert stale_tickers(tmp_path, fingerprints, "v2") == ["BBB", "CCC", "DDD", "EEE", "FFF"]
    assert stale_tickers(tmp_path, {"AAA": "fa"}, "v2") == []
