"""Per-ticker memo of indicator calls: each distinct call is computed once per ticker.

Several features read the same indicator (MACD line, signal and histogram; ATR for ATR% and for
momentum in ATR units; the 50-bar SMA for three features). While :func:`sharing` is active (the
generic loop in ``compute.py`` wraps each ticker in it), :func:`shared` returns the earlier result
of an identical call -- same function, same input series objects, same parameters -- instead of
computing it again. Outside it, :func:`shared` simply calls the function.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

import pandas as pd

Result = pd.Series | pd.DataFrame

_MEMO: ContextVar[dict[tuple, tuple[tuple[Result, ...], Any]] | None] = ContextVar(
    "ploutos_indicator_memo", default=None
)


@contextlib.contextmanager
def sharing() -> Iterator[None]:
    """Share identical indicator calls until the block ends (one ticker's computation)."""
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def shared(fn: Callable[..., Any], *series: Result, **params: Any) -> Any:
    """``fn(*series, **params)``, computed once per :func:`sharing` block.

    Inputs are matched by identity; the memo keeps them alive, so an id is never reused by
    another series within the block.
    """
    memo = _MEMO.get()
    if memo is None:
        return fn(*series, **params)
    key = (fn.__module__, fn.__qualname__, tuple(map(id, series)), tuple(sorted(params.items())))
    hit = memo.get(key)
    if hit is None:
        hit = memo[key] = (series, fn(*series, **params))
    return hit[1]
