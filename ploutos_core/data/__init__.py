"""A user's market data: the CSV read into one validated long OHLCV table, and the synthetic
markets the demo and the tests use.

- :func:`read_ohlcv` / :func:`load_ohlcv` read and validate a CSV (:mod:`.loading`) in either
  layout (:mod:`.layouts`), checking every value (:mod:`.validation`) and repairing the harmless
  defects (:mod:`.repairs`).
- :mod:`.lineage`: per-ticker fingerprints, what changed between two versions of the data.
- :mod:`.invariants`: the properties a stored OHLCV table must have (the asset checks use them).
- :mod:`.sample`: the deterministic synthetic market (the bundled sample and the test fixtures).
"""

from ploutos_core.data.layouts import OHLCV_COLUMNS, PRICE_COLUMNS
from ploutos_core.data.loading import OhlcvLoad, content_hash, load_ohlcv, read_ohlcv
from ploutos_core.data.validation import TICKER_PATTERN, TICKER_RULE, validate_ticker

__all__ = [
    "OHLCV_COLUMNS",
    "PRICE_COLUMNS",
    "TICKER_PATTERN",
    "TICKER_RULE",
    "OhlcvLoad",
    "content_hash",
    "load_ohlcv",
    "read_ohlcv",
    "validate_ticker",
]
