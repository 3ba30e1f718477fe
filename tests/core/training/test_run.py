"""Training: split, memory guard, device, files written, checkpoints, resume, NaN, determinism."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.distributions import MultiCategoricalDistribution
from stable_baselines3.common.torch_layers import FlattenExtractor
from stable_baselines3.common.vec_env import VecNormalize
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from ploutos_core.artifacts import Manifest, Period
from ploutos_core.artifacts.model_dir import stats_path_for
from ploutos_core.config import (
    TrainingConfig,
)
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.env.layout import PORTFOLIO_VALUES, observation_size
from ploutos_core.errors import ConfigError, ManifestError, ResourceLimitError, TrainingError
from ploutos_core.market import MarketData
from ploutos_core.market.split import split_periods
from ploutos_core.training import StopRequested, StopWhenAsked, TrainingInterrupted, train
from ploutos_core.training.distributions import BatchedMultiCategoricalDistribution
from ploutos_core.training.encoders import TickerEncoder
from ploutos_core.training.normalization import PooledObsStats, PooledVecNormalize
from tests.support.configs import tiny_training
from tests.support.markets import random_feature_market

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FEATURES = tuple(f"f{i}" for i in range(6))
POISON = 1000.0


def feature_market(n_tickers: int = 4, n_days: int = 300, *, seed: int = 3) -> MarketData:
    """Real OHLCV from the synthetic market with random features (fast, no indicators)."""
    return random_feature_market(n_tickers, n_days, FEATURES, seed=seed)


def poison_after(market: MarketData, date: str) -> MarketData:
    """The same market with every feature after ``date`` set to a huge value."""
    features = market.features.copy()
    features[market.dates > np.datetime64(date)] = POISON
    return MarketData(
        dates=market.dates,
        tickers=market.tickers,
        feature_names=market.feature_names,
        features=features,
        open=market.open,
        close=market.close,
        tradable=market.tradable,
        feature_version=market.feature_version,
    )


def tiny_config(**overrides: object) -> TrainingConfig:
    """The tests' tiny config, a longer run with two epochs and an odd checkpoint cadence."""
    run = {"total_timesteps": 1024, "n_epochs": 2, "checkpoint_freq": 300}
    run["split"] = {"test_fraction": 0.2, "embargo_days": 5}
    return tiny_training(**{**run, **overrides})


def final_weights(path: Path) -> dict[str, torch.Tensor]:
    return PPO.load(path, device="cpu").policy.state_dict()


class LearningRates(BaseCallback):
    """Records (num_timesteps, optimizer lr) after each update."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, float]] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        lr = self.model.policy.optimizer.param_groups[0]["lr"]
        self.seen.append((self.model.num_timesteps, lr))

    def _on_training_end(self) -> None:
        self._on_rollout_start()


@pytest.fixture(scope="module")
def market() -> MarketData:
    return feature_market()


@pytest.fixture(scope="module")
def trained(market: MarketData, tmp_path_factory: pytest.TempPathFactory):
    """One short run on a market whose test period is poisoned; returns (result, lrs, config)."""
    config = tiny_config()
    split = split_periods(market.dates, config.split)
    rates = LearningRates()
    result = train(
        config,
        poison_after(market, split.train_end),
        tmp_path_factory.mktemp("run") / "model",
        extra_callbacks=[rates],
    )
    return result, rates, config


# --- memory guard ----------------------------------------------------------------------------


def test_train_refuses_a_run_that_cannot_fit_before_building_anything(
    market: MarketData, tmp_path: Path
) -> None:
    config = tiny_config(n_envs=4096, n_steps=16384)
    output = tmp_path / "model"
    with pytest.raises(ResourceLimitError) as caught:
        train(config, market, output)
    message = str(caught.value)
    for knob in ("n_envs=4096", "n_steps=16384", "4 tickers", "GiB", "lower n_envs or n_steps"):
        assert knob in message
    assert not output.exists()


# --- a short run -----------------------------------------------------------------------------


def test_train_writes_the_model_directory(trained, market: MarketData) -> None:
    result, _, config = trained
    out = result.output_dir
    assert result.model_path == out / "final_model.zip"
    assert result.stats_path == out / "vecnormalize.pkl" == stats_path_for(result.model_path)
    assert result.timesteps >= config.total_timesteps
    manifest = Manifest.read(out / "manifest.json")
    assert manifest == result.manifest
    split = split_periods(market.dates, config.split)
    assert manifest.status == "complete"
    assert (manifest.model, manifest.vecnormalize) == ("final_model.zip", "vecnormalize.pkl")
    assert manifest.feature_names == FEATURES
    assert manifest.tickers == market.tickers
    assert manifest.train_period == Period(start=split.train_start, end=split.train_end)
    assert manifest.test_period == Period(start=split.test_start, end=split.test_end)
    assert manifest.config == config
    assert manifest.seed == 7 and manifest.policy == "encoder"
    assert manifest.device == "cpu"
    assert manifest.timesteps == result.timesteps
    assert manifest.steps_per_second > 0 and manifest.wall_time_s > 0
    assert set(manifest.versions) >= {
        "python",
        "numpy",
        "pandas",
        "torch",
        "stable_baselines3",
        "gymnasium",
        "pandas_ta",
        "ploutos",
    }
    assert isinstance(manifest.ep_rew_mean, float)
    assert not list(out.glob(".tmp-*"))


def test_the_policy_encodes_each_ticker_or_reads_the_flat_observation(
    trained, market: MarketData, tmp_path: Path
) -> None:
    result, _, config = trained
    encoded = PPO.load(result.model_path, device="cpu").policy
    assert isinstance(encoded.features_extractor, TickerEncoder)
    assert encoded.features_dim == market.N * config.ticker_encoder[-1] + PORTFOLIO_VALUES
    flat_config = tiny_config(policy="flat", total_timesteps=256, checkpoint_freq=10**6)
    flat = PPO.load(train(flat_config, market, tmp_path / "flat").model_path, device="cpu")
    assert isinstance(flat.policy.features_extractor, FlattenExtractor)
    assert flat.policy.features_dim == observation_size(market.N, len(market.feature_names))


def test_saved_model_is_a_plain_mlp_policy(trained, market: MarketData) -> None:
    result, _, config = trained
    model = PPO.load(result.model_path, device="cpu")
    assert type(model.policy.action_dist) is MultiCategoricalDistribution
    venv = VecNormalize.load(
        str(result.stats_path), PortfolioVecEnv(market, config.env, n_envs=8, seed=0)
    )
    venv.training = False
    obs = venv.reset()
    expected, _ = model.predict(obs, deterministic=True)
    distribution = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0])
    logits = torch.cat([d.logits for d in distribution.distribution], dim=1)
    batched = BatchedMultiCategoricalDistribution([3] * market.N).proba_distribution(logits)
    assert np.array_equal(batched.mode().numpy(), expected)


def test_normalization_statistics_come_from_the_training_period_only(trained) -> None:
    result, _, config = trained
    venv = PortfolioVecEnv(feature_market(), config.env, n_envs=1)
    stats = VecNormalize.load(str(result.stats_path), venv)
    assert isinstance(stats, PooledVecNormalize) and isinstance(stats.obs_rms, PooledObsStats)
    features = stats.obs_rms.features
    # Pooled over tradable cells: several tickers per timestep.
    assert features.count > config.total_timesteps
    # Features are N(0, 1) in training and POISON in the test period.
    assert np.abs(features.mean).max() < 0.2
    assert np.abs(features.var - 1.0).max() < 0.2
    assert stats.clip_obs == config.clip_obs and stats.gamma == config.gamma


def test_tensorboard_has_the_learning_curves_and_episode_statistics(trained) -> None:
    result, _, _ = trained
    runs = sorted(result.tensorboard_dir.iterdir())
    assert [r.name for r in runs] == ["ppo_1"]
    events = EventAccumulator(str(runs[0]))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {
        "rollout/ep_rew_mean",
        "train/loss",
        "train/policy_gradient_loss",
        "train/value_loss",
        "rollout/ep_sharpe_mean",
        "rollout/ep_turnover_mean",
        "rollout/ep_costs_mean",
    } <= tags


def test_checkpoints_are_counted_in_timesteps_with_several_envs(trained) -> None:
    result, _, _ = trained
    # n_envs=4, checkpoint_freq=300: at 300, 600 and 900 timesteps (SB3's CheckpointCallback
    # with save_freq=300 would count vectorized steps and save at 1200).
    names = sorted(p.name for p in result.output_dir.glob("checkpoint_*"))
    assert names == sorted(
        f"checkpoint_{n}_steps{suffix}"
        for n in (300, 600, 900)
        for suffix in (".zip", "_vecnormalize.pkl")
    )
    assert [p.name for p in result.checkpoints] == [
        f"checkpoint_{n}_steps.zip" for n in (300, 600, 900)
    ]
    assert PPO.load(result.checkpoints[0], device="cpu").num_timesteps == 300


def test_learning_rate_decays_linearly_to_zero(trained) -> None:
    _, rates, config = trained
    assert len(rates.seen) >= 4
    for timesteps, lr in rates.seen[1:]:
        expected = config.learning_rate * max(0.0, 1 - timesteps / config.total_timesteps)
        assert lr == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_same_seed_gives_identical_weights(trained, market: MarketData, tmp_path: Path) -> None:
    result, _, config = trained
    split = split_periods(market.dates, config.split)
    again = train(config, poison_after(market, split.train_end), tmp_path / "again")
    first, second = final_weights(result.model_path), final_weights(again.model_path)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)

    other = train(tiny_config(seed=8, checkpoint_freq=10**6), market, tmp_path / "other")
    third = final_weights(other.model_path)
    assert not all(torch.equal(first[k], third[k]) for k in first)


# --- resume ----------------------------------------------------------------------------------


def test_resume_continues_the_timestep_count_schedule_and_curves(
    trained, market: MarketData, tmp_path: Path
) -> None:
    result, _, config = trained
    checkpoint = result.output_dir / "checkpoint_600_steps.zip"
    rates = LearningRates()
    resumed = train(
        config,
        market,
        tmp_path / "resumed",
        resume=checkpoint,
        extra_callbacks=[rates],
    )
    assert rates.seen[0][0] == 600
    assert resumed.timesteps >= config.total_timesteps
    assert resumed.timesteps == 600 + 2 * config.n_envs * config.n_steps
    for timesteps, lr in rates.seen[1:]:
        expected = config.learning_rate * max(0.0, 1 - timesteps / config.total_timesteps)
        assert lr == pytest.approx(expected, rel=1e-9, abs=1e-15)
    manifest = Manifest.read(resumed.manifest_path)
    assert manifest.resumed_from == str(checkpoint)
    assert manifest.timesteps == resumed.timesteps
    events = EventAccumulator(str(resumed.tensorboard_dir / "ppo_1"))
    events.Reload()
    steps = [e.step for e in events.Scalars("train/loss")]
    # The copied curve and the resumed run's points are one run: TensorBoard shows one line.
    assert min(steps) < 600 and max(steps) == resumed.timesteps


def test_resume_with_another_ticker_encoder_is_refused(trained, tmp_path: Path) -> None:
    result, _, config = trained
    narrower = config.model_copy(update={"ticker_encoder": [8]})
    with pytest.raises(ConfigError, match=r"ticker_encoder \[16\] but the config says \[8\]"):
        train(narrower, feature_market(), tmp_path / "narrow", resume=result.checkpoints[0])
    flat = config.model_copy(update={"policy": "flat"})
    with pytest.raises(ConfigError, match=r"policy 'encoder' but the config says 'flat'"):
        train(flat, feature_market(), tmp_path / "flat", resume=result.checkpoints[0])


def test_resume_on_other_tickers_is_refused(trained, tmp_path: Path) -> None:
    result, _, config = trained
    other = feature_market(n_tickers=5)
    unknown = r"tickers in the data are unknown to the model: \['CON01'\].*Resume"
    with pytest.raises(ManifestError, match=unknown):
        train(config, other, tmp_path / "other", resume=result.checkpoints[0])
    assert not (tmp_path / "other").exists()


def test_resume_of_a_finished_run_asks_for_more_timesteps(
    trained, market: MarketData, tmp_path: Path
) -> None:
    result, _, config = trained
    with pytest.raises(ConfigError, match="raise total_timesteps"):
        train(config, market, tmp_path / "again", resume=result.model_path)


# --- interruption ----------------------------------------------------------------------------


class Terminated(BaseException):
    """Stands in for Dagster's DagsterExecutionInterruptedError: a BaseException."""


class InterruptAt(BaseCallback):
    def __init__(self, timesteps: int, interrupt) -> None:
        super().__init__()
        self.timesteps = timesteps
        self.interrupt = interrupt

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.timesteps:
            self.interrupt()
        return True


@contextlib.contextmanager
def plain_sigterm() -> Iterator[None]:
    """SIGTERM's default disposition, as in a plain ``ploutos train`` process (an earlier test in
    the same worker may have left a handler of Dagster's)."""
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def _terminate() -> None:
    raise Terminated


@pytest.mark.parametrize(
    ("interrupt", "expected"), [(_sigterm, TrainingInterrupted), (_terminate, Terminated)]
)
def test_interruption_saves_a_loadable_model_then_reraises(
    market: MarketData, tmp_path: Path, interrupt, expected
) -> None:
    config = tiny_config(total_timesteps=10_000)
    out = tmp_path / "model"
    threads = torch.get_num_threads()
    with plain_sigterm():
        with pytest.raises(expected):
            train(config, market, out, extra_callbacks=[InterruptAt(400, interrupt)])
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # train restored it
    assert torch.get_num_threads() == threads  # rollouts run on one thread; restored
    model = PPO.load(out / "interrupted_model.zip", device="cpu")
    assert model.num_timesteps == 400
    venv = PortfolioVecEnv(market, config.env, n_envs=1)
    VecNormalize.load(str(out / "interrupted_model_vecnormalize.pkl"), venv)
    manifest = Manifest.read(out / "manifest.json")
    assert manifest.status == "interrupted"
    assert manifest.model == "interrupted_model.zip"
    assert not (out / "final_model.zip").exists()


def test_a_stop_asked_for_without_a_signal_saves_the_interrupted_model(
    market: MarketData, tmp_path: Path
) -> None:
    polls: list[int] = []

    def asked() -> str | None:
        polls.append(1)
        return "run abc was terminated" if len(polls) == 50 else None

    config = tiny_config(total_timesteps=10_000)
    out = tmp_path / "model"
    with pytest.raises(StopRequested, match="at 200 timesteps: run abc was terminated") as raised:
        train(config, market, out, extra_callbacks=[StopWhenAsked(asked, every_s=1e-9)])
    assert isinstance(raised.value, TrainingInterrupted)
    assert raised.value.signum == signal.SIGTERM  # the CLI exits as a terminated process would
    manifest = Manifest.read(out / "manifest.json")
    assert manifest.status == "interrupted"
    # Polled at every vectorized step: stopped at the 50th.
    assert PPO.load(out / "interrupted_model.zip", device="cpu").num_timesteps == 50 * config.n_envs
    assert not (out / "final_model.zip").exists()


def test_a_stop_is_polled_at_most_once_per_interval(market: MarketData, tmp_path: Path) -> None:
    polls: list[float] = []
    stop = StopWhenAsked(lambda: polls.append(1) or None, every_s=3600)
    train(tiny_config(total_timesteps=512), market, tmp_path / "model", extra_callbacks=[stop])
    assert polls == []  # the run was shorter than one interval


# --- NaN guard -------------------------------------------------------------------------------


class CorruptParameters(BaseCallback):
    """Sets a weight of the value network to NaN at the end of chosen rollouts (before updates)."""

    def __init__(self, after: int, times: int) -> None:
        super().__init__()
        self.after = after
        self.times = times

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps > self.after and self.times > 0:
            self.times -= 1
            with torch.no_grad():
                self.model.policy.value_net.weight[0, 0] = float("nan")


def test_repeated_nan_stops_training_and_keeps_the_last_good_checkpoint(
    market: MarketData, tmp_path: Path
) -> None:
    config = tiny_config(total_timesteps=4096, checkpoint_freq=256, nan_tolerance=3)
    out = tmp_path / "model"
    with pytest.raises(TrainingError) as caught:
        train(config, market, out, extra_callbacks=[CorruptParameters(after=512, times=100)])
    message = str(caught.value)
    assert "after 3 NaN/inf detections" in message
    assert not (out / "final_model.zip").exists()
    saved = sorted(out.glob("checkpoint_*_steps.zip"), key=lambda p: int(p.stem.split("_")[1]))
    assert f"the last good checkpoint is {saved[-1]}" in message
    weights = PPO.load(saved[-1], device="cpu").policy.state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_a_single_nan_update_is_rolled_back_and_training_finishes(
    market: MarketData, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = tiny_config(checkpoint_freq=10**6)
    with caplog.at_level(logging.WARNING):
        result = train(
            config,
            market,
            tmp_path / "model",
            extra_callbacks=[CorruptParameters(after=256, times=1)],
        )
    assert "detection 1 of 5; restored the last finite parameters" in caplog.text
    weights = final_weights(result.model_path)
    assert all(torch.isfinite(w).all() for w in weights.values())


class CorruptBeforeRollout(BaseCallback):
    """Sets an action-layer weight to NaN after the guard's check, so a rollout samples NaN."""

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        if self.model.num_timesteps >= 512:
            with torch.no_grad():
                self.model.policy.action_net.weight[0, 0] = float("nan")


def test_nan_during_a_rollout_is_a_training_error(market: MarketData, tmp_path: Path) -> None:
    config = tiny_config(checkpoint_freq=256)
    with pytest.raises(TrainingError) as caught:
        train(config, market, tmp_path / "model", extra_callbacks=[CorruptBeforeRollout()])
    message = str(caught.value)
    assert "training stopped at 512 timesteps: the policy produced non-finite action" in message
    assert f"the last good checkpoint is {tmp_path / 'model' / 'checkpoint_512_steps.zip'}" in (
        message
    )
