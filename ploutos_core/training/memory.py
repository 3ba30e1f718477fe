"""The memory guard: estimate what a training run needs and refuse one that cannot fit.

Checked from the config and the universe alone, before anything large is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import psutil
import torch

from ploutos_core.config import TrainingConfig
from ploutos_core.env.layout import PORTFOLIO_VALUES, observation_size, ticker_inputs
from ploutos_core.errors import ResourceLimitError

__all__ = ["MemoryEstimate", "check_memory", "estimate_memory", "gib"]

GIB = 1024**3


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training run needs beyond the market data already loaded."""

    n_tickers: int
    obs_size: int
    rollout_buffer: int
    policy: int
    environment: int
    overhead: float = 1.2

    @property
    def host(self) -> int:
        """Bytes of host memory when the policy lives on the CPU."""
        return math.ceil((self.rollout_buffer + self.policy + self.environment) * self.overhead)

    def describe(self, config: TrainingConfig) -> str:
        return (
            f"rollout buffer {gib(self.rollout_buffer)} (n_envs={config.n_envs} x "
            f"n_steps={config.n_steps} x {self.obs_size:,} observation floats for "
            f"{self.n_tickers} tickers), policy and optimizer {gib(self.policy)} "
            f"(net_arch={config.net_arch}), environment {gib(self.environment)}"
        )


def gib(n_bytes: float) -> str:
    """``n_bytes`` for a message, e.g. ``1.25 GiB``."""
    return f"{n_bytes / GIB:.2f} GiB"


def estimate_memory(
    config: TrainingConfig, n_tickers: int, n_features: int, n_dates: int
) -> MemoryEstimate:
    """Estimate the memory a run needs, from the config and the universe alone.

    - Rollout buffer: SB3 stores observations, actions (one per ticker) and six per-sample
      scalars as float32 for ``n_envs * n_steps`` samples, and the first minibatch pass makes a
      flattened copy of all of them: x2.
    - Policy: the ticker encoder's shared layers (if any), then separate actor and critic MLPs
      (``net_arch`` each); for ``policy: shared``, the per-ticker layers, the shared actor head
      and the critic on the context, a size independent of the universe. Per parameter the
      weight, its gradient, Adam's two moments and the NaN guard's copy of weight and moments:
      7 floats. Plus a minibatch's activations, forward and backward.
    - Environment: VecNormalize works in float64 on ``n_envs`` observations (a few copies per
      step), and the environment keeps per-sub-environment state of a few values per ticker.
    """
    obs = observation_size(n_tickers, n_features)
    samples = config.n_envs * config.n_steps
    rollout = 2 * samples * (obs + n_tickers + 6) * 4
    if config.policy == "shared":
        params, per_sample = _shared_policy(config, n_tickers, n_features)
        per_sample += obs
    else:
        encoder = [ticker_inputs(n_features), *config.ticker_encoder]
        encoding = config.policy == "encoder"
        encoded = n_tickers * encoder[-1] + PORTFOLIO_VALUES if encoding else obs
        layers = [encoded, *config.net_arch]
        mlp = _dense_parameters(layers)
        heads = (config.net_arch[-1] + 1) * (3 * n_tickers + 1)
        params = 2 * mlp + heads + (_dense_parameters(encoder) if encoding else 0)
        codes = n_tickers * sum(config.ticker_encoder) if encoding else 0
        per_sample = obs + codes + 2 * sum(config.net_arch) + 3 * n_tickers
    activations = config.batch_size * per_sample * 4 * 3
    policy = params * 4 * 7 + activations
    environment = config.n_envs * (obs * 8 * 4 + n_tickers * 8 * 8) + n_dates * 8
    return MemoryEstimate(n_tickers, obs, rollout, policy, environment)


def _shared_policy(config: TrainingConfig, n_tickers: int, n_features: int) -> tuple[int, int]:
    """Parameters of :class:`~ploutos_core.training.policies.SharedTickerPolicy` (independent of
    the universe) and the activations per sample beyond the observation (per ticker: its codes,
    its head's input and hidden layers and its logits, and its attention score's layers)."""
    from ploutos_core.training.policies import CHOICES, SHARED_HEAD

    code = config.ticker_encoder[-1]
    context = 2 * code + PORTFOLIO_VALUES
    encoder = [ticker_inputs(n_features), *config.ticker_encoder]
    head = [code + context, *SHARED_HEAD, CHOICES]
    critic = [context, *config.net_arch, 1]
    attention = [code, code, 1] if config.pooling == "attention" else []
    params = (
        _dense_parameters(encoder)
        + _dense_parameters(head)
        + _dense_parameters(critic)
        + _dense_parameters(attention)
    )
    per_ticker = sum(config.ticker_encoder) + sum(head) + sum(attention[1:])
    return params, n_tickers * per_ticker + sum(critic)


def _dense_parameters(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))


def check_memory(
    estimate: MemoryEstimate,
    config: TrainingConfig,
    device: torch.device,
    *,
    available: int | None = None,
) -> None:
    """Refuse a run whose estimate exceeds the available memory.

    Parameters
    ----------
    estimate:
        From :func:`estimate_memory`.
    config:
        The run's config (named in the message).
    device:
        Where the policy will live; on CUDA the policy is checked against the GPU's free memory.
    available:
        Available host memory in bytes; default: ``psutil.virtual_memory().available``.

    Raises
    ------
    ResourceLimitError
        Naming ``n_envs``, ``n_steps`` and the universe size and how to make the run fit.
    """
    if available is None:
        available = psutil.virtual_memory().available
    on_gpu = device.type == "cuda"
    host = estimate.host
    if on_gpu:
        host = math.ceil((estimate.rollout_buffer + estimate.environment) * estimate.overhead)
    fix = "lower n_envs or n_steps, train on fewer tickers, use a smaller net_arch, or free memory"
    if host > available:
        raise ResourceLimitError(
            f"training would need about {gib(host)} of memory but {gib(available)} is "
            f"available: {estimate.describe(config)}; {fix}"
        )
    if on_gpu:
        free, _ = torch.cuda.mem_get_info(device)
        gpu = math.ceil(estimate.policy * estimate.overhead)
        if gpu > free:
            raise ResourceLimitError(
                f"the policy would need about {gib(gpu)} of GPU memory on {device} but "
                f"{gib(free)} is free: {estimate.describe(config)}; {fix}"
            )
