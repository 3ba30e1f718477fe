"""The 85 technical features the agent sees, per ticker per bar.

The registry (:mod:`~ploutos_core.features.registry`) is the table of features; the computation
(:mod:`~ploutos_core.features.compute`) runs it; ``docs/FEATURES.md`` is generated from it by
``python -m ploutos_core.features.docs --write docs/FEATURES.md``.
"""

from ploutos_core.features.compute import compute_features, compute_features_many, feature_dates
from ploutos_core.features.registry import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    GROUPS,
    MIN_HISTORY_BARS,
    REGISTRY,
    WARMUP_BARS,
    FeatureSpec,
)

__all__ = [
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "GROUPS",
    "MIN_HISTORY_BARS",
    "REGISTRY",
    "WARMUP_BARS",
    "FeatureSpec",
    "compute_features",
    "compute_features_many",
    "feature_dates",
]
