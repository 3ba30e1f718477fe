"""Atomic writes: every artifact is written to a temporary name beside its target, then renamed.

A reader therefore sees either the previous complete file or the new complete file, never a
partial one, even when the writer is killed mid-write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ploutos_core.errors import StorageError

TMP_PREFIX = ".tmp-"
ATTR_PREFIX = "ploutos."
"""``DataFrame.attrs`` keys with this prefix (string values) are stored in the Parquet schema's
metadata and read back: a file says what made it (e.g. the feature version)."""
FEATURE_VERSION_ATTR = ATTR_PREFIX + "feature_version"
"""A feature frame's ``FEATURE_VERSION``: the feature definition that computed it."""
SOURCE_FINGERPRINT_ATTR = ATTR_PREFIX + "source_fingerprint"
"""A feature frame's ticker fingerprint in the raw table it was computed from (the pipeline's)."""


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; artifacts get the permissions a plain open() would give them.
_FILE_MODE = 0o666 & ~_read_umask()


def _storage_error(path: Path, exc: OSError) -> StorageError:
    if exc.errno == errno.ENOSPC:
        reason = "the disk is full; free space or point PLOUTOS_STORAGE at a larger volume"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason = "the directory is not writable; fix its permissions or set PLOUTOS_STORAGE"
    elif exc.errno in (errno.ENOTDIR, errno.EEXIST) and (
        blocker := next((p for p in reversed(path.parents) if p.is_file()), None)
    ):
        reason = f"{blocker} is a file, not a directory; move it or set PLOUTOS_STORAGE elsewhere"
    else:
        reason = exc.strerror or str(exc)
    return StorageError(f"cannot write {path}: {reason}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    On any failure (including KeyboardInterrupt) the temporary file is removed and ``path`` keeps
    its previous content.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX + target.name + ".", dir=target.parent)
        os.fchmod(fd, _FILE_MODE)
        os.close(fd)
    except OSError as exc:
        raise _storage_error(target, exc) from exc
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _storage_error(target, exc) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary directory beside ``path``; on success rename it to ``path``.

    ``path`` must not exist yet: model and backtest directories are never overwritten.
    """
    target = Path(path)
    if target.exists():
        raise StorageError(f"{target} already exists; refusing to overwrite an earlier artifact")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX + target.name + ".", dir=target.parent))
    except OSError as exc:
        raise _storage_error(target, exc) from exc
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        _remove_tree(tmp)
        raise


STALE_TEMPORARY_S = 3600.0
"""Age after which a temporary file or directory is a leftover of a killed writer: every write
through :func:`atomic_path` takes seconds, a backtest's :func:`atomic_dir` a minute or two."""


def remove_stale_temporaries(
    root: str | os.PathLike[str], older_than_s: float = STALE_TEMPORARY_S
) -> list[Path]:
    """Remove the temporary files and directories under ``root`` that a killed process left.

    A process killed between creating a temporary name and renaming it (SIGKILL, power loss)
    cannot clean up after itself; readers never match those names, so they only waste space.
    Returns what was removed.
    """
    cutoff = time.time() - older_than_s
    removed = []
    for directory, subdirs, files in os.walk(root):
        for name in [*files, *subdirs]:
            path = Path(directory) / name
            if name.startswith(TMP_PREFIX) and _mtime(path) < cutoff:
                if path.is_dir():
                    _remove_tree(path)
                else:
                    path.unlink(missing_ok=True)
                removed.append(path)
        subdirs[:] = [d for d in subdirs if not d.startswith(TMP_PREFIX)]
    return removed


def _mtime(path: Path) -> float:
    try:
        return path.lstat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"
    return write_bytes_atomic(path, text.encode())


_FLOAT_SCHEMAS: dict[tuple[Any, ...], pa.Schema] = {}


def _arrow_table(frame: pd.DataFrame) -> pa.Table:
    """``pa.Table.from_pandas(frame, preserve_index=True)``, a tenth of the time for a frame of
    float columns of one dtype with a DatetimeIndex (a feature file).

    pandas-to-Arrow conversion mostly builds pandas' schema metadata, column by column (about
    4 ms for 85 columns, holding the GIL). For such a frame the schema depends only on the
    columns, the dtypes and the index, so it is built once from an empty slice and the columns
    are wrapped without a copy: the same table, the same Parquet bytes (tested).
    """
    dtypes = set(frame.dtypes)
    simple = (
        isinstance(frame.index, pd.DatetimeIndex)
        and len(dtypes) == 1
        and next(iter(dtypes)).kind == "f"
        and frame.columns.is_unique
        and all(isinstance(c, str) for c in frame.columns)
    )
    if not simple:
        return pa.Table.from_pandas(frame, preserve_index=True)
    index = frame.index
    key = (tuple(frame.columns), str(frame.dtypes.iloc[0]), index.name, str(index.dtype))
    schema = _FLOAT_SCHEMAS.get(key)
    if schema is None:
        schema = _FLOAT_SCHEMAS[key] = pa.Schema.from_pandas(frame.iloc[:0], preserve_index=True)
    values = frame.to_numpy()
    columns = [pa.array(values[:, j], from_pandas=True) for j in range(values.shape[1])]
    return pa.Table.from_arrays([*columns, pa.array(index, from_pandas=True)], schema=schema)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """Serialize ``frame`` to Parquet deterministically (same frame, same bytes).

    Float columns are not dictionary-encoded: indicator values rarely repeat, so the dictionary
    only costs space and read time (a quarter of both for the feature files). Snappy, Parquet's
    usual codec: on the feature files zstd saves a tenth of the space but doubles encode time
    and reads half again slower.
    """
    table = _arrow_table(frame)
    provenance = {k: str(v) for k, v in frame.attrs.items() if k.startswith(ATTR_PREFIX)}
    if provenance:
        metadata = {**(table.schema.metadata or {}), **_encoded(provenance)}
        table = table.replace_schema_metadata(metadata)
    encoded = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="snappy", write_statistics=True, use_dictionary=encoded)
    return sink.getvalue().to_pybytes()


def _encoded(values: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode(): v.encode() for k, v in sorted(values.items())}


def parquet_provenance(metadata: dict[bytes, bytes] | None) -> dict[str, str]:
    """The :data:`ATTR_PREFIX` entries of a Parquet schema's metadata."""
    return {
        k.decode(): v.decode()
        for k, v in (metadata or {}).items()
        if k.decode(errors="replace").startswith(ATTR_PREFIX)
    }


def write_parquet_atomic(path: str | os.PathLike[str], frame: pd.DataFrame) -> Path:
    """Write ``frame`` to ``path`` as Parquet, atomically."""
    return write_bytes_atomic(path, parquet_bytes(frame))


def read_parquet(path: str | os.PathLike[str], *, use_threads: bool = True) -> pd.DataFrame:
    """Read a Parquet file written by :func:`write_parquet_atomic`.

    ``use_threads=False`` decodes on the calling thread only: faster for a small file when the
    caller already reads many files in parallel. ``ParquetFile.read`` skips the dataset layer of
    ``pq.read_table`` (a millisecond per file), which a single file does not need.
    """
    try:
        with pq.ParquetFile(path) as parquet:
            table = parquet.read(use_threads=use_threads)
        frame = table.to_pandas(use_threads=use_threads)
        frame.attrs.update(parquet_provenance(table.schema.metadata))
        return frame
    except FileNotFoundError as exc:
        raise StorageError(f"{path} does not exist; materialize the asset that writes it") from exc
