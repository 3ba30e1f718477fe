"""PPO training: the date split, the memory guard, device selection, the model, and ``train``.

``train`` is the one training routine behind ``ploutos train``, the ``trained_model`` Dagster
asset and the weekly retrain. It writes into one model directory::

    final_model.zip, vecnormalize.pkl          the trained policy and its observation statistics
    manifest.json                              what the model was trained on, and how
    checkpoint_<steps>_steps.zip (+ stats)     every ``checkpoint_freq`` timesteps
    interrupted_model.zip (+ stats)            when training is interrupted
    tensorboard/                               learning curves
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import math
import platform
import shutil
import signal
import threading
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.distributions import MultiCategoricalDistribution
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule, safe_mean
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.callbacks import (
    FINAL_MODEL,
    INTERRUPTED_MODEL,
    CheckpointEvery,
    EpisodeStatsLogger,
    NanGuard,
    PhaseTimer,
    ProgressLogger,
    RolloutThreads,
    save_model,
    stats_path_for,
)
from ploutos_core.config import SplitConfig, TrainingConfig
from ploutos_core.env import MarketData, PortfolioVecEnv
from ploutos_core.errors import ConfigError, ManifestError, ResourceLimitError, TrainingError
from ploutos_core.storage import write_json_atomic

__all__ = [
    "BatchedMultiCategoricalDistribution",
    "Float32VecNormalize",
    "MemoryEstimate",
    "Split",
    "TrainingInterrupted",
    "TrainingResult",
    "build_env",
    "build_model",
    "check_memory",
    "distribution_checks_off",
    "estimate_memory",
    "learning_rate_schedule",
    "library_versions",
    "select_device",
    "split_periods",
    "stats_path_for",
    "train",
    "use_batched_distribution",
]

MANIFEST = "manifest.json"
TENSORBOARD_DIR = "tensorboard"
TB_RUN_NAME = "ppo"
GIB = 1024**3


# ---------------------------------------------------------------------------------------------
# Split


@dataclass(frozen=True)
class Split:
    """Inclusive training and test periods as ISO dates (YYYY-MM-DD)."""

    train_start: str
    train_end: str
    test_start: str
    test_end: str


def _iso(date: np.datetime64) -> str:
    return str(np.datetime64(date, "D"))


def split_periods(dates: np.ndarray, split: SplitConfig) -> Split:
    """Split sorted trading dates into a training period, an embargo gap and a test period.

    With ``split.train_end`` the training period ends on the last date <= ``train_end``;
    otherwise the test period is the last ``test_fraction`` of the dates. ``embargo_days``
    bars between the two are used by neither, so features computed over trailing windows at
    the start of the test period do not overlap the bars the agent was trained on.

    Parameters
    ----------
    dates:
        Strictly increasing trading dates (``MarketData.dates``).
    split:
        The split settings.

    Raises
    ------
    ConfigError
        When either period would be empty (or training shorter than two bars).
    """
    days = np.asarray(dates).astype("datetime64[D]")
    n = len(days)
    if n == 0:
        raise ConfigError("cannot split an empty date range: the market has no trading dates")
    span = f"the data has {n} trading dates from {_iso(days[0])} to {_iso(days[-1])}"
    if split.train_end is not None:
        n_train = int(np.searchsorted(days, np.datetime64(split.train_end, "D"), side="right"))
        where = f"split.train_end {split.train_end}"
    else:
        n_test = max(1, round(n * split.test_fraction))
        n_train = n - n_test - split.embargo_days
        where = f"split.test_fraction {split.test_fraction} and split.embargo_days"
    test_first = n_train + split.embargo_days
    if n_train < 2:
        raise ConfigError(
            f"{where} leave {max(n_train, 0)} training dates ({span}); move split.train_end "
            "later or lower split.test_fraction / split.embargo_days"
        )
    if test_first >= n:
        raise ConfigError(
            f"{where} with split.embargo_days={split.embargo_days} leave no test dates "
            f"({span}; training ends {_iso(days[n_train - 1])}); move split.train_end earlier "
            "or lower split.embargo_days"
        )
    return Split(_iso(days[0]), _iso(days[n_train - 1]), _iso(days[test_first]), _iso(days[-1]))


# ---------------------------------------------------------------------------------------------
# Memory guard


def observation_size(n_tickers: int, n_features: int) -> int:
    """Length of the flat observation: features, position weights, unrealized returns, 3 scalars."""
    return n_tickers * n_features + 2 * n_tickers + 3


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
            f"rollout buffer {_gib(self.rollout_buffer)} (n_envs={config.n_envs} x "
            f"n_steps={config.n_steps} x {self.obs_size:,} observation floats for "
            f"{self.n_tickers} tickers), policy and optimizer {_gib(self.policy)} "
            f"(net_arch={config.net_arch}), environment {_gib(self.environment)}"
        )


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / GIB:.2f} GiB"


def estimate_memory(
    config: TrainingConfig, n_tickers: int, n_features: int, n_dates: int
) -> MemoryEstimate:
    """Estimate the memory a run needs, from the config and the universe alone.

    - Rollout buffer: SB3 stores observations, actions (one per ticker) and six per-sample
      scalars as float32 for ``n_envs * n_steps`` samples, and the first minibatch pass makes a
      flattened copy of all of them: x2.
    - Policy: separate actor and critic MLPs (``net_arch`` each); per parameter the weight, its
      gradient, Adam's two moments and the NaN guard's copy of weight and moments: 7 floats.
      Plus a minibatch's activations, forward and backward.
    - Environment: VecNormalize works in float64 on ``n_envs`` observations (a few copies per
      step), and the environment keeps per-sub-environment state of a few values per ticker.
    """
    obs = observation_size(n_tickers, n_features)
    samples = config.n_envs * config.n_steps
    rollout = 2 * samples * (obs + n_tickers + 6) * 4
    layers = [obs, *config.net_arch]
    mlp = sum(a * b + b for a, b in zip(layers, layers[1:], strict=False))
    heads = (config.net_arch[-1] + 1) * (3 * n_tickers + 1)
    params = 2 * mlp + heads
    activations = config.batch_size * (obs + 2 * sum(config.net_arch) + 3 * n_tickers) * 4 * 3
    policy = params * 4 * 7 + activations
    environment = config.n_envs * (obs * 8 * 4 + n_tickers * 8 * 8) + n_dates * 8
    return MemoryEstimate(n_tickers, obs, rollout, policy, environment)


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
            f"training would need about {_gib(host)} of memory but {_gib(available)} is "
            f"available: {estimate.describe(config)}; {fix}"
        )
    if on_gpu:
        free, _ = torch.cuda.mem_get_info(device)
        gpu = math.ceil(estimate.policy * estimate.overhead)
        if gpu > free:
            raise ResourceLimitError(
                f"the policy would need about {_gib(gpu)} of GPU memory on {device} but "
                f"{_gib(free)} is free: {estimate.describe(config)}; {fix}"
            )


# ---------------------------------------------------------------------------------------------
# Device


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


# ---------------------------------------------------------------------------------------------
# Policy distribution


class BatchedMultiCategoricalDistribution(MultiCategoricalDistribution):
    """SB3's ``MultiCategoricalDistribution`` for equal-sized sub-spaces, on one tensor.

    The same distribution (independent categoricals, one per ticker, over hold/buy/sell) with
    the same logits layer and parameters, so saved models are plain ``MlpPolicy`` models. SB3
    builds a Python list of one ``torch.distributions.Categorical`` per ticker at every step and
    every minibatch; at 500 tickers that loop costs more than the environment. This computes the
    log-probabilities of all tickers as one ``[batch, tickers, choices]`` tensor.
    """

    def __init__(self, action_dims: list[int]) -> None:
        super().__init__(action_dims)
        if len(set(action_dims)) != 1:
            raise ValueError(f"sub-spaces must have one size, got {sorted(set(action_dims))}")
        self.n_choices = int(action_dims[0])
        self.log_probs = torch.empty(0)

    def proba_distribution(
        self, action_logits: torch.Tensor
    ) -> BatchedMultiCategoricalDistribution:
        logits = action_logits.view(action_logits.shape[0], -1, self.n_choices)
        self.log_probs = logits - logits.logsumexp(dim=-1, keepdim=True)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        chosen = self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return chosen.sum(dim=1)

    def entropy(self) -> torch.Tensor:
        return -(self.log_probs.exp() * self.log_probs).sum(dim=(1, 2))

    def sample(self) -> torch.Tensor:
        probs = self.log_probs.exp().reshape(-1, self.n_choices)
        return torch.multinomial(probs, 1).view(self.log_probs.shape[:2])

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(dim=-1)


def use_batched_distribution(policy: ActorCriticPolicy) -> None:
    """Give ``policy`` the batched distribution when its action space allows it (ours does)."""
    dist = policy.action_dist
    if isinstance(dist, MultiCategoricalDistribution) and len(set(dist.action_dims)) == 1:
        policy.action_dist = BatchedMultiCategoricalDistribution(list(dist.action_dims))


# ---------------------------------------------------------------------------------------------
# Environment and model


class Float32VecNormalize(VecNormalize):
    """``VecNormalize`` that normalizes float32 observations in float32.

    SB3 keeps its running statistics in float64, normalizes in float64 and casts the result to
    float32: at 500 tickers that is 6.6 ms of a 35 ms rollout step on a CPU, against 0.6 ms in
    float32 (measured). The statistics stay float64 and are updated exactly as SB3 updates them;
    only the normalization arithmetic is float32, so results match SB3's to float32 rounding.
    Saved, loaded (``VecNormalize.load``) and used like ``VecNormalize``.
    """

    def _normalize_obs(self, obs: np.ndarray, obs_rms: RunningMeanStd) -> np.ndarray:
        if obs.dtype != np.float32:
            return super()._normalize_obs(obs, obs_rms)
        mean = obs_rms.mean.astype(np.float32)
        scale = (1.0 / np.sqrt(obs_rms.var + self.epsilon)).astype(np.float32)
        normalized = obs - mean
        normalized *= scale
        return np.clip(normalized, -self.clip_obs, self.clip_obs, out=normalized)

    def normalize_obs(self, obs: np.ndarray | dict[str, np.ndarray]) -> Any:
        # SB3 deep-copies the observation first; _normalize_obs already returns a new array.
        if self.norm_obs and isinstance(obs, np.ndarray) and obs.dtype == np.float32:
            return self._normalize_obs(obs, self.obs_rms)
        return super().normalize_obs(obs)


def build_env(
    config: TrainingConfig, market: MarketData, *, stats: Path | None = None
) -> VecNormalize:
    """``PortfolioVecEnv`` over ``market`` wrapped in a training-mode
    :class:`Float32VecNormalize`.

    Parameters
    ----------
    config:
        Training config (``n_envs``, ``env``, ``seed``, ``clip_obs``, ``gamma``).
    market:
        The training period only: the normalization statistics are fitted on it.
    stats:
        Saved statistics to continue from (resume), instead of fresh ones.
    """
    venv = PortfolioVecEnv(market, config.env, n_envs=config.n_envs, seed=config.seed)
    if stats is None:
        return Float32VecNormalize(
            venv,
            norm_obs=True,
            norm_reward=True,
            clip_obs=config.clip_obs,
            clip_reward=config.clip_obs,
            gamma=config.gamma,
        )
    if not stats.exists():
        raise ManifestError(
            f"no VecNormalize statistics at {stats}: a model is resumed together with the "
            "statistics saved beside it"
        )
    env = VecNormalize.load(str(stats), venv)
    env.training = True
    env.norm_reward = True
    return env


def learning_rate_schedule(config: TrainingConfig) -> LinearSchedule | ConstantSchedule:
    """``learning_rate`` decayed linearly to 0 over ``total_timesteps``, or held constant.

    SB3 evaluates it at ``progress_remaining = 1 - num_timesteps / total``; on resume
    (``reset_num_timesteps=False``) ``total`` is the saved count plus the remaining timesteps,
    i.e. ``total_timesteps`` again, so a resumed run follows the same schedule.
    """
    if config.lr_schedule == "linear":
        return LinearSchedule(config.learning_rate, 0.0, 1.0)
    return ConstantSchedule(config.learning_rate)


def _ppo_settings(config: TrainingConfig) -> dict[str, Any]:
    return {
        "learning_rate": learning_rate_schedule(config),
        "n_steps": config.n_steps,
        "batch_size": config.batch_size,
        "n_epochs": config.n_epochs,
        "gamma": config.gamma,
        "gae_lambda": config.gae_lambda,
        "clip_range": config.clip_range,
        "ent_coef": config.ent_coef,
        "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm,
    }


def build_model(
    config: TrainingConfig,
    env: VecNormalize,
    device: torch.device,
    tensorboard_dir: Path,
    *,
    resume: Path | None = None,
) -> PPO:
    """A new PPO ``MlpPolicy`` from ``config``, or the model at ``resume`` continued on ``env``.

    A resumed model keeps its weights, optimizer state and timestep count and takes the
    config's PPO settings (schedule, batch size, epochs, coefficients); its network shape must
    match ``config.net_arch``. Either way the policy samples through
    :class:`BatchedMultiCategoricalDistribution`.
    """
    if resume is None:
        model = _new_model(config, env, device, tensorboard_dir)
    else:
        model = _load_model(config, env, device, tensorboard_dir, resume)
    use_batched_distribution(model.policy)
    return model


def _new_model(
    config: TrainingConfig, env: VecNormalize, device: torch.device, tensorboard_dir: Path
) -> PPO:
    return PPO(
        "MlpPolicy",
        env,
        policy_kwargs={"net_arch": list(config.net_arch)},
        tensorboard_log=str(tensorboard_dir),
        seed=config.seed,
        device=device,
        verbose=0,
        **_ppo_settings(config),
    )


def _load_model(
    config: TrainingConfig,
    env: VecNormalize,
    device: torch.device,
    tensorboard_dir: Path,
    resume: Path,
) -> PPO:
    settings = _ppo_settings(config)
    try:
        model = PPO.load(
            resume,
            env=env,
            device=device,
            custom_objects={"learning_rate": settings.pop("learning_rate")},
            tensorboard_log=str(tensorboard_dir),
            **settings,
        )
    except ValueError as exc:
        if "spaces do not match" not in str(exc):
            raise
        raise ManifestError(
            f"{resume} was trained on a different universe ({exc}); resume with the same "
            "data, tickers and features"
        ) from None
    saved_arch = model.policy_kwargs.get("net_arch")
    if saved_arch is not None and list(saved_arch) != list(config.net_arch):
        raise ConfigError(
            f"{resume} has net_arch {saved_arch} but the config says {config.net_arch}; "
            "resume with the config the model was trained with"
        )
    return model


# ---------------------------------------------------------------------------------------------
# Interruption


class TrainingInterrupted(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives during training."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"received signal {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Turn SIGTERM into :class:`TrainingInterrupted` while training, in the main thread.

    An existing handler (Dagster's run worker installs its own) is left alone: it already turns
    termination into an exception that ``train`` treats as an interruption.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def raise_interrupt(signum: int, frame: object) -> None:
        raise TrainingInterrupted(signum)

    previous = signal.signal(signal.SIGTERM, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def distribution_checks_off() -> Iterator[None]:
    """Let NaN reach the NaN guard instead of torch's distribution argument validation.

    With validation on, a NaN in the policy raises ``ValueError`` from inside PPO's update
    before the guard can see it, restore the last good parameters or say what happened.
    """
    previous = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        torch.distributions.Distribution.set_default_validate_args(previous)


# ---------------------------------------------------------------------------------------------
# Manifest


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


def _ep_rew_mean(model: PPO) -> float | None:
    buffer = model.ep_info_buffer
    if not buffer:
        return None
    return float(safe_mean([info["r"] for info in buffer]))


# ---------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced (paths) and how it went (figures)."""

    output_dir: Path
    model_path: Path
    stats_path: Path
    manifest_path: Path
    tensorboard_dir: Path
    timesteps: int
    wall_time_s: float
    steps_per_second: float
    rollout_time_s: float
    update_time_s: float
    device: str
    ep_rew_mean: float | None
    checkpoints: tuple[Path, ...]


def _copy_tensorboard(resume: Path, tensorboard_dir: Path) -> None:
    """Continue the resumed run's curves: copy its event files into a new model directory."""
    source = resume.parent / TENSORBOARD_DIR
    if source.is_dir() and source.resolve() != tensorboard_dir.resolve():
        shutil.copytree(source, tensorboard_dir, dirs_exist_ok=True)


def _check_resume_universe(resume: Path, market: MarketData) -> None:
    manifest_path = resume.parent / MANIFEST
    if not manifest_path.exists():
        return
    saved = json.loads(manifest_path.read_text())
    ours = {"tickers": list(market.tickers), "feature_names": list(market.feature_names)}
    for key, current in ours.items():
        theirs = saved.get(key)
        if theirs is None or theirs == current:
            continue
        missing = sorted(set(theirs) - set(current))[:5]
        new = sorted(set(current) - set(theirs))[:5]
        difference = f"missing now {missing}, new {new}" if missing or new else "other order"
        raise ManifestError(
            f"{resume} was trained on different {key} (see {manifest_path}): {difference}; "
            "resume with the data the model was trained on"
        )


def _manifest(
    config: TrainingConfig,
    market: MarketData,
    split: Split,
    device: torch.device,
    resume: Path | None,
    timesteps: int,
) -> dict[str, Any]:
    """The manifest as written when training starts; figures are added when it ends."""
    return {
        "status": "training",
        "model": None,
        "vecnormalize": None,
        "feature_names": list(market.feature_names),
        "tickers": list(market.tickers),
        "train_period": {"start": split.train_start, "end": split.train_end},
        "test_period": {"start": split.test_start, "end": split.test_end},
        "embargo_days": config.split.embargo_days,
        "config": config.model_dump(),
        "seed": config.seed,
        "versions": library_versions(),
        "device": str(device),
        "resumed_from": str(resume) if resume is not None else None,
        "timesteps": timesteps,
    }


def _last_good(checkpoint: Path | None) -> str:
    if checkpoint is None:
        return "no checkpoint was saved before it"
    return f"the last good checkpoint is {checkpoint}"


def _is_non_finite_failure(exc: BaseException) -> bool:
    """torch's complaint about NaN/inf probabilities or logits, raised inside a rollout."""
    text = str(exc).lower()
    return isinstance(exc, (RuntimeError, ValueError)) and (
        "nan" in text or "inf" in text or "invalid values" in text
    )


def _non_finite_error(model: PPO, exc: BaseException, last: Path | None) -> TrainingError:
    vec_normalize = model.get_vec_normalize_env()
    source = "the policy"
    if vec_normalize is not None and not (
        np.isfinite(vec_normalize.obs_rms.mean).all()
        and np.isfinite(vec_normalize.obs_rms.var).all()
    ):
        source = "the observations (the environment returned NaN/inf, check the features)"
    return TrainingError(
        f"training stopped at {model.num_timesteps:,} timesteps: {source} produced non-finite "
        f"action probabilities during a rollout ({exc}); {_last_good(last)}"
    )


def train(
    config: TrainingConfig,
    market: MarketData,
    output_dir: str | Path,
    *,
    resume: str | Path | None = None,
    progress_bar: bool = False,
    logger: logging.Logger | None = None,
    extra_callbacks: Sequence[BaseCallback] = (),
    progress_every: float | None = 0.05,
) -> TrainingResult:
    """Train PPO on the training period of ``market`` and write the model directory.

    Parameters
    ----------
    config:
        Everything about the run (``config/training.yaml``).
    market:
        The whole market; only the training period of ``split_periods(market.dates,
        config.split)`` is used.
    output_dir:
        The model directory (created if missing; files of the same names are replaced).
    resume:
        A checkpoint or interrupted model to continue, with its statistics beside it; training
        continues its timestep count up to ``config.total_timesteps``.
    progress_bar:
        Show SB3's tqdm/rich progress bar.
    logger:
        Receives the device, progress every ``progress_every`` of the run, checkpoints and
        warnings (Dagster passes its run log).
    extra_callbacks:
        More SB3 callbacks, run after ours.
    progress_every:
        Fraction of the run between progress reports; None: no periodic reports (e.g. when a
        progress bar already shows them).

    Raises
    ------
    ResourceLimitError
        When the run would not fit in memory (checked before anything is built).
    TrainingError
        When NaN/inf were detected ``config.nan_tolerance`` times.
    BaseException
        Any interruption (KeyboardInterrupt, SIGTERM as :class:`TrainingInterrupted`, Dagster's
        ``DagsterExecutionInterruptedError``) is re-raised after ``interrupted_model.zip`` and
        its statistics are saved.
    """
    log = logger or logging.getLogger(__name__)
    output_dir = Path(output_dir)
    resume = Path(resume) if resume is not None else None
    split = split_periods(market.dates, config.split)
    train_market = market.period(split.train_start, split.train_end)
    device = select_device(config.device, log)
    estimate = estimate_memory(config, market.N, len(market.feature_names), train_market.T)
    check_memory(estimate, config, device)
    if resume is not None:
        if not resume.exists():
            raise ManifestError(f"cannot resume: {resume} does not exist")
        _check_resume_universe(resume, market)

    output_dir.mkdir(parents=True, exist_ok=True)
    tensorboard_dir = output_dir / TENSORBOARD_DIR
    if resume is not None:
        _copy_tensorboard(resume, tensorboard_dir)
    env = build_env(config, train_market, stats=None if resume is None else stats_path_for(resume))
    model = build_model(config, env, device, tensorboard_dir, resume=resume)
    start_steps = model.num_timesteps
    remaining = config.total_timesteps - start_steps
    if remaining <= 0:
        raise ConfigError(
            f"{resume} has already trained {start_steps:,} timesteps, total_timesteps is "
            f"{config.total_timesteps:,}: raise total_timesteps (--timesteps) to continue"
        )
    log.info(
        "training PPO on %s: %d tickers x %d features, train %s to %s (test %s to %s), "
        "n_envs=%d, n_steps=%d, %s timesteps%s; about %s needed",
        device,
        market.N,
        len(market.feature_names),
        split.train_start,
        split.train_end,
        split.test_start,
        split.test_end,
        config.n_envs,
        config.n_steps,
        f"{remaining:,}",
        f" from {resume} at {start_steps:,}" if resume is not None else "",
        _gib(estimate.host),
    )

    manifest = _manifest(config, market, split, device, resume, start_steps)
    manifest_path = output_dir / MANIFEST
    write_json_atomic(manifest_path, manifest)

    guard = NanGuard(config.nan_tolerance, log)
    checkpoints = CheckpointEvery(
        config.checkpoint_freq, output_dir, log, keep=config.keep_checkpoints
    )
    timer = PhaseTimer()
    reports: list[BaseCallback] = []
    if progress_every is not None:
        reports.append(ProgressLogger(log, progress_every))
    bar = ProgressBarCallback() if progress_bar else None
    if bar is not None:
        reports.append(bar)
    callbacks = CallbackList(
        [
            guard,
            checkpoints,
            EpisodeStatsLogger(),
            *reports,
            RolloutThreads(),
            timer,
            *extra_callbacks,
        ]
    )

    def finish(status: str, model_path: Path) -> dict[str, Any]:
        wall = time.perf_counter() - started
        done = model.num_timesteps - start_steps
        manifest.update(
            status=status,
            model=model_path.name,
            vecnormalize=stats_path_for(model_path).name,
            timesteps=model.num_timesteps,
            wall_time_s=round(wall, 3),
            steps_per_second=round(done / wall, 1) if wall > 0 else None,
            rollout_time_s=round(timer.rollout_s, 3),
            update_time_s=round(timer.update_s, 3),
            ep_rew_mean=_ep_rew_mean(model),
        )
        write_json_atomic(manifest_path, manifest)
        return manifest

    started = time.perf_counter()
    threads = torch.get_num_threads()
    with _sigterm_interrupts(), distribution_checks_off():
        try:
            model.learn(
                total_timesteps=remaining,
                callback=callbacks,
                tb_log_name=TB_RUN_NAME,
                reset_num_timesteps=resume is None,
            )
        except BaseException as exc:
            if isinstance(exc, Exception):
                if _is_non_finite_failure(exc):
                    raise _non_finite_error(model, exc, checkpoints.last_saved) from exc
                raise
            path = save_model(model, output_dir / INTERRUPTED_MODEL)
            finish("interrupted", path)
            log.warning(
                "training interrupted at %s timesteps (%s); saved %s and %s: continue with "
                "--resume %s",
                f"{model.num_timesteps:,}",
                type(exc).__name__,
                path,
                stats_path_for(path).name,
                path,
            )
            raise
        finally:
            if bar is not None and hasattr(bar, "pbar"):
                bar.pbar.close()  # an interrupted bar would leave the terminal's cursor hidden
            torch.set_num_threads(threads)
            env.close()

    if guard.tripped:
        keep = _last_good(checkpoints.last_saved)
        raise TrainingError(
            f"training stopped at {model.num_timesteps:,} timesteps after {guard.detections} "
            f"NaN/inf detections (last: {guard.last_problem}); {keep}. Lower learning_rate or "
            "max_grad_norm, or check the features for extreme values"
        )

    model_path = save_model(model, output_dir / FINAL_MODEL)
    figures = finish("complete", model_path)
    log.info(
        "trained %s timesteps in %.1f s (%.0f timesteps/s; rollouts %.1f s, updates %.1f s) on "
        "%s; saved %s. TensorBoard: tensorboard --logdir %s",
        f"{model.num_timesteps:,}",
        figures["wall_time_s"],
        figures["steps_per_second"] or 0.0,
        timer.rollout_s,
        timer.update_s,
        device,
        model_path,
        tensorboard_dir,
    )
    return TrainingResult(
        output_dir=output_dir,
        model_path=model_path,
        stats_path=stats_path_for(model_path),
        manifest_path=manifest_path,
        tensorboard_dir=tensorboard_dir,
        timesteps=model.num_timesteps,
        wall_time_s=figures["wall_time_s"],
        steps_per_second=figures["steps_per_second"] or 0.0,
        rollout_time_s=timer.rollout_s,
        update_time_s=timer.update_s,
        device=str(device),
        ep_rew_mean=figures["ep_rew_mean"],
        checkpoints=tuple(checkpoints.saved),
    )
