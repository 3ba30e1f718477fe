"""Whether a market fits a saved model: the same features in the same order, the same tickers.

Observations are never truncated or padded to fit; every difference is named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ploutos_core.artifacts.model_dir import MANIFEST
from ploutos_core.errors import ManifestError
from ploutos_core.market import MarketData


def _list_difference(kind: str, saved: list[str], current: list[str], source: str) -> str | None:
    if saved == current:
        return None
    missing = [name for name in saved if name not in set(current)]
    extra = [name for name in current if name not in set(saved)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} {kind} of the model are missing from the data: {missing[:8]}")
    if extra:
        parts.append(f"{len(extra)} {kind} in the data are unknown to the model: {extra[:8]}")
    if not parts:
        position = next(i for i, (a, b) in enumerate(zip(saved, current, strict=False)) if a != b)
        parts.append(
            f"the {kind} are in a different order: position {position} is "
            f"{saved[position]!r} in {source} but {current[position]!r} in the data"
        )
    return "; ".join(parts)


def check_manifest(manifest: Mapping[str, Any], market: MarketData, source: str = MANIFEST) -> None:
    """Refuse a market whose features, feature order or tickers differ from the model's.

    Observations are never truncated or padded to fit: the data must hold exactly the model's
    tickers and features, in the model's order.

    Raises
    ------
    ManifestError
        Naming every difference (missing, unknown, or the first position out of order).
    """
    problems = [
        _list_difference("features", list(manifest["feature_names"]), list(market.feature_names),
                         source),
        _list_difference("tickers", list(manifest["tickers"]), list(market.tickers), source),
    ]
    problems = [p for p in problems if p]
    if problems:
        raise ManifestError(
            f"the data does not match the model's {source}: " + "; ".join(problems)
            + ". Backtest on the data the model was trained on (same tickers and feature "
            "registry), or retrain the model"
        )


def check_resume_universe(resume: Path, market: MarketData) -> None:
    manifest_path = resume.parent / MANIFEST
    if not manifest_path.exists():
        return
    saved = json.loads(manifest_path.read_text())
    ours = {"tickers": list(market.tickers), "feature_names": list(market.feature_names)}
    for key, current in ours.items():
        theirs = saved.get(key)
        if theirs is None or theirs == current:
            continue
        missing = sorted(set(theirs) - set(current))[:5]
        new = sorted(set(current) - set(theirs))[:5]
        difference = f"missing now {missing}, new {new}" if missing or new else "other order"
        raise ManifestError(
            f"{resume} was trained on different {key} (see {manifest_path}): {difference}; "
            "resume with the data the model was trained on"
        )
