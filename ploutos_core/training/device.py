"""Where training runs: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` resolved to a usable device."""

from __future__ import annotations

import logging
import warnings

import torch

from ploutos_core.errors import ConfigError


def select_device(requested: str, log: logging.Logger | None = None) -> torch.device:
    """Resolve ``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` to a usable torch device.

    ``auto`` picks CUDA when present. An explicit CUDA device on a machine without CUDA falls
    back to the CPU with a warning (to ``log`` and as a :class:`UserWarning`).

    Raises
    ------
    ConfigError
        For a device string that is none of the above, or a CUDA index that does not exist.
    """
    log = log or logging.getLogger(__name__)
    name = requested.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {requested!r}")
    if device.type == "cpu":
        return device
    if not torch.cuda.is_available():
        message = f"device {requested!r} requested but CUDA is not available; training on the CPU"
        log.warning(message)
        warnings.warn(message, UserWarning, stacklevel=2)
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if device.index is not None and device.index >= count:
        raise ConfigError(
            f"device {requested!r} does not exist: this machine has {count} CUDA device(s) "
            f"(cuda:0 to cuda:{count - 1})"
        )
    return device
