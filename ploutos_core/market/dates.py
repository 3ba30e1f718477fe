"""Dates as the market arrays hold them (``datetime64[ns]``) and as messages and manifests write
them (ISO ``YYYY-MM-DD``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ploutos_core.errors import DataError

BARS_PER_YEAR = 252
"""Trading days in a year: the annualization of every metric and of the episode Sharpe ratio."""


def as_datetime64(value: str | np.datetime64 | pd.Timestamp) -> np.datetime64:
    try:
        return pd.Timestamp(value).as_unit("ns").to_datetime64()
    except (TypeError, ValueError) as exc:
        raise DataError(f"cannot read {value!r} as a date; use YYYY-MM-DD") from exc


def iso_day(value: np.datetime64) -> str:
    return str(value.astype("datetime64[D]"))
