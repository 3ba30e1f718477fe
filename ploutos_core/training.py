"""PPO training: device selection, the environment and model, interruption, the manifest, and
``train``.

``train`` is the one training routine behind ``ploutos train``, the ``trained_model`` Dagster
asset and the weekly retrain. It writes into one model directory::

    final_model.zip, vecnormalize.pkl          the trained policy and its observation statistics
    manifest.json                              what the model was trained on, and how
    checkpoint_<steps>_steps.zip (+ stats)     every ``checkpoint_freq`` timesteps
    interrupted_model.zip (+ stats)            when training is interrupted
    tensorboard/                               learning curves

The date split (:mod:`ploutos_core.split`), the memory guard (:mod:`ploutos_core.memory`), the
action distribution (:mod:`ploutos_core.policies`) and the observation normalization
(:mod:`ploutos_core.normalization`) live in their own modules.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
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
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
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
from ploutos_core.config import TrainingConfig
from ploutos_core.encoders import TickerEncoder
from ploutos_core.env import MarketData, PortfolioVecEnv
from ploutos_core.errors import ConfigError, ManifestError, TrainingError
from ploutos_core.memory import check_memory, estimate_memory, gib
from ploutos_core.normalization import Float32VecNormalize
from ploutos_core.policies import distribution_checks_off, use_batched_distribution
from ploutos_core.split import Split, split_periods
from ploutos_core.storage import write_json_atomic

__all__ = [
    "TrainingInterrupted",
    "TrainingResult",
    "build_env",
    "build_model",
    "learning_rate_schedule",
    "library_versions",
    "policy_kwargs",
    "select_device",
    "train",
]

MANIFEST = "manifest.json"
TENSORBOARD_DIR = "tensorboard"
TB_RUN_NAME = "ppo"


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
# Environment and model


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


def policy_kwargs(config: TrainingConfig, n_tickers: int, n_features: int) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` of ``MlpPolicy`` for ``config``: its ``net_arch``, behind a
    :class:`~ploutos_core.encoders.TickerEncoder` when ``config.ticker_encoder`` is set."""
    kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.ticker_encoder:
        kwargs["features_extractor_class"] = TickerEncoder
        kwargs["features_extractor_kwargs"] = {
            "n_tickers": n_tickers,
            "n_features": n_features,
            "widths": list(config.ticker_encoder),
        }
    return kwargs


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
    n_tickers, n_features = _universe_shape(env)
    return PPO(
        "MlpPolicy",
        env,
        policy_kwargs=policy_kwargs(config, n_tickers, n_features),
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
    saved_encoder = model.policy_kwargs.get("features_extractor_kwargs", {}).get("widths", [])
    if list(saved_encoder) != list(config.ticker_encoder):
        raise ConfigError(
            f"{resume} has ticker_encoder {list(saved_encoder)} but the config says "
            f"{config.ticker_encoder}; resume with the config the model was trained with"
        )
    return model


def _universe_shape(env: VecNormalize) -> tuple[int, int]:
    """Tickers and features per ticker of the market ``env`` trades."""
    market = env.unwrapped.market
    return market.N, len(market.feature_names)


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
        gib(estimate.host),
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
