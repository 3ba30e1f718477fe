"""The model directory: the contract between training and everything after it.

- :mod:`.model_dir`: :class:`ModelDir`, the only place that knows a model directory's file names
- :mod:`.manifest`: :class:`Manifest`, what the model was trained on and how
- :mod:`.saved_model`: saving a model with its statistics; loading one for evaluation
- :mod:`.compatibility`: whether a market fits a saved model
"""

from importlib import import_module
from typing import TYPE_CHECKING

from ploutos_core.artifacts.compatibility import check_compatible
from ploutos_core.artifacts.manifest import Manifest, Period, library_versions
from ploutos_core.artifacts.model_dir import ModelDir, stats_path_for

if TYPE_CHECKING:
    from ploutos_core.artifacts.saved_model import TrainedModel, load_trained_model, save_model

# Saving and loading import Stable-Baselines3 (and so torch): loaded on first use, so that readers
# of manifests and model directories (the Dagster code location) start fast.
_LAZY = frozenset({"TrainedModel", "load_trained_model", "save_model"})


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module("ploutos_core.artifacts.saved_model"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Manifest",
    "ModelDir",
    "Period",
    "TrainedModel",
    "check_compatible",
    "library_versions",
    "load_trained_model",
    "save_model",
    "stats_path_for",
]
