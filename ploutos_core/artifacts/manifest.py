"""The manifest: what a model was trained on and how, written by training and read by every
later stage.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

from ploutos_core.artifacts.model_dir import (
    MANIFEST,
)
from ploutos_core.errors import ManifestError


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on, for the manifest."""
    versions = {"python": platform.python_version()}
    for key, dist in (
        ("numpy", "numpy"),
        ("pandas", "pandas"),
        ("torch", "torch"),
        ("stable_baselines3", "stable-baselines3"),
        ("gymnasium", "gymnasium"),
        ("pandas_ta", "pandas-ta"),
        ("ploutos", "ploutos"),
    ):
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = "not installed"
    return versions


_MANIFEST_KEYS = ("feature_names", "tickers", "train_period", "test_period", "config")


def _read_manifest(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ManifestError(
            f"no {MANIFEST} beside the model ({path}); a model directory written by "
            "`ploutos train` or the trained_model asset has one"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    missing = [key for key in _MANIFEST_KEYS if key not in manifest]
    if missing:
        raise ManifestError(f"{path} lacks the keys {missing}; retrain the model to rewrite it")
    return manifest
