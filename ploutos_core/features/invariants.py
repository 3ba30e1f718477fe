"""Properties a stored feature partition must have, checked again after it is written.

Returns a list of human-readable violations (empty when the property holds); the blocking
``features_valid`` asset check reports them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def feature_frame_violations(frame: pd.DataFrame, feature_names: Sequence[str]) -> list[str]:
    """The registry's columns in order, float32, finite, dates strictly increasing."""
    problems = []
    if tuple(frame.columns) != tuple(feature_names):
        missing = [c for c in feature_names if c not in frame.columns]
        extra = [c for c in frame.columns if c not in feature_names]
        problems.append(
            f"columns differ from the registry (missing {missing[:5]}, extra {extra[:5]}, "
            "or out of order)"
        )
    dtypes = frame.dtypes  # one Series, not a column lookup per feature (a millisecond a file)
    wrong = [c for c, dtype in dtypes.items() if dtype != np.float32]
    if wrong:
        problems.append(f"columns not float32: {wrong[:5]}")
    values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
    if values.size and not np.isfinite(values).all():
        cols = frame.columns[~np.isfinite(values).all(axis=0)]
        problems.append(f"NaN or inf in columns: {list(cols[:5])}")
    index = pd.DatetimeIndex(frame.index)
    if len(index) > 1 and not (np.diff(index.asi8) > 0).all():
        problems.append("dates are not strictly increasing")
    return problems
