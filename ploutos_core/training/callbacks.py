"""Training callbacks: checkpoints counted in timesteps, the NaN guard, episode statistics,
progress reports for a run log, rollout/update phase timing, and stopping when asked.

Each callback does one thing and is cheap per environment step: the per-step hooks compare
integers or look only at the sub-environments whose episode just ended; anything heavier
(parameter scans, saving) happens once per rollout or once per checkpoint.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import safe_mean

from ploutos_core.artifacts.model_dir import ModelDir, stats_path_for
from ploutos_core.artifacts.saved_model import save_model
from ploutos_core.training.interruption import StopRequested, interrupts_deferred

# Losses PPO.train() records; the means are over every minibatch of the update, so one
# non-finite minibatch shows up in them.
LOSS_KEYS = (
    "train/loss",
    "train/policy_gradient_loss",
    "train/value_loss",
    "train/entropy_loss",
    "train/approx_kl",
)


def parameters_finite(module: torch.nn.Module) -> bool:
    """Whether every parameter of ``module`` is finite."""
    return all(bool(torch.isfinite(p).all()) for p in module.parameters())


def _non_finite_parameters(module: torch.nn.Module) -> list[str]:
    return [name for name, p in module.named_parameters() if not bool(torch.isfinite(p).all())]


class CheckpointEvery(BaseCallback):
    """Save ``<prefix>_<timesteps>_steps.zip`` and its statistics every ``save_freq`` timesteps.

    SB3's ``CheckpointCallback`` counts calls, i.e. vectorized steps of ``n_envs`` timesteps
    each; this one saves when ``num_timesteps`` crosses a multiple of ``save_freq``, so the
    cadence does not change with ``n_envs``. A model whose parameters are not finite is not
    saved, so the newest checkpoint is always a good one.

    Parameters
    ----------
    save_freq:
        Timesteps (summed over all sub-environments) between checkpoints.
    model_dir:
        The model directory the checkpoints are written to (a path or a :class:`ModelDir`).
    log:
        Where each saved checkpoint is reported.
    keep:
        Keep only the newest ``keep`` checkpoints this callback saved (with their statistics),
        deleting older ones; 0 keeps all. At 500 tickers a checkpoint is about 270 MB.
    """

    def __init__(
        self,
        save_freq: int,
        model_dir: str | Path | ModelDir,
        log: logging.Logger,
        keep: int = 0,
    ) -> None:
        super().__init__()
        if save_freq < 1:
            raise ValueError(f"save_freq must be >= 1, got {save_freq}")
        self.save_freq = save_freq
        self.model_dir = model_dir if isinstance(model_dir, ModelDir) else ModelDir(model_dir)
        self.log = log
        self.keep = keep
        self.saved: list[Path] = []
        self._next_save = save_freq

    @property
    def last_saved(self) -> Path | None:
        """The newest checkpoint this callback saved."""
        return self.saved[-1] if self.saved else None

    def _init_callback(self) -> None:
        self._next_save = (self.model.num_timesteps // self.save_freq + 1) * self.save_freq

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next_save:
            self._next_save = (self.num_timesteps // self.save_freq + 1) * self.save_freq
            path = self.model_dir.checkpoint(self.num_timesteps)
            if parameters_finite(self.model.policy):
                with interrupts_deferred():
                    self.saved.append(save_model(self.model, path))
                self.log.info("saved checkpoint %s", path)
                self._prune()
            else:
                self.log.warning("not saving %s: the policy has non-finite parameters", path.name)
        return True

    def _prune(self) -> None:
        while self.keep and len(self.saved) > self.keep:
            old = self.saved.pop(0)
            stats_path_for(old).unlink(missing_ok=True)
            old.unlink(missing_ok=True)


class NanGuard(BaseCallback):
    """Detect NaN/inf in the losses and parameters once per update, not once per step.

    PPO updates between the end of one rollout and the start of the next, so the check runs at
    each rollout start (and at the end of training), reading the losses the update just
    recorded (SB3 clears them when it writes the logs, before the next update) and scanning the
    parameters. After a good check the parameters and optimizer state are copied; after a bad
    one they are restored from that copy, so a single bad minibatch does not poison every later
    rollout. After ``tolerance`` detections the guard stops training (``tripped`` becomes True)
    and the caller reports it.

    Parameters
    ----------
    tolerance:
        Detections before training stops.
    log:
        Where detections are reported.
    """

    def __init__(self, tolerance: int, log: logging.Logger) -> None:
        super().__init__()
        self.tolerance = tolerance
        self.log = log
        self.detections = 0
        self.tripped = False
        self.last_problem = ""
        self._policy_state: dict[str, torch.Tensor] = {}
        self._optimizer_state: dict[str, Any] = {}

    def _on_training_start(self) -> None:
        self._check()

    def _on_rollout_start(self) -> None:
        self._check()

    def _on_step(self) -> bool:
        return not self.tripped

    def _on_training_end(self) -> None:
        if not self.tripped:
            self._check()

    def _problems(self) -> list[str]:
        problems = []
        values = self.model.logger.name_to_value
        for key in LOSS_KEYS:
            value = values.get(key)
            if value is not None and not math.isfinite(value):
                problems.append(f"{key}={value}")
        bad = _non_finite_parameters(self.model.policy)
        if bad:
            shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
            problems.append(f"non-finite parameters in {shown}")
        return problems

    def _check(self) -> None:
        problems = self._problems()
        if not problems:
            self._snapshot()
            return
        self.detections += 1
        self.last_problem = "; ".join(problems)
        restored = bool(self._policy_state)
        if restored:
            self._restore()
        self.log.warning(
            "NaN/inf after the update at %d timesteps (%s): detection %d of %d%s",
            self.model.num_timesteps,
            self.last_problem,
            self.detections,
            self.tolerance,
            "; restored the last finite parameters" if restored else "",
        )
        if self.detections >= self.tolerance or not restored:
            self.tripped = True

    def _snapshot(self) -> None:
        policy = self.model.policy
        self._policy_state = {k: v.detach().clone() for k, v in policy.state_dict().items()}
        self._optimizer_state = copy.deepcopy(policy.optimizer.state_dict())

    def _restore(self) -> None:
        policy = self.model.policy
        policy.load_state_dict(self._policy_state)
        # load_state_dict may keep references to the tensors it is given: hand it a copy so
        # the next update cannot write into the snapshot.
        policy.optimizer.load_state_dict(copy.deepcopy(self._optimizer_state))


class EpisodeStatsLogger(BaseCallback):
    """Log the environment's per-episode Sharpe ratio, turnover and costs to TensorBoard.

    Reads the infos of sub-environments whose episode just ended and records means over the
    last ``window`` episodes as ``rollout/ep_sharpe_mean``, ``rollout/ep_turnover_mean`` and
    ``rollout/ep_costs_mean``, beside SB3's ``rollout/ep_rew_mean`` (same window).
    """

    INFO_KEYS = {
        "episode_sharpe": "rollout/ep_sharpe_mean",
        "episode_turnover": "rollout/ep_turnover_mean",
        "episode_costs": "rollout/ep_costs_mean",
    }

    def __init__(self, window: int = 100) -> None:
        super().__init__()
        self.values: dict[str, deque[float]] = {k: deque(maxlen=window) for k in self.INFO_KEYS}

    def _on_step(self) -> bool:
        dones = self.locals["dones"]
        if dones.any():
            infos = self.locals["infos"]
            for index in np.flatnonzero(dones):
                info = infos[index]
                for key, values in self.values.items():
                    if key in info:
                        values.append(float(info[key]))
        return True

    def _on_rollout_end(self) -> None:
        for key, name in self.INFO_KEYS.items():
            if self.values[key]:
                self.logger.record(name, safe_mean(self.values[key]))


class ProgressLogger(BaseCallback):
    """Report progress through a :class:`logging.Logger` every ``every`` fraction of the run.

    Meant for logs read by people (Dagster's run log, a terminal without a progress bar): each
    line gives the timesteps done, the throughput, the mean episode reward and the time left.
    """

    def __init__(self, log: logging.Logger, every: float = 0.05) -> None:
        super().__init__()
        if not 0 < every <= 1:
            raise ValueError(f"every must be in (0, 1], got {every}")
        self.log = log
        self.every = every
        self._start_steps = 0
        self._total = 0
        self._step = 1
        self._next = 0
        self._start_time = 0.0

    def _on_training_start(self) -> None:
        self._start_steps = self.model.num_timesteps
        self._total = int(self.locals["total_timesteps"])
        self._step = max(1, math.ceil((self._total - self._start_steps) * self.every))
        self._next = self._start_steps + self._step
        self._start_time = time.perf_counter()

    def _on_step(self) -> bool:
        if self.num_timesteps >= self._next:
            self._next += self._step * ((self.num_timesteps - self._next) // self._step + 1)
            self._report()
        return True

    def _report(self) -> None:
        done = self.num_timesteps - self._start_steps
        elapsed = max(time.perf_counter() - self._start_time, 1e-9)
        rate = done / elapsed
        left = (self._total - self.num_timesteps) / rate if rate > 0 else float("inf")
        buffer = self.model.ep_info_buffer
        reward = f"{safe_mean([e['r'] for e in buffer]):.4g}" if buffer else "n/a"
        self.log.info(
            "trained %s of %s timesteps (%.0f%%) at %.0f timesteps/s, ep_rew_mean %s, "
            "about %s left",
            f"{self.num_timesteps:,}",
            f"{self._total:,}",
            100 * self.num_timesteps / self._total,
            rate,
            reward,
            _duration(left),
        )


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown time"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class PhaseTimer(BaseCallback):
    """Wall time spent collecting rollouts and updating the policy.

    The rollout phase runs from ``on_rollout_start`` to ``on_rollout_end``; the update phase
    (PPO's ``train()`` plus logging) from one rollout's end to the next rollout's start, or to
    the end of training.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rollout_s = 0.0
        self.update_s = 0.0
        self._rollout_start: float | None = None
        self._rollout_end: float | None = None

    def _on_rollout_start(self) -> None:
        now = time.perf_counter()
        if self._rollout_end is not None:
            self.update_s += now - self._rollout_end
            self._rollout_end = None
        self._rollout_start = now

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        now = time.perf_counter()
        if self._rollout_start is not None:
            self.rollout_s += now - self._rollout_start
            self._rollout_start = None
        self._rollout_end = now

    def _on_training_end(self) -> None:
        if self._rollout_end is not None:
            self.update_s += time.perf_counter() - self._rollout_end
            self._rollout_end = None


SMALL_POLICY_WEIGHTS = 4_000_000
"""Weights below which a rollout step's tensor operations are too small to share."""


def rollout_thread_count(policy: torch.nn.Module, threads: int | None = None) -> int:
    """Torch threads for collecting rollouts with ``policy``: 1 for small policies, else all.

    A rollout step of a small policy is a few dozen tiny tensor operations. With several OpenMP
    threads each one is a parallel region whose threads must all be scheduled; when other
    processes keep the cores busy, every region waits for a time slice: on 2 busy cores a
    20-ticker rollout ran 15x slower on 2 threads than on 1 (measured). A large policy (500
    tickers: 43,503 x 256 weights per network, read from memory at every step; 4.6 million
    weights behind a 16-wide ticker encoder) is worth sharing: 1.1-1.7x faster on 2 threads
    (measured).
    """
    threads = threads or torch.get_num_threads()
    weights = sum(p.numel() for p in policy.parameters() if p.dim() == 2)
    return 1 if weights < SMALL_POLICY_WEIGHTS else threads


class RolloutThreads(BaseCallback):
    """Collect rollouts on :func:`rollout_thread_count` torch threads; update on all of them."""

    def __init__(self) -> None:
        super().__init__()
        self._update_threads: int | None = None

    def _on_rollout_start(self) -> None:
        self._update_threads = torch.get_num_threads()
        torch.set_num_threads(rollout_thread_count(self.model.policy, self._update_threads))

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self._restore()

    def _on_training_end(self) -> None:
        self._restore()

    def _restore(self) -> None:
        if self._update_threads is not None:
            torch.set_num_threads(self._update_threads)
            self._update_threads = None


class StopWhenAsked(BaseCallback):
    """Interrupt training when ``asked()`` gives a reason, polled every ``every_s`` seconds.

    For a stop that arrives as no signal: a Dagster run terminated while its training step runs
    in a Celery worker (the executor revokes the task but never signals the process running it).
    It raises :class:`StopRequested`, which takes the same path as SIGTERM: ``train`` saves
    ``interrupted_model.zip`` and its statistics, then re-raises. ``asked`` is called between
    environment steps, at most once per ``every_s``; an exception from it propagates.
    """

    def __init__(self, asked: Callable[[], str | None], every_s: float = 5.0) -> None:
        super().__init__()
        if every_s <= 0:
            raise ValueError(f"every_s must be > 0, got {every_s}")
        self.asked = asked
        self.every_s = every_s
        self._next = 0.0

    def _on_training_start(self) -> None:
        self._next = time.monotonic() + self.every_s

    def _on_step(self) -> bool:
        now = time.monotonic()
        if now >= self._next:
            self._next = now + self.every_s
            reason = self.asked()
            if reason is not None:
                raise StopRequested(f"stopped at {self.num_timesteps:,} timesteps: {reason}")
        return True
