"""``ploutos train``: options and defaults, a short run, errors, and Ctrl+C on a real process."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.artifacts import Manifest
from ploutos_core.cli import build_parser, main
from ploutos_core.cli.train import DEFAULT_OUTPUT
from ploutos_core.config import TrainingConfig, default_config_path, load_config
from ploutos_core.data.sample import make_market
from ploutos_core.env.layout import observation_size
from ploutos_core.features import FEATURE_NAMES, FEATURE_VERSION
from ploutos_core.paths import DEFAULT_DATA
from tests.support.configs import tiny_training_yaml

TINY_CONFIG = tiny_training_yaml(n_epochs=2)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 4-ticker CSV and a tiny training config."""
    root = tmp_path_factory.mktemp("cli")
    csv = root / "ohlcv.csv"
    make_market(4, 400, seed=5).to_csv(csv, index=False)
    config = root / "training.yaml"
    config.write_text(TINY_CONFIG)
    return csv, config


def test_train_defaults_follow_the_guide() -> None:
    args = build_parser().parse_args(["train"])
    assert args.config == default_config_path("training")
    assert args.output == DEFAULT_OUTPUT == Path("models/ploutos_production")
    assert args.data == DEFAULT_DATA and args.data.name == "sample_ohlcv.csv"
    # Unset options fall back to the YAML's values (total_timesteps, seed, device, ...).
    assert (args.timesteps, args.seed, args.device, args.checkpoint_freq, args.resume) == (
        None,
        None,
        None,
        None,
        None,
    )
    config = load_config(TrainingConfig, args.config)
    assert (config.total_timesteps, config.seed, config.device) == (50_000_000, 42, "auto")


def test_short_training_through_the_command_line(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, config = inputs
    out = tmp_path / "model"
    argv = ["train", "--config", str(config), "--data", str(csv), "--output", str(out)]
    argv += ["--timesteps", "512", "--seed", "3", "--device", "cpu", "--checkpoint-freq", "256"]
    assert main([*argv, "--no-progress-bar"]) == 0
    printed = capsys.readouterr().out
    assert f"tensorboard --logdir {out / 'tensorboard'}" in printed
    for name in (
        "final_model.zip",
        "vecnormalize.pkl",
        "manifest.json",
        "checkpoint_256_steps.zip",
        "checkpoint_256_steps_vecnormalize.pkl",
    ):
        assert (out / name).is_file(), name
    manifest = Manifest.read(out / "manifest.json")
    assert manifest.config.total_timesteps == 512
    assert manifest.config.checkpoint_freq == 256
    assert manifest.seed == 3 and manifest.device == "cpu"
    assert manifest.feature_names == FEATURE_NAMES and manifest.feature_version == FEATURE_VERSION
    assert manifest.tickers == tuple(sorted(manifest.tickers)) and len(manifest.tickers) == 4


def test_unknown_config_key_exits_with_its_name(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv, _ = inputs
    config = tmp_path / "bad.yaml"
    config.write_text(TINY_CONFIG + "learning_rat: 0.001\n")
    code = main(["train", "--config", str(config), "--data", str(csv), "--output", str(tmp_path)])
    assert code == 1
    error = capsys.readouterr().err
    assert "learning_rat: unknown key" in error and str(config) in error


def test_missing_data_file_is_a_clear_error(
    inputs: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, config = inputs
    missing = tmp_path / "nope.csv"
    argv = ["train", "--config", str(config), "--data", str(missing), "--output", str(tmp_path)]
    assert main(argv) == 1
    assert str(missing) in capsys.readouterr().err


def ploutos_command() -> list[str]:
    script = Path(sys.executable).parent / "ploutos"
    return [str(script)] if script.exists() else [sys.executable, "-m", "ploutos_core.cli"]


def test_ctrl_c_saves_a_loadable_interrupted_model(
    inputs: tuple[Path, Path], tmp_path: Path
) -> None:
    csv, config = inputs
    out = tmp_path / "model"
    command = [*ploutos_command(), "train", "--config", str(config), "--data", str(csv)]
    command += ["--output", str(out), "--timesteps", "10000000", "--device", "cpu"]
    command += ["--checkpoint-freq", "256", "--no-progress-bar"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A shell without job control starts background commands with SIGINT ignored, and an ignored
    # signal is inherited: give the command Ctrl+C's default, as a terminal would.
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint_256_steps.zip").exists():
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output
    assert "interrupted (SIGINT)" in output
    model = PPO.load(out / "interrupted_model.zip", device="cpu")
    assert model.num_timesteps >= 256
    manifest = Manifest.read(out / "manifest.json")
    assert manifest.status == "interrupted"
    assert manifest.timesteps == model.num_timesteps
    assert f"--resume {out / 'interrupted_model.zip'}" in output
    assert not list(out.glob(".tmp-*"))
    with (out / "interrupted_model_vecnormalize.pkl").open("rb") as file:
        stats = pickle.load(file)  # what VecNormalize.load does before attaching an env
    assert isinstance(stats, VecNormalize)
    assert model.observation_space.shape == (observation_size(4, 85),)
    assert stats.obs_rms.n_features == 85
    assert stats.obs_rms.portfolio.count > 256
