"""The model directory: the contract between training and everything after it.

- :mod:`.model_dir`: the file names of a model directory
- :mod:`.manifest`: what the model was trained on and how
- :mod:`.saved_model`: saving a model with its statistics; loading one for evaluation
- :mod:`.compatibility`: whether a market fits a saved model
"""

from ploutos_core.artifacts.compatibility import check_manifest, check_resume_universe
from ploutos_core.artifacts.manifest import library_versions
from ploutos_core.artifacts.model_dir import stats_path_for
from ploutos_core.artifacts.saved_model import TrainedModel, load_trained_model, save_model

__all__ = [
    "TrainedModel",
    "check_manifest",
    "check_resume_universe",
    "library_versions",
    "load_trained_model",
    "save_model",
    "stats_path_for",
]
