"""Configuration: defaults live in the models and the YAML files say the same, every value is
validated when parsed, and errors name the key and the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from ploutos_core.config import (
    BacktestConfig,
    DataConfig,
    EvaluationConfig,
    PaperConfig,
    TrainingConfig,
    default_config_path,
    load_config,
    parse_config,
    read_yaml,
)
from ploutos_core.errors import ConfigError

DEFAULTS: dict[str, type[BaseModel]] = {
    "training": TrainingConfig,
    "data": DataConfig,
    "backtest": BacktestConfig,
    "evaluation": EvaluationConfig,
    "paper": PaperConfig,
}


def keys(values: dict[str, Any], prefix: str = "") -> set[str]:
    """Every key of a nested mapping, dotted."""
    found = set()
    for key, value in values.items():
        found.add(prefix + key)
        if isinstance(value, dict):
            found |= keys(value, f"{prefix}{key}.")
    return found


@pytest.mark.parametrize("name", sorted(DEFAULTS))
def test_each_yaml_spells_out_exactly_the_models_defaults(name: str) -> None:
    model = DEFAULTS[name]
    path = default_config_path(name)
    assert load_config(model, path) == model()
    assert keys(read_yaml(path)) == keys(model().model_dump())


def test_the_demo_config_holds_overrides_only() -> None:
    demo = read_yaml(default_config_path("demo_training"))
    defaults = TrainingConfig().model_dump()
    assert keys(demo) <= keys(defaults)
    assert all(defaults[key] != value for key, value in demo.items())
    merged = load_config(TrainingConfig, default_config_path("training"), demo)
    assert merged.n_envs == demo["n_envs"]


@pytest.mark.parametrize("device", ["auto", "cpu", "cuda", "cuda:1", " CUDA:0 "])
def test_device_names_are_accepted_and_normalized(device: str) -> None:
    assert TrainingConfig(device=device).device == device.strip().lower()


@pytest.mark.parametrize("device", ["tpu", "gpu0", "cuda:x", "cuda:", ""])
def test_an_unknown_device_is_refused_when_the_config_is_parsed(device: str) -> None:
    with pytest.raises(ConfigError, match=r"device: .*auto, cpu, cuda or cuda:N"):
        parse_config(TrainingConfig, {"device": device}, "training.yaml")


def test_a_value_outside_its_set_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"lr_schedule: .*'linear' or 'constant'"):
        parse_config(TrainingConfig, {"lr_schedule": "cosine"}, "training.yaml")


def test_unknown_and_invalid_keys_are_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "training.yaml"
    path.write_text("learning_rat: 0.001\nenv:\n  costs:\n    spread_bps: -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(TrainingConfig, path)
    message = str(info.value)
    assert str(path) in message
    assert "learning_rat: unknown key" in message
    assert "env.costs.spread_bps" in message


def test_batch_size_must_fit_the_rollout() -> None:
    with pytest.raises(ConfigError, match="batch_size .* exceeds the rollout size"):
        parse_config(TrainingConfig, {"n_envs": 2, "n_steps": 8, "batch_size": 64}, "x.yaml")


def test_overrides_merge_nested_keys() -> None:
    config = load_config(
        TrainingConfig, default_config_path("training"), {"env": {"costs": {"spread_bps": 2.0}}}
    )
    assert config.env.costs.spread_bps == 2.0
    assert config.env.costs.commission_bps == TrainingConfig().env.costs.commission_bps


def test_a_missing_or_malformed_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        read_yaml(tmp_path / "nope.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        read_yaml(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(tmp_path / "bad.yaml")


def test_default_training_config_has_the_guide_settings() -> None:
    config = load_config(TrainingConfig, default_config_path("training"))
    assert (config.n_envs, config.batch_size, config.n_epochs) == (32, 2048, 10)
    assert (config.learning_rate, config.lr_schedule) == (1e-4, "linear")
    assert (config.gamma, config.gae_lambda, config.clip_range, config.max_grad_norm) == (
        0.99,
        0.95,
        0.2,
        0.5,
    )
    assert config.checkpoint_freq == 500_000
    load_config(TrainingConfig, default_config_path("demo_training"))


def test_evaluation_config_refuses_unknown_names_and_repeats() -> None:
    with pytest.raises(ConfigError, match=r"baselines\.0: .*'buy_and_hold'"):
        parse_config(EvaluationConfig, {"baselines": ["hold"]}, "evaluation.yaml")
    with pytest.raises(ConfigError, match="seeds: .*distinct"):
        parse_config(EvaluationConfig, {"seeds": [1, 1]}, "evaluation.yaml")
    with pytest.raises(ConfigError, match="n_test_groups .* smaller than n_groups"):
        parse_config(
            EvaluationConfig, {"folds": {"n_groups": 3, "n_test_groups": 3}}, "evaluation.yaml"
        )
    with pytest.raises(ConfigError, match="folds.sheme: unknown key"):
        parse_config(EvaluationConfig, {"folds": {"sheme": "cpcv"}}, "evaluation.yaml")
