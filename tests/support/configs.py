"""The one tiny training config of the tests: seconds of PPO on a few tickers, every stage run.

Tests pass only what they need to differ (``tiny_training(n_epochs=2)``), so a reader sees at a
glance what a test depends on.
"""

from __future__ import annotations

from typing import Any

import yaml

from ploutos_core.config import TrainingConfig, merge, parse_config

TINY_TRAINING: dict[str, Any] = {
    "seed": 7,
    "total_timesteps": 512,
    "device": "cpu",
    "n_envs": 4,
    "n_steps": 64,
    "batch_size": 128,
    "n_epochs": 1,
    "net_arch": [32, 32],
    "checkpoint_freq": 256,
    "env": {"episode_length": 40},
}


def tiny_training_values(**overrides: Any) -> dict[str, Any]:
    """:data:`TINY_TRAINING` with ``overrides`` (nested dicts merge key by key)."""
    return merge(TINY_TRAINING, overrides)


def tiny_training(**overrides: Any) -> TrainingConfig:
    """:func:`tiny_training_values` validated into the core model."""
    return parse_config(TrainingConfig, tiny_training_values(**overrides), "the tests' tiny config")


def tiny_training_yaml(**overrides: Any) -> str:
    """:func:`tiny_training_values` as the YAML text of a ``--config`` file."""
    return yaml.safe_dump(tiny_training_values(**overrides), sort_keys=False)
