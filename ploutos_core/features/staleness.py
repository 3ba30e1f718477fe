"""Which stored feature partitions are stale: missing, computed by another feature definition, or
computed from other raw rows than the raw table holds now.

Each feature file records its ``FEATURE_VERSION`` and its ticker's raw fingerprint in the
Parquet schema metadata (:mod:`ploutos_core.storage`), so the answer needs only the files'
footers, not the features.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ploutos_core.storage import FEATURE_VERSION_ATTR, SOURCE_FINGERPRINT_ATTR, parquet_provenance


def stale_tickers(
    features_dir: str | Path, fingerprints: Mapping[str, str], feature_version: str
) -> list[str]:
    """The tickers of ``fingerprints`` (ticker -> raw fingerprint) whose feature file is missing,
    unreadable, of another ``feature_version`` or of another fingerprint, in sorted order."""
    stale = []
    for ticker, fingerprint in sorted(fingerprints.items()):
        path = Path(features_dir) / f"{ticker}.parquet"
        try:
            provenance = parquet_provenance(pq.read_schema(path).metadata)
        except (OSError, pa.ArrowInvalid):
            stale.append(ticker)
            continue
        made_by = (provenance.get(FEATURE_VERSION_ATTR), provenance.get(SOURCE_FINGERPRINT_ATTR))
        if made_by != (feature_version, fingerprint):
            stale.append(ticker)
    return stale
