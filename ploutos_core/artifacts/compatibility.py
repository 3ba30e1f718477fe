"""Whether a market fits a saved model: the same features in the same order, computed by the same
feature definition (version), and the same tickers (any tickers for a ``shared`` policy).

Observations are never truncated or padded to fit; every difference is named.
"""

from __future__ import annotations

from collections.abc import Sequence

from ploutos_core.artifacts.manifest import Manifest
from ploutos_core.errors import ManifestError
from ploutos_core.market import MarketData

SHOWN = 8


def list_difference(kind: str, saved: Sequence[str], current: Sequence[str]) -> str | None:
    """What differs between the model's ``saved`` names and the data's ``current`` ones (None when
    they are equal): the missing ones, the unknown ones, or the first position out of order."""
    saved, current = list(saved), list(current)
    if saved == current:
        return None
    missing = [name for name in saved if name not in set(current)]
    extra = [name for name in current if name not in set(saved)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} {kind} of the model are missing from the data: "
                     f"{missing[:SHOWN]}")
    if extra:
        parts.append(f"{len(extra)} {kind} in the data are unknown to the model: {extra[:SHOWN]}")
    if not parts:
        position = next(i for i, (a, b) in enumerate(zip(saved, current, strict=False)) if a != b)
        parts.append(
            f"the {kind} are in a different order: position {position} is "
            f"{saved[position]!r} in the model but {current[position]!r} in the data"
        )
    return "; ".join(parts)


def check_compatible(
    manifest: Manifest,
    market: MarketData,
    source: str,
    fix: str,
    *,
    same_tickers: bool | None = None,
) -> None:
    """Refuse a market whose features, feature order, feature version or tickers differ from the
    model's.

    Parameters
    ----------
    manifest:
        The model's manifest.
    market:
        The data the model is asked to run on (backtest) or to continue training on (resume).
    source:
        The manifest's path, for the message.
    fix:
        What the user should do instead, ending the message.
    same_tickers:
        Whether the tickers must be the model's, in its order. By default they must unless the
        model is a ``shared`` policy, which reads any number of tickers in any order (its
        observation statistics are pooled per feature across tickers).

    Raises
    ------
    ManifestError
        Naming every difference (missing, unknown, or the first position out of order).
    """
    if same_tickers is None:
        same_tickers = manifest.policy != "shared"
    problems = [list_difference("features", manifest.feature_names, market.feature_names)]
    if manifest.feature_version != market.feature_version:
        problems.append(
            f"the model was trained on features of version {manifest.feature_version} but the "
            f"data's features are version {market.feature_version} (the feature definition or "
            "pandas-ta changed): retrain the model, or recompute the features with the code the "
            "model was trained with"
        )
    if same_tickers:
        problems.append(list_difference("tickers", manifest.tickers, market.tickers))
    elif market.N == 0:
        problems.append("the data has no tickers")
    problems = [p for p in problems if p]
    if problems:
        raise ManifestError(
            f"the data does not match the model's {source}: " + "; ".join(problems) + f". {fix}"
        )
