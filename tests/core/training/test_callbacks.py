"""Callbacks on a real PPO over a tiny market: checkpoint cadence, NaN guard, episode statistics,
progress lines and phase timing."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.artifacts.model_dir import stats_path_for
from ploutos_core.config import EnvConfig
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.market import MarketData
from ploutos_core.training.callbacks import (
    CheckpointEvery,
    EpisodeStatsLogger,
    NanGuard,
    PhaseTimer,
    ProgressLogger,
    RolloutThreads,
    rollout_thread_count,
)
from tests.support.markets import random_feature_market

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N_ENVS = 3
N_STEPS = 32
LOG = logging.getLogger("test.callbacks")


@pytest.fixture(scope="module")
def market() -> MarketData:
    return random_feature_market(3, 200, ("a", "b", "c"), seed=11, warmup=0)


def make_model(market: MarketData) -> PPO:
    venv = PortfolioVecEnv(market, EnvConfig(episode_length=20), n_envs=N_ENVS, seed=0)
    return PPO(
        "MlpPolicy",
        VecNormalize(venv),
        n_steps=N_STEPS,
        batch_size=48,
        n_epochs=1,
        policy_kwargs={"net_arch": [16]},
        seed=0,
        device="cpu",
    )


def crossings(step: int, freq: int, end: int, start: int = 0) -> list[int]:
    """Timestep counts at which a save is due: the first count >= each multiple of freq."""
    due, next_save, n = [], (start // freq + 1) * freq, start
    while n < end:
        n += step
        if n >= next_save:
            due.append(n)
            next_save = (n // freq + 1) * freq
    return due


def test_checkpoints_follow_timesteps_not_vectorized_steps(
    market: MarketData, tmp_path: Path
) -> None:
    model = make_model(market)
    callback = CheckpointEvery(100, tmp_path, LOG)
    model.learn(400, callback=callback)
    expected = crossings(N_ENVS, 100, model.num_timesteps)
    assert expected[:4] == [102, 201, 300, 402]
    assert [p.name for p in callback.saved] == [f"checkpoint_{n}_steps.zip" for n in expected]
    for path, n in zip(callback.saved, expected, strict=True):
        assert PPO.load(path, device="cpu").num_timesteps == n
        assert stats_path_for(path).is_file()

    # Continuing the count (as a resume does) keeps the cadence.
    resumed = CheckpointEvery(100, tmp_path / "more", LOG)
    start = model.num_timesteps
    model.learn(200, callback=resumed, reset_num_timesteps=False)
    assert [int(p.stem.split("_")[1]) for p in resumed.saved] == crossings(
        N_ENVS, 100, model.num_timesteps, start
    )


def test_only_the_newest_checkpoints_are_kept(market: MarketData, tmp_path: Path) -> None:
    model = make_model(market)
    callback = CheckpointEvery(96, tmp_path, LOG, keep=2)
    model.learn(5 * N_ENVS * N_STEPS, callback=callback)
    assert [p.name for p in callback.saved] == [
        "checkpoint_384_steps.zip",
        "checkpoint_480_steps.zip",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        name for p in callback.saved for name in (p.name, stats_path_for(p).name)
    )


def test_no_checkpoint_of_non_finite_parameters(market: MarketData, tmp_path: Path) -> None:
    model = make_model(market)
    callback = CheckpointEvery(3, tmp_path, LOG)
    callback.init_callback(model)
    with torch.no_grad():
        model.policy.action_net.bias[0] = float("inf")
    model.num_timesteps = 3
    callback.on_step()
    assert callback.saved == [] and not list(tmp_path.iterdir())


def test_nan_guard_restores_then_trips(market: MarketData, tmp_path: Path) -> None:
    model = make_model(market)
    model.set_logger(configure(str(tmp_path), []))
    guard = NanGuard(tolerance=2, log=LOG)
    guard.init_callback(model)
    guard.on_training_start({}, {})
    good = {k: v.clone() for k, v in model.policy.state_dict().items()}

    with torch.no_grad():
        model.policy.value_net.weight[0, 0] = float("nan")
    guard.on_rollout_start()
    assert guard.detections == 1 and not guard.tripped
    restored = model.policy.state_dict()
    assert all(torch.equal(good[k], restored[k]) for k in good)
    assert guard.on_step()

    model.logger.record("train/value_loss", math.inf)
    guard.on_rollout_start()
    assert guard.detections == 2 and guard.tripped
    assert "train/value_loss=inf" in guard.last_problem
    assert not guard.on_step()


def test_nan_guard_accepts_finite_updates(market: MarketData) -> None:
    model = make_model(market)
    guard = NanGuard(tolerance=1, log=LOG)
    model.learn(2 * N_ENVS * N_STEPS, callback=guard)
    assert guard.detections == 0 and not guard.tripped


def test_episode_statistics_are_logged(market: MarketData, tmp_path: Path) -> None:
    model = make_model(market)
    model.set_logger(configure(str(tmp_path), ["csv"]))
    callback = EpisodeStatsLogger()
    model.learn(4 * N_ENVS * N_STEPS, callback=callback)
    progress = pd.read_csv(tmp_path / "progress.csv")
    for column in ("rollout/ep_sharpe_mean", "rollout/ep_turnover_mean", "rollout/ep_costs_mean"):
        values = progress[column].dropna()
        assert len(values) >= 2 and np.isfinite(values).all()
    assert (progress["rollout/ep_turnover_mean"].dropna() >= 0).all()
    assert len(callback.values["episode_sharpe"]) == len(model.ep_info_buffer)


def test_progress_lines_every_quarter(market: MarketData, caplog: pytest.LogCaptureFixture) -> None:
    model = make_model(market)
    with caplog.at_level(logging.INFO, logger=LOG.name):
        model.learn(4 * N_ENVS * N_STEPS, callback=ProgressLogger(LOG, every=0.25))
    lines = [r.getMessage() for r in caplog.records if r.name == LOG.name]
    assert len(lines) == 4
    assert lines[0].startswith("trained ") and "timesteps/s" in lines[0]
    assert "(100%)" in lines[-1]


def test_phase_timer_splits_the_wall_time(market: MarketData) -> None:
    model = make_model(market)
    timer = PhaseTimer()
    start = time.perf_counter()
    model.learn(3 * N_ENVS * N_STEPS, callback=timer)
    wall = time.perf_counter() - start
    assert timer.rollout_s > 0 and timer.update_s > 0
    assert timer.rollout_s + timer.update_s <= wall


def test_rollout_threads_depend_on_the_policy_size() -> None:
    assert rollout_thread_count(torch.nn.Linear(1743, 256), threads=2) == 1
    assert rollout_thread_count(torch.nn.Linear(43_503, 256), threads=2) == 2


class ThreadsSeen(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: set[int] = set()

    def _on_step(self) -> bool:
        self.seen.add(torch.get_num_threads())
        return True


def test_rollouts_run_on_one_thread_and_updates_on_all(market: MarketData) -> None:
    model = make_model(market)
    seen = ThreadsSeen()
    torch.set_num_threads(2)
    try:
        model.learn(2 * N_ENVS * N_STEPS, callback=[RolloutThreads(), seen])
        assert seen.seen == {1}
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)
