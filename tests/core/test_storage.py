"""Parquet files: the fast path for float frames writes what pyarrow's pandas path writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ploutos_core.storage import (
    TMP_PREFIX,
    parquet_bytes,
    read_parquet,
    remove_stale_temporaries,
    write_parquet_atomic,
)


def pandas_path_bytes(frame: pd.DataFrame) -> bytes:
    """What parquet_bytes writes, through ``pa.Table.from_pandas``."""
    table = pa.Table.from_pandas(frame, preserve_index=True)
    encoded = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy", write_statistics=True, use_dictionary=encoded)
    return sink.getvalue().to_pybytes()


def frame(dtype: str, *, index_name: str | None = "date", tz: str | None = None,
          order: str = "F") -> pd.DataFrame:
    rng = np.random.default_rng(0)
    values = np.asarray(rng.standard_normal((50, 7)), dtype=dtype, order=order)
    values[3, 2] = np.nan
    index = pd.date_range("2020-01-01", periods=50, freq="B", name=index_name, tz=tz)
    return pd.DataFrame(values, index=index, columns=[f"c{j}" for j in range(7)])


@pytest.mark.parametrize(
    "make",
    [
        lambda: frame("float32"),
        lambda: frame("float32", order="C"),
        lambda: frame("float64", index_name=None),
        lambda: frame("float32", tz="America/New_York"),
        lambda: frame("float32").iloc[:0],
        lambda: frame("float32").set_axis(
            pd.DatetimeIndex(["2020-01-01", None, *pd.date_range("2020-01-03", periods=48)]),
            axis=0,
        ),
        lambda: frame("float32").assign(ticker="AAA"),
        lambda: frame("float32").astype({"c0": "float64"}),
    ],
    ids=[
        "features",
        "row-major",
        "float64-unnamed",
        "tz-aware",
        "empty",
        "missing-date",
        "mixed",
        "two-dtypes",
    ],
)
def test_parquet_bytes_equal_the_pandas_path_and_round_trip(make, tmp_path: Path) -> None:
    original = make()
    assert parquet_bytes(original) == pandas_path_bytes(original)
    assert parquet_bytes(original) == parquet_bytes(original)  # the cached schema is reused
    path = write_parquet_atomic(tmp_path / "x.parquet", original)
    pd.testing.assert_frame_equal(read_parquet(path), original, check_freq=False)


def test_stale_temporaries_are_removed_and_fresh_ones_kept(tmp_path: Path) -> None:
    features = tmp_path / "features"
    features.mkdir()
    (features / "AAA.parquet").write_bytes(b"kept")
    stale_file = features / f"{TMP_PREFIX}BBB.parquet.x1"
    stale_dir = tmp_path / "backtests" / f"{TMP_PREFIX}20260101-run.x2"
    fresh_file = features / f"{TMP_PREFIX}CCC.parquet.x3"
    stale_dir.mkdir(parents=True)
    (stale_dir / "metrics.json").write_text("{}")
    stale_file.write_bytes(b"half")
    fresh_file.write_bytes(b"being written")
    two_hours_ago = time.time() - 2 * 3600
    for path in (stale_file, stale_dir / "metrics.json", stale_dir):
        os.utime(path, (two_hours_ago, two_hours_ago))

    removed = remove_stale_temporaries(tmp_path)

    assert sorted(removed) == sorted([stale_file, stale_dir])
    assert not stale_file.exists() and not stale_dir.exists()
    assert fresh_file.exists() and (features / "AAA.parquet").read_bytes() == b"kept"
    assert remove_stale_temporaries(tmp_path) == []
