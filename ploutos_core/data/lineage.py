"""Per-ticker content fingerprints: which tickers' rows changed between two versions of the data."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TickerChanges:
    """Tickers that are new, whose rows changed, and that disappeared, each sorted."""

    new: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    @property
    def to_recompute(self) -> tuple[str, ...]:
        """Tickers whose features must be recomputed: new and changed ones."""
        return tuple(sorted(self.new + self.changed))


def ticker_fingerprints(ohlcv: pd.DataFrame) -> dict[str, str]:
    """A sha256 of each ticker's rows (dates and OHLCV values) in a long OHLCV frame."""
    fingerprints = {}
    for ticker, rows in ohlcv.groupby("ticker", sort=True, observed=True):
        values = rows[["date", "open", "high", "low", "close", "volume"]]
        hashed = pd.util.hash_pandas_object(values, index=False).to_numpy()
        fingerprints[str(ticker)] = hashlib.sha256(hashed.tobytes()).hexdigest()[:16]
    return fingerprints


def frame_fingerprint(fingerprints: dict[str, str]) -> str:
    """One hash over all tickers' fingerprints: the data version of the whole table."""
    text = "\n".join(f"{t}={h}" for t, h in sorted(fingerprints.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def diff_fingerprints(old: dict[str, str], new: dict[str, str]) -> TickerChanges:
    """Compare two fingerprint maps."""
    return TickerChanges(
        new=tuple(sorted(set(new) - set(old))),
        changed=tuple(sorted(t for t in set(new) & set(old) if new[t] != old[t])),
        removed=tuple(sorted(set(old) - set(new))),
    )


def contiguous_ranges(ordered: Sequence[str], subset: Collection[str]) -> list[tuple[str, str]]:
    """Split ``subset`` into (first, last) runs of consecutive keys in ``ordered``.

    A Dagster partition-range run covers consecutive partition keys, so the fewest runs that
    recompute exactly ``subset`` are its maximal consecutive stretches.
    """
    wanted = set(subset)
    ranges: list[tuple[str, str]] = []
    start: str | None = None
    previous: str | None = None
    for key in ordered:
        if key in wanted and start is None:
            start = key
        elif key not in wanted and start is not None:
            ranges.append((start, previous))
            start = None
        previous = key
    if start is not None:
        ranges.append((start, previous))
    return ranges
