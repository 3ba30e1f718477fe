"""PPO training: :func:`train` and its building blocks.

- :mod:`.run`: :func:`train`, the orchestration, and :class:`TrainingResult`
- :mod:`.model`: the normalized environment, the PPO model, its schedule and resuming
- :mod:`.device`: resolving ``device: auto | cpu | cuda | cuda:N``
- :mod:`.interruption`: SIGTERM as an exception, so the interrupted model is saved
- :mod:`.callbacks`: checkpoints, the NaN guard, episode statistics, progress, phase timing,
  stopping when asked (a terminated run)
- :mod:`.encoders`: the per-ticker encoder in front of the policy's MLPs
- :mod:`.distributions`: the batched per-ticker action distribution
- :mod:`.normalization`: VecNormalize in float32
- :mod:`.memory`: the memory guard
"""

from ploutos_core.training.callbacks import StopWhenAsked
from ploutos_core.training.device import select_device
from ploutos_core.training.interruption import StopRequested, TrainingInterrupted
from ploutos_core.training.model import (
    build_env,
    build_model,
    learning_rate_schedule,
    policy_kwargs,
)
from ploutos_core.training.run import TrainingResult, train

__all__ = [
    "StopRequested",
    "StopWhenAsked",
    "TrainingInterrupted",
    "TrainingResult",
    "build_env",
    "build_model",
    "learning_rate_schedule",
    "policy_kwargs",
    "select_device",
    "train",
]
