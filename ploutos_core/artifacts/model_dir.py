"""The files of a model directory, the contract between training and everything after it::

    final_model.zip, vecnormalize.pkl          the trained policy and its observation statistics
    manifest.json                              what the model was trained on, and how
    checkpoint_<steps>_steps.zip (+ stats)     every ``checkpoint_freq`` timesteps
    interrupted_model.zip (+ stats)            when training is interrupted
    tensorboard/                               learning curves

:class:`ModelDir` is the only place that knows these names; every reader and writer asks it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
TENSORBOARD_DIR = "tensorboard"
FINAL_MODEL = "final_model.zip"
FINAL_STATS = "vecnormalize.pkl"
INTERRUPTED_MODEL = "interrupted_model.zip"
CHECKPOINT_PREFIX = "checkpoint"
_CHECKPOINT = re.compile(rf"{CHECKPOINT_PREFIX}_(\d+)_steps\.zip")


def stats_path_for(model_path: str | Path) -> Path:
    """The VecNormalize statistics saved beside ``model_path``.

    ``final_model.zip`` -> ``vecnormalize.pkl`` (the training guide's names); any other model,
    e.g. ``checkpoint_4096_steps.zip`` -> ``checkpoint_4096_steps_vecnormalize.pkl``.
    """
    model_path = Path(model_path)
    if model_path.name == FINAL_MODEL:
        return model_path.with_name(FINAL_STATS)
    return model_path.with_name(f"{model_path.stem}_vecnormalize.pkl")


@dataclass(frozen=True)
class ModelDir:
    """A model directory and the paths of its files.

    Parameters
    ----------
    path:
        The directory (it need not exist yet).
    """

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, model_path: str | Path) -> ModelDir:
        """The directory a model file (final, checkpoint or interrupted) lives in."""
        return cls(Path(model_path).parent)

    @property
    def final_model(self) -> Path:
        return self.path / FINAL_MODEL

    @property
    def final_stats(self) -> Path:
        return self.path / FINAL_STATS

    @property
    def interrupted_model(self) -> Path:
        return self.path / INTERRUPTED_MODEL

    @property
    def manifest(self) -> Path:
        return self.path / MANIFEST

    @property
    def tensorboard(self) -> Path:
        return self.path / TENSORBOARD_DIR

    def checkpoint(self, timesteps: int) -> Path:
        """The checkpoint saved at ``timesteps``."""
        return self.path / f"{CHECKPOINT_PREFIX}_{timesteps}_steps.zip"

    def checkpoints(self) -> list[Path]:
        """The checkpoints in the directory, oldest (fewest timesteps) first."""
        if not self.path.is_dir():
            return []
        found = [(m, p) for p in self.path.iterdir() if (m := _CHECKPOINT.fullmatch(p.name))]
        return [path for match, path in sorted(found, key=lambda item: int(item[0][1]))]

    def model(self, name: str) -> Path:
        """A model file of this directory by its file name (as the manifest records it)."""
        return self.path / name
