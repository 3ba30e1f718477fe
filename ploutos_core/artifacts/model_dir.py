"""The files of a model directory, the contract between training and everything after it::

    final_model.zip, vecnormalize.pkl          the trained policy and its observation statistics
    manifest.json                              what the model was trained on, and how
    checkpoint_<steps>_steps.zip (+ stats)     every ``checkpoint_freq`` timesteps
    interrupted_model.zip (+ stats)            when training is interrupted
    tensorboard/                               learning curves
"""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"
TENSORBOARD_DIR = "tensorboard"
FINAL_MODEL = "final_model.zip"


FINAL_STATS = "vecnormalize.pkl"


INTERRUPTED_MODEL = "interrupted_model.zip"


def stats_path_for(model_path: str | Path) -> Path:
    """The VecNormalize statistics saved beside ``model_path``.

    ``final_model.zip`` -> ``vecnormalize.pkl`` (the training guide's names); any other model,
    e.g. ``checkpoint_4096_steps.zip`` -> ``checkpoint_4096_steps_vecnormalize.pkl``.
    """
    model_path = Path(model_path)
    if model_path.name == FINAL_MODEL:
        return model_path.with_name(FINAL_STATS)
    return model_path.with_name(f"{model_path.stem}_vecnormalize.pkl")
