"""Ploutos' own errors become ``dg.Failure``: the run log shows the message, not a traceback."""

import contextlib
from collections.abc import Iterator

import dagster as dg

from ploutos_core.errors import PloutosError


@contextlib.contextmanager
def reported_as_failure() -> Iterator[None]:
    """Re-raise a :class:`PloutosError` as a ``dg.Failure`` carrying its message and kind."""
    try:
        yield
    except PloutosError as exc:
        raise dg.Failure(
            description=f"{type(exc).__name__}: {exc}",
            metadata={"error": type(exc).__name__},
        ) from exc
