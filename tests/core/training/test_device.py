"""Device selection: auto picks CUDA when present; an absent CUDA falls back to the CPU."""

from __future__ import annotations

import logging

import pytest
import torch

from ploutos_core.errors import ConfigError
from ploutos_core.training import select_device


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="tests the fallback on a machine without CUDA"
)
def test_cuda_without_cuda_falls_back_to_cpu_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.warns(UserWarning, match="CUDA is not available"):
        device = select_device("cuda:0", logging.getLogger("test"))
    assert device == torch.device("cpu")
    assert "CUDA is not available; training on the CPU" in caplog.text
    assert select_device("auto") == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_auto_picks_cuda_when_present() -> None:
    assert select_device("auto").type == "cuda"
    assert select_device("cuda:0") == torch.device("cuda:0")


@pytest.mark.parametrize("name", ["tpu", "gpu0", "cuda:x"])
def test_unknown_device_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match="auto, cpu, cuda or cuda:N"):
        select_device(name)
