"""Artifacts under an fsspec URL (``s3://bucket/prefix``): a local working copy, uploaded whole.

Why a working copy, and not :class:`upath.UPath` threaded through the core
--------------------------------------------------------------------------
The core writes its artifacts with libraries that want local files: Stable-Baselines3 saves a
zip and pickles the VecNormalize statistics, TensorBoard appends to event files while a model
trains, matplotlib and pyarrow write files, the trial registry takes an ``fcntl`` lock, and
:mod:`ploutos_core.storage` makes every write atomic by renaming a temporary file, which an
object store cannot do (S3 has no rename). Passing URLs down would touch every writer and still
not make those libraries write objects. So the core keeps reading and writing local paths,
unchanged, and :func:`working_copy` gives the pipeline and the command line a local directory
that stands for a location:

- for a local path, the directory itself: nothing is copied and nothing changes;
- for a URL, a scratch directory outside the storage root (``$PLOUTOS_SCRATCH``, else the system
  temporary directory). The files a step reads are downloaded into it first (``fetch``); when
  the step ends, every file it created or changed is uploaded with one PUT of the complete file,
  which S3 makes atomic: a reader sees the previous object or the new one, never a part (a large
  file goes up as a multipart upload, which is atomic too: the object appears when the upload
  completes). The upload goes in the order ``last`` gives: in a model directory the statistics
  before the models and the manifest after everything, so a reader never sees a model without
  its statistics or a model directory without its manifest. Nothing is written to the bucket
  under a temporary name, so a killed process leaves nothing there to clean up.

If the upload fails (the server is down, the credentials are wrong), :class:`StorageError` names
the URL and the scratch directory, which is kept: nothing is lost locally.

Reads copy the named files only, and afresh for every step: model and backtest directories are
never rewritten, but the raw table, feature files and registries are, so a cache across steps
could go stale.

The endpoint and credentials come from the environment as for any boto client (for S3:
``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``;
fsspec's ``FSSPEC_S3_<OPTION>`` variables also work).
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ploutos_core.artifacts.model_dir import FINAL_STATS, MANIFEST
from ploutos_core.errors import StorageError
from ploutos_core.storage import TMP_PREFIX, write_bytes_atomic

log = logging.getLogger(__name__)

LOCAL_PROTOCOLS = ("", "file", "local")
UPLOAD_LAST: tuple[str, ...] = ("*.zip", MANIFEST)
"""Default upload order of a working copy: file-name patterns uploaded after all other files,
in this order. A model zip goes after its statistics (``*.pkl``), the manifest after all."""
_GLOB = set("*?[")


def is_url(location: str | os.PathLike[str]) -> bool:
    """Whether ``location`` names an object store (``s3://...``) rather than a local path."""
    text = os.fspath(location)
    return "://" in text and text.split("://", 1)[0] not in LOCAL_PROTOCOLS


def join(location: str | os.PathLike[str], *parts: str) -> str:
    """``location`` with ``parts`` appended: ``/``-joined for a URL, as a path otherwise."""
    if is_url(location):
        return "/".join([os.fspath(location).rstrip("/"), *(p.strip("/") for p in parts)])
    return str(Path(location, *parts))


def parent(location: str | os.PathLike[str]) -> str:
    """The directory ``location`` is in."""
    if is_url(location):
        return os.fspath(location).rstrip("/").rpartition("/")[0]
    return str(Path(location).parent)


def name(location: str | os.PathLike[str]) -> str:
    """The last component of ``location`` (a file's or directory's own name)."""
    if is_url(location):
        return os.fspath(location).rstrip("/").rpartition("/")[2]
    return Path(location).name


def scratch_root() -> Path:
    """Where working copies of remote locations go: ``$PLOUTOS_SCRATCH`` or the temp dir."""
    root = Path(os.environ.get("PLOUTOS_SCRATCH") or tempfile.gettempdir())
    root.mkdir(parents=True, exist_ok=True)
    return root


def _filesystem(url: str) -> tuple[Any, str]:
    import fsspec

    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise StorageError(
            f"cannot open {url}: {exc}; install the filesystem's package (s3fs for s3://, "
            "pip install -e '.[cluster]')"
        ) from exc
    return fs, path.rstrip("/")


def _remote_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError]
    with contextlib.suppress(ImportError):
        from botocore.exceptions import BotoCoreError, ClientError

        errors += [BotoCoreError, ClientError]
    return tuple(errors)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError):
        return "it does not exist (or its bucket does not)"
    if isinstance(exc, PermissionError):
        return "access denied; check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket policy"
    text = str(exc) or type(exc).__name__
    return (
        f"the object store did not answer ({text}); check that it is running and that "
        "AWS_ENDPOINT_URL points at it"
    )


@contextlib.contextmanager
def _reported(action: str, url: str, hint: str = "") -> Iterator[None]:
    """Turn the filesystem's and botocore's errors into a :class:`StorageError` naming ``url``."""
    try:
        yield
    except StorageError:
        raise
    except _remote_errors() as exc:
        raise StorageError(f"cannot {action} {url}: {_reason(exc)}{hint}") from exc


def exists(location: str | os.PathLike[str]) -> bool:
    """Whether a file (or directory) exists at ``location``."""
    if not is_url(location):
        return Path(location).exists()
    url = os.fspath(location)
    fs, path = _filesystem(url)
    with _reported("read", url):
        fs.invalidate_cache()
        return bool(fs.exists(path))


def read_bytes(location: str | os.PathLike[str]) -> bytes:
    """The content of the file or object at ``location``.

    Raises
    ------
    StorageError
        When it does not exist or cannot be read.
    """
    if not is_url(location):
        try:
            return Path(location).read_bytes()
        except OSError as exc:
            raise StorageError(f"cannot read {location}: {exc.strerror or exc}") from exc
    url = os.fspath(location)
    fs, path = _filesystem(url)
    with _reported("read", url):
        return fs.cat_file(path)


def write_bytes(location: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` at ``location`` atomically: a renamed temporary file, or one PUT."""
    if not is_url(location):
        return str(write_bytes_atomic(location, data))
    url = os.fspath(location)
    fs, path = _filesystem(url)
    with _reported("write", url):
        fs.pipe_file(path, data)
    return url


def read_table(location: str | os.PathLike[str], **kwargs: Any) -> Any:
    """``pyarrow.parquet.read_table`` of the file or object at ``location`` (``filters`` and
    ``columns`` are pushed down to the object store: only the needed row groups are read)."""
    import pyarrow.parquet as pq

    if not is_url(location):
        return pq.read_table(location, **kwargs)
    url = os.fspath(location)
    fs, path = _filesystem(url)
    with _reported("read", url):
        return pq.read_table(path, filesystem=fs, **kwargs)


def file_names(location: str | os.PathLike[str]) -> list[str]:
    """The names of the files directly in the directory ``location``, sorted; [] if none."""
    if not is_url(location):
        directory = Path(location)
        if not directory.is_dir():
            return []
        return sorted(p.name for p in directory.iterdir() if p.is_file())
    url = os.fspath(location)
    fs, path = _filesystem(url)
    with _reported("list", url):
        fs.invalidate_cache()
        try:
            entries = fs.ls(path, detail=True)
        except FileNotFoundError:
            return []
    return sorted(e["name"].rsplit("/", 1)[-1] for e in entries if e.get("type") == "file")


@dataclass(frozen=True)
class WorkingCopy:
    """A local directory standing for ``location`` (see :func:`working_copy`).

    Parameters
    ----------
    location:
        The local path or URL the directory stands for.
    path:
        The local directory: ``location`` itself, or a scratch directory for a URL.
    """

    location: str
    path: Path

    @property
    def remote(self) -> bool:
        return is_url(self.location)

    def location_of(self, local: str | os.PathLike[str]) -> str:
        """Where a file of :attr:`path` lives (or will, once uploaded): the name to report."""
        if not self.remote:
            return str(local)
        relative = Path(local).relative_to(self.path)
        return join(self.location, *relative.parts) if relative.parts else self.location


@contextlib.contextmanager
def working_copy(
    location: str | os.PathLike[str],
    *,
    fetch: Sequence[str] = (),
    upload: bool = True,
    upload_on_error: bool = False,
    last: Sequence[str] = UPLOAD_LAST,
) -> Iterator[WorkingCopy]:
    """A local directory for ``location``; for a URL, files fetched first and uploaded after.

    Parameters
    ----------
    location:
        A local directory (yielded as it is: the writers create it) or a URL.
    fetch:
        Paths relative to ``location`` to download first; glob patterns (``folds/*.json``)
        download every match, a plain name is skipped when it does not exist (the reader then
        reports the missing file in its own words).
    upload:
        Upload the files created or changed in the directory when the block ends without an
        error (False: a read-only copy).
    upload_on_error:
        Upload them also when the block raises (a training saves ``interrupted_model.zip`` and
        its TensorBoard logs when it is interrupted); the exception is re-raised.
    last:
        File-name patterns uploaded after every other file, in this order (:data:`UPLOAD_LAST`).

    Raises
    ------
    StorageError
        When the location cannot be read or the upload fails; the scratch directory is then
        kept and named in the message.
    """
    if not is_url(location):
        yield WorkingCopy(str(location), Path(location))
        return
    url = os.fspath(location).rstrip("/")
    fs, root = _filesystem(url)
    scratch = Path(tempfile.mkdtemp(prefix="ploutos-", dir=scratch_root()))
    copy = WorkingCopy(url, scratch)
    try:
        _download(fs, root, url, scratch, fetch)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    before = _snapshot(scratch)
    try:
        yield copy
    except BaseException:
        if upload and upload_on_error:
            try:
                _upload_changes(fs, root, url, scratch, before, last)
            except StorageError as exc:
                log.warning("%s", exc)  # the scratch directory is kept; the first error wins
            else:
                shutil.rmtree(scratch, ignore_errors=True)
        else:
            shutil.rmtree(scratch, ignore_errors=True)
        raise
    if upload:
        _upload_changes(fs, root, url, scratch, before, last)
    shutil.rmtree(scratch, ignore_errors=True)


def _download(fs: Any, root: str, url: str, scratch: Path, fetch: Sequence[str]) -> None:
    if not fetch:
        return
    with _reported("read", url):
        fs.invalidate_cache()
        relatives = _resolve(fs, root, fetch)
        if not relatives:
            return
        targets = [scratch / relative for relative in relatives]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
        fs.get([f"{root}/{r}" for r in relatives], [str(t) for t in targets])


def _resolve(fs: Any, root: str, fetch: Sequence[str]) -> list[str]:
    """The existing files ``fetch`` names, relative to ``root``."""
    found: dict[str, None] = {}
    plain: dict[str, list[str]] = {}
    for pattern in fetch:
        pattern = pattern.strip("/")
        if _GLOB & set(pattern):
            for match in fs.glob(f"{root}/{pattern}"):
                found[match[len(root) + 1:]] = None
        else:
            parent, _, _ = pattern.rpartition("/")
            plain.setdefault(parent, []).append(pattern)
    for parent, names in plain.items():
        directory = f"{root}/{parent}" if parent else root
        try:
            present = {e.rstrip("/") for e in fs.ls(directory, detail=False)}
        except FileNotFoundError:
            continue
        found.update({name: None for name in names if f"{root}/{name}" in present})
    return list(found)


LOCAL_ONLY_SUFFIXES = (".lock",)
"""Files never uploaded: lock files serialize writers on one machine only."""


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    files = {}
    for path in directory.rglob("*"):
        name = path.name
        if path.is_file() and not name.startswith(TMP_PREFIX) and not name.endswith(
            LOCAL_ONLY_SUFFIXES
        ):
            stat = path.stat()
            files[path.relative_to(directory).as_posix()] = (stat.st_size, stat.st_mtime_ns)
    return files


def upload_order(relatives: Sequence[str], last: Sequence[str] = UPLOAD_LAST) -> list[list[str]]:
    """``relatives`` in upload batches: files matching no pattern of ``last`` first, then those
    matching each pattern in turn (a file goes with the last pattern it matches)."""
    batches: list[list[str]] = [[] for _ in range(len(last) + 1)]
    for relative in sorted(relatives):
        name = relative.rsplit("/", 1)[-1]
        rank = max((i + 1 for i, p in enumerate(last) if fnmatch.fnmatch(name, p)), default=0)
        batches[rank].append(relative)
    return [batch for batch in batches if batch]


def _upload_changes(
    fs: Any,
    root: str,
    url: str,
    scratch: Path,
    before: dict[str, tuple[int, int]],
    last: Sequence[str],
) -> None:
    changed = [rel for rel, stat in _snapshot(scratch).items() if before.get(rel) != stat]
    hint = f"; the files are kept in {scratch}"
    with _reported("write", url, hint):
        for batch in upload_order(changed, last):
            fs.put([str(scratch / rel) for rel in batch], [f"{root}/{rel}" for rel in batch])


def model_files(model_name: str) -> list[str]:
    """What reading a model needs, relative to its directory: the model, its statistics and the
    manifest (see :func:`ploutos_core.artifacts.model_dir.stats_path_for`)."""
    from ploutos_core.artifacts.model_dir import FINAL_MODEL, stats_path_for

    stats = FINAL_STATS if model_name == FINAL_MODEL else stats_path_for(model_name).name
    return [model_name, stats, MANIFEST]


@contextlib.contextmanager
def fetched_model(model_location: str | os.PathLike[str]) -> Iterator[Path]:
    """A local path of the model file ``model_location`` with its statistics and manifest
    beside it: the file itself when local, a read-only working copy of its directory when a
    URL."""
    if not is_url(model_location):
        yield Path(model_location)
        return
    directory, _, model_name = os.fspath(model_location).rstrip("/").rpartition("/")
    with working_copy(directory, fetch=model_files(model_name), upload=False) as copy:
        yield copy.path / model_name


@contextlib.contextmanager
def working_file(location: str | os.PathLike[str], *, upload: bool = True) -> Iterator[Path]:
    """A local path for the file ``location``: the file itself when local; for a URL, a
    downloaded copy (when it exists), uploaded again when the block changed it."""
    if not is_url(location):
        yield Path(location)
        return
    file_name = name(location)
    with working_copy(parent(location), fetch=[file_name], upload=upload) as copy:
        yield copy.path / file_name
