"""``train``: the one training routine behind ``ploutos train``, the ``trained_model`` Dagster
asset and the weekly retrain.

It writes one model directory (its files are listed in :mod:`ploutos_core.artifacts.model_dir`).
The device (:mod:`.device`), the environment and model (:mod:`.model`), the memory guard
(:mod:`.memory`), interruption (:mod:`.interruption`) and the callbacks (:mod:`.callbacks`) live in
their own modules.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.utils import safe_mean

from ploutos_core.artifacts import check_resume_universe, library_versions
from ploutos_core.artifacts.model_dir import FINAL_MODEL, INTERRUPTED_MODEL, stats_path_for
from ploutos_core.artifacts.saved_model import save_model
from ploutos_core.config import TrainingConfig
from ploutos_core.errors import ConfigError, ManifestError, TrainingError
from ploutos_core.market import MarketData
from ploutos_core.market.split import Split, split_periods
from ploutos_core.storage import write_json_atomic
from ploutos_core.training.callbacks import (
    CheckpointEvery,
    EpisodeStatsLogger,
    NanGuard,
    PhaseTimer,
    ProgressLogger,
    RolloutThreads,
)
from ploutos_core.training.device import select_device
from ploutos_core.training.distributions import distribution_checks_off
from ploutos_core.training.interruption import sigterm_interrupts
from ploutos_core.training.memory import check_memory, estimate_memory, gib
from ploutos_core.training.model import build_env, build_model

MANIFEST = "manifest.json"


TENSORBOARD_DIR = "tensorboard"


TB_RUN_NAME = "ppo"


def _ep_rew_mean(model: PPO) -> float | None:
    buffer = model.ep_info_buffer
    if not buffer:
        return None
    return float(safe_mean([info["r"] for info in buffer]))


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
        check_resume_universe(resume, market)

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
    with sigterm_interrupts(), distribution_checks_off():
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
