"""The 85 technical features the agent sees, per ticker per bar.

The registry (:mod:`~ploutos_core.features.registry`) is the table of features; the computation
(:mod:`~ploutos_core.features.compute`) runs it; ``docs/FEATURES.md`` is generated from it by
``python -m ploutos_core.features.docs --write docs/FEATURES.md``.

The registry loads without pandas-ta; the computation's functions, which need it, are imported
on first use (``from ploutos_core.features import compute_features`` works as before). Every
Dagster process imports the registry with the code location, and pandas-ta with its numba
kernels is the slowest import of them.
"""

from typing import TYPE_CHECKING, Any

from ploutos_core.features.registry import (
    FEATURE_NAMES,
    FEATURE_VERSION,
    GROUPS,
    MIN_HISTORY_BARS,
    REGISTRY,
    WARMUP_BARS,
    FeatureSpec,
)

if TYPE_CHECKING:
    from ploutos_core.features.compute import (
        compute_features,
        compute_features_many,
        feature_dates,
    )

_COMPUTE = ("compute_features", "compute_features_many", "feature_dates")

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


def __getattr__(name: str) -> Any:
    if name in _COMPUTE:
        from ploutos_core.features import compute

        return getattr(compute, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
