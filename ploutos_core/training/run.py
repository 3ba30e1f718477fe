"""``train``: the one training routine behind ``ploutos train``, the ``trained_model`` Dagster
asset and the weekly retrain.

Four steps, each testable on its own, in the way ``OnPolicyAlgorithm.learn`` hands off to
``collect_rollouts`` and ``train``:

1. :func:`plan_training` decides everything before anything large is built (the split, the
   device, the memory check, the resume checks) into a frozen :class:`TrainingPlan`;
2. :func:`build_callbacks` makes the run's callbacks;
3. :func:`learn` runs PPO, turning non-finite rollouts and a tripped NaN guard into
   :class:`~ploutos_core.errors.TrainingError`;
4. :func:`finish` saves the model and completes the manifest, for a finished run and for an
   interrupted one alike.

It writes one model directory (:class:`~ploutos_core.artifacts.ModelDir`). The environment and
model (:mod:`.model`), the device (:mod:`.device`), the memory guard (:mod:`.memory`),
interruption (:mod:`.interruption`) and the callbacks (:mod:`.callbacks`) live in their own
modules.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, ProgressBarCallback
from stable_baselines3.common.utils import safe_mean

from ploutos_core.artifacts import (
    Manifest,
    ModelDir,
    Period,
    check_compatible,
    library_versions,
    save_model,
    stats_path_for,
)
from ploutos_core.artifacts.manifest import Status
from ploutos_core.config import TrainingConfig
from ploutos_core.errors import ConfigError, ManifestError, TrainingError
from ploutos_core.market import MarketData, Split, split_periods
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
from ploutos_core.training.interruption import interrupts_deferred, sigterm_interrupts
from ploutos_core.training.memory import MemoryEstimate, check_memory, estimate_memory, gib
from ploutos_core.training.model import build_env, build_model

TB_RUN_NAME = "ppo"


@dataclass(frozen=True)
class TrainingPlan:
    """What a run will do, decided before anything large is built.

    Attributes
    ----------
    config : TrainingConfig
    market : MarketData
        The whole market (its tickers and features define the model's universe).
    split : Split
        The training and test periods of ``market``.
    train_market : MarketData
        The training period only: the environment and its statistics see nothing else.
    device : torch.device
    model_dir : ModelDir
        Where the files go.
    resume : Path or None
        The checkpoint or interrupted model to continue.
    memory : MemoryEstimate
    """

    config: TrainingConfig
    market: MarketData
    split: Split
    train_market: MarketData
    device: torch.device
    model_dir: ModelDir
    resume: Path | None
    memory: MemoryEstimate

    def manifest(self, timesteps: int) -> Manifest:
        """The manifest as written when training starts, ``timesteps`` already trained."""
        return Manifest(
            status="training",
            tickers=self.market.tickers,
            feature_names=self.market.feature_names,
            feature_version=self.market.feature_version,
            train_period=Period(start=self.split.train_start, end=self.split.train_end),
            test_period=Period(start=self.split.test_start, end=self.split.test_end),
            config=self.config,
            versions=library_versions(),
            device=str(self.device),
            resumed_from=str(self.resume) if self.resume is not None else None,
            timesteps=timesteps,
        )


def plan_training(
    config: TrainingConfig,
    market: MarketData,
    output_dir: str | Path,
    resume: str | Path | None = None,
    log: logging.Logger | None = None,
) -> TrainingPlan:
    """Split the dates, pick the device, check memory and what a resume continues.

    Raises
    ------
    ConfigError
        When the split leaves an empty period or the device does not exist.
    ResourceLimitError
        When the run would not fit in memory.
    ManifestError
        When ``resume`` does not exist or was trained on other tickers or features.
    """
    split = split_periods(market.dates, config.split)
    train_market = market.period(split.train_start, split.train_end)
    device = select_device(config.device, log)
    memory = estimate_memory(config, market.N, market.F, train_market.T)
    check_memory(memory, config, device)
    resume = Path(resume) if resume is not None else None
    if resume is not None:
        _check_resume(resume, market)
    return TrainingPlan(
        config, market, split, train_market, device, ModelDir(Path(output_dir)), resume, memory
    )


def _check_resume(resume: Path, market: MarketData) -> None:
    if not resume.exists():
        raise ManifestError(f"cannot resume: {resume} does not exist")
    manifest_path = ModelDir.of(resume).manifest
    if manifest_path.exists():
        check_compatible(
            Manifest.read(manifest_path),
            market,
            str(manifest_path),
            f"Resume {resume.name} with the data the model was trained on",
            same_tickers=True,
        )


@dataclass(frozen=True)
class TrainingCallbacks:
    """The callbacks of a run, with the ones ``train`` reads afterwards by name."""

    guard: NanGuard
    checkpoints: CheckpointEvery
    timer: PhaseTimer
    bar: ProgressBarCallback | None
    all: CallbackList


def build_callbacks(
    plan: TrainingPlan,
    log: logging.Logger,
    *,
    progress_bar: bool = False,
    progress_every: float | None = 0.05,
    extra: Sequence[BaseCallback] = (),
) -> TrainingCallbacks:
    """The NaN guard, checkpoints, episode statistics, progress reports (a log line every
    ``progress_every`` of the run and/or a progress bar), rollout threads and phase timing, then
    ``extra``."""
    config = plan.config
    guard = NanGuard(config.nan_tolerance, log)
    checkpoints = CheckpointEvery(
        config.checkpoint_freq, plan.model_dir, log, keep=config.keep_checkpoints
    )
    timer = PhaseTimer()
    reports: list[BaseCallback] = []
    if progress_every is not None:
        reports.append(ProgressLogger(log, progress_every))
    bar = ProgressBarCallback() if progress_bar else None
    if bar is not None:
        reports.append(bar)
    callbacks = [guard, checkpoints, EpisodeStatsLogger(), *reports, RolloutThreads(), timer]
    return TrainingCallbacks(guard, checkpoints, timer, bar, CallbackList([*callbacks, *extra]))


def learn(model: PPO, plan: TrainingPlan, callbacks: TrainingCallbacks, timesteps: int) -> None:
    """Run PPO for ``timesteps`` more timesteps.

    Interruptions propagate unchanged (the caller saves the interrupted model). The progress bar
    is closed and torch's thread count restored whatever happens.

    Raises
    ------
    TrainingError
        When a rollout met non-finite action probabilities, or the NaN guard tripped.
    """
    threads = torch.get_num_threads()
    with sigterm_interrupts(), distribution_checks_off():
        try:
            model.learn(
                total_timesteps=timesteps,
                callback=callbacks.all,
                tb_log_name=TB_RUN_NAME,
                reset_num_timesteps=plan.resume is None,
            )
        except (RuntimeError, ValueError) as exc:
            if _is_non_finite_failure(exc):
                raise _non_finite_error(model, exc, callbacks.checkpoints.last_saved) from exc
            raise
        finally:
            if callbacks.bar is not None and hasattr(callbacks.bar, "pbar"):
                callbacks.bar.pbar.close()  # an interrupted bar would leave the cursor hidden
            torch.set_num_threads(threads)
    guard = callbacks.guard
    if guard.tripped:
        raise TrainingError(
            f"training stopped at {model.num_timesteps:,} timesteps after {guard.detections} "
            f"NaN/inf detections (last: {guard.last_problem}); "
            f"{_last_good(callbacks.checkpoints.last_saved)}. Lower learning_rate or "
            "max_grad_norm, or check the features for extreme values"
        )


def finish(
    model: PPO,
    manifest: Manifest,
    model_path: Path,
    status: Status,
    timer: PhaseTimer,
    wall_time_s: float,
) -> Manifest:
    """Save ``model`` (and its statistics) at ``model_path`` and write the completed manifest.

    ``manifest`` is the one written when training started; the figures count the timesteps
    trained since.
    """
    with interrupts_deferred():
        save_model(model, model_path)
    done = model.num_timesteps - manifest.timesteps
    figures: dict[str, Any] = {
        "timesteps": model.num_timesteps,
        "wall_time_s": round(wall_time_s, 3),
        "steps_per_second": round(done / wall_time_s, 1) if wall_time_s > 0 else None,
        "rollout_time_s": round(timer.rollout_s, 3),
        "update_time_s": round(timer.update_s, 3),
        "ep_rew_mean": _ep_rew_mean(model),
    }
    finished = manifest.finished(status, model_path, figures)
    finished.write(ModelDir.of(model_path).manifest)
    return finished


@dataclass(frozen=True)
class TrainingResult:
    """What a training run produced: its directory, final model, manifest and checkpoints."""

    model_dir: ModelDir
    model_path: Path
    manifest: Manifest
    checkpoints: tuple[Path, ...]

    @property
    def output_dir(self) -> Path:
        return self.model_dir.path

    @property
    def stats_path(self) -> Path:
        return stats_path_for(self.model_path)

    @property
    def manifest_path(self) -> Path:
        return self.model_dir.manifest

    @property
    def tensorboard_dir(self) -> Path:
        return self.model_dir.tensorboard

    @property
    def timesteps(self) -> int:
        return self.manifest.timesteps

    @property
    def wall_time_s(self) -> float:
        return self.manifest.wall_time_s or 0.0

    @property
    def steps_per_second(self) -> float:
        return self.manifest.steps_per_second or 0.0

    @property
    def rollout_time_s(self) -> float:
        return self.manifest.rollout_time_s or 0.0

    @property
    def update_time_s(self) -> float:
        return self.manifest.update_time_s or 0.0

    @property
    def device(self) -> str:
        return self.manifest.device

    @property
    def ep_rew_mean(self) -> float | None:
        return self.manifest.ep_rew_mean


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
    plan = plan_training(config, market, output_dir, resume, log)
    model_dir = plan.model_dir
    _prepare_directory(plan)
    stats = None if plan.resume is None else stats_path_for(plan.resume)
    env = build_env(config, plan.train_market, stats=stats)
    model = build_model(config, env, plan.device, model_dir.tensorboard, resume=plan.resume)
    remaining = _remaining_timesteps(plan, model.num_timesteps)
    _log_start(log, plan, model.num_timesteps, remaining)
    manifest = plan.manifest(model.num_timesteps)
    manifest.write(model_dir.manifest)
    callbacks = build_callbacks(
        plan, log, progress_bar=progress_bar, progress_every=progress_every, extra=extra_callbacks
    )
    started = time.perf_counter()
    try:
        learn(model, plan, callbacks, remaining)
    except Exception:
        raise
    except BaseException as exc:
        wall = time.perf_counter() - started
        path = model_dir.interrupted_model
        finish(model, manifest, path, "interrupted", callbacks.timer, wall)
        log.warning(
            "training interrupted at %s timesteps (%s); saved %s and %s: continue with --resume %s",
            f"{model.num_timesteps:,}",
            type(exc).__name__,
            path,
            stats_path_for(path).name,
            path,
        )
        raise
    finally:
        env.close()
    wall = time.perf_counter() - started
    manifest = finish(model, manifest, model_dir.final_model, "complete", callbacks.timer, wall)
    _log_end(log, manifest, model_dir)
    return TrainingResult(
        model_dir, model_dir.final_model, manifest, tuple(callbacks.checkpoints.saved)
    )


def _prepare_directory(plan: TrainingPlan) -> None:
    """Create the model directory; a resumed run continues the earlier run's TensorBoard curves."""
    tensorboard = plan.model_dir.tensorboard
    plan.model_dir.path.mkdir(parents=True, exist_ok=True)
    if plan.resume is None:
        return
    source = ModelDir.of(plan.resume).tensorboard
    if source.is_dir() and source.resolve() != tensorboard.resolve():
        shutil.copytree(source, tensorboard, dirs_exist_ok=True)


def _remaining_timesteps(plan: TrainingPlan, done: int) -> int:
    remaining = plan.config.total_timesteps - done
    if remaining <= 0:
        raise ConfigError(
            f"{plan.resume} has already trained {done:,} timesteps, total_timesteps is "
            f"{plan.config.total_timesteps:,}: raise total_timesteps (--timesteps) to continue"
        )
    return remaining


def _log_start(log: logging.Logger, plan: TrainingPlan, done: int, remaining: int) -> None:
    config, split, market = plan.config, plan.split, plan.market
    log.info(
        "training PPO on %s: %d tickers x %d features, train %s to %s (test %s to %s), "
        "n_envs=%d, n_steps=%d, %s timesteps%s; about %s needed",
        plan.device,
        market.N,
        market.F,
        split.train_start,
        split.train_end,
        split.test_start,
        split.test_end,
        config.n_envs,
        config.n_steps,
        f"{remaining:,}",
        f" from {plan.resume} at {done:,}" if plan.resume is not None else "",
        gib(plan.memory.host),
    )


def _log_end(log: logging.Logger, manifest: Manifest, model_dir: ModelDir) -> None:
    log.info(
        "trained %s timesteps in %.1f s (%.0f timesteps/s; rollouts %.1f s, updates %.1f s) on "
        "%s; saved %s. TensorBoard: tensorboard --logdir %s",
        f"{manifest.timesteps:,}",
        manifest.wall_time_s or 0.0,
        manifest.steps_per_second or 0.0,
        manifest.rollout_time_s or 0.0,
        manifest.update_time_s or 0.0,
        manifest.device,
        model_dir.final_model,
        model_dir.tensorboard,
    )


def _ep_rew_mean(model: PPO) -> float | None:
    buffer = model.ep_info_buffer
    if not buffer:
        return None
    return float(safe_mean([info["r"] for info in buffer]))


def _last_good(checkpoint: Path | None) -> str:
    if checkpoint is None:
        return "no checkpoint was saved before it"
    return f"the last good checkpoint is {checkpoint}"


def _is_non_finite_failure(exc: BaseException) -> bool:
    """torch's complaint about NaN/inf probabilities or logits, raised inside a rollout."""
    text = str(exc).lower()
    return "nan" in text or "inf" in text or "invalid values" in text


def _non_finite_error(model: PPO, exc: BaseException, last: Path | None) -> TrainingError:
    vec_normalize = model.get_vec_normalize_env()
    source = "the policy"
    if vec_normalize is not None and not vec_normalize.obs_rms.is_finite():
        source = "the observations (the environment returned NaN/inf, check the features)"
    return TrainingError(
        f"training stopped at {model.num_timesteps:,} timesteps: {source} produced non-finite "
        f"action probabilities during a rollout ({exc}); {_last_good(last)}"
    )
