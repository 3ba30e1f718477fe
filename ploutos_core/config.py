"""Typed configuration: YAML files parsed once into validated pydantic models.

Unknown keys are errors. Command-line options and Dagster run config override the same models, so
``config/*.yaml`` is the one source of defaults.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ploutos_core.errors import ConfigError
from ploutos_core.paths import PROJECT_ROOT

CONFIG_DIR = PROJECT_ROOT / "config"
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(StrictModel):
    """How a user's CSV is read (``config/data.yaml``)."""

    adjust_prices: bool = Field(
        True, description="Scale OHLC by adj_close/close (and volume inversely) when present."
    )


class CostConfig(StrictModel):
    """Execution costs, in basis points of traded notional, charged on every fill."""

    commission_bps: float = Field(5.0, ge=0)
    spread_bps: float = Field(5.0, ge=0, description="Full bid-ask spread; half is paid per fill.")
    slippage_bps: float = Field(5.0, ge=0)

    @property
    def rate(self) -> float:
        """Cost per unit of traded notional."""
        return (self.commission_bps + 0.5 * self.spread_bps + self.slippage_bps) / 1e4


class RewardConfig(StrictModel):
    """Differential Sharpe Ratio reward and its optional penalties."""

    eta: float = Field(0.01, gt=0, lt=1, description="Adaptation rate of the DSR moment estimates.")
    prior_volatility: float = Field(
        0.01, gt=0, description="Per-bar volatility the DSR variance estimate starts from."
    )
    drawdown_penalty: float = Field(0.0, ge=0)
    turnover_penalty: float = Field(0.0, ge=0)
    clip: float = Field(10.0, gt=0, description="Rewards are clipped to [-clip, clip].")


class EnvConfig(StrictModel):
    """The trading environment."""

    episode_length: int = Field(252, ge=2)
    initial_cash: float = Field(100_000.0, gt=0)
    buy_fraction: float = Field(0.2, gt=0, le=1)
    max_position_weight: float = Field(0.25, gt=0, le=1)
    min_equity_fraction: float = Field(0.5, ge=0, lt=1)
    trailing_window: int | None = Field(
        None,
        ge=2,
        description=(
            "Bars of the trailing return and drawdown the policy observes; null: episode_length. "
            "At most episode_length, so training episodes fill the window a backtest uses."
        ),
    )
    observe_reward_state: bool = Field(
        True, description="Show the policy the running Sharpe estimate the DSR reward depends on."
    )
    costs: CostConfig = CostConfig()
    reward: RewardConfig = RewardConfig()

    @property
    def window(self) -> int:
        """The trailing window in bars (``trailing_window``, else ``episode_length``)."""
        return self.trailing_window or self.episode_length

    @model_validator(mode="after")
    def _window_fits_episodes(self) -> EnvConfig:
        if self.trailing_window is not None and self.trailing_window > self.episode_length:
            raise ValueError(
                f"trailing_window ({self.trailing_window}) exceeds episode_length "
                f"({self.episode_length}): training episodes would never fill the window the "
                "backtest observes; lower trailing_window or raise episode_length"
            )
        return self


class SplitConfig(StrictModel):
    """Train/test split by date: training, an embargo gap, then the test period."""

    train_end: str | None = Field(
        None, description="Last training date (YYYY-MM-DD); null: use test_fraction."
    )
    test_fraction: float = Field(0.2, gt=0, lt=1)
    embargo_days: int = Field(10, ge=0, description="Bars skipped between training and test.")

    @field_validator("train_end")
    @classmethod
    def _iso_date(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                dt.date.fromisoformat(value)
            except ValueError as exc:
                raise ValueError(f"train_end must be YYYY-MM-DD, got {value!r}") from exc
        return value


class TrainingConfig(StrictModel):
    """PPO training (``config/training.yaml``); keys and defaults follow the training guide."""

    seed: int = 42
    total_timesteps: int = Field(50_000_000, gt=0)
    device: str = Field(
        "auto", description="auto (CUDA when present), cpu, cuda or cuda:N; checked when parsed."
    )
    n_envs: int = Field(32, ge=1)
    n_steps: int = Field(128, ge=1)
    batch_size: int = Field(2048, ge=2)
    n_epochs: int = Field(10, ge=1)
    learning_rate: float = Field(1e-4, gt=0)
    lr_schedule: Literal["linear", "constant"] = Field(
        "linear", description="'linear' (decay to 0 over total_timesteps) or 'constant'."
    )
    gamma: float = Field(0.99, gt=0, le=1)
    gae_lambda: float = Field(0.95, gt=0, le=1)
    clip_range: float = Field(0.2, gt=0)
    ent_coef: float = Field(0.01, ge=0)
    vf_coef: float = Field(0.5, ge=0)
    max_grad_norm: float = Field(0.5, gt=0)
    policy: Literal["shared", "encoder", "flat"] = Field(
        "encoder",
        description=(
            "'encoder': per-ticker layers (ticker_encoder) in front of net_arch MLPs over all "
            "tickers' codes; 'flat': net_arch MLPs over the whole observation (the guide's "
            "MlpPolicy); 'shared': per-ticker layers, a context pooled over tradable tickers "
            "and one actor head shared by every ticker (its size does not grow with the "
            "universe; it can trade another universe)."
        ),
    )
    net_arch: list[int] = Field(default_factory=lambda: [256, 256], min_length=1)
    ticker_encoder: list[int] = Field(
        default_factory=lambda: [16],
        description=(
            "Widths of the layers shared by every ticker (encoder and shared policies), e.g. "
            "[16]; the flat policy has none and does not read it."
        ),
    )
    pooling: Literal["max", "attention"] = Field(
        "attention",
        description=(
            "policy shared: the context's pooled summary of the tradable tickers' codes beside "
            "their mean: 'attention' (an attention-weighted sum) or 'max'; others ignore it."
        ),
    )
    clip_obs: float = Field(10.0, gt=0)
    checkpoint_freq: int = Field(500_000, ge=1, description="In total timesteps.")
    keep_checkpoints: int = Field(
        0, ge=0, description="Newest checkpoints kept in the model directory; 0 keeps all."
    )
    nan_tolerance: int = Field(5, ge=1, description="NaN/inf detections before training stops.")
    split: SplitConfig = SplitConfig()
    env: EnvConfig = EnvConfig()

    @field_validator("net_arch", "ticker_encoder")
    @classmethod
    def _widths(cls, value: list[int]) -> list[int]:
        if any(width < 1 for width in value):
            raise ValueError(f"layer widths must be positive, got {value}")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        name = value.strip().lower()
        if not DEVICE_PATTERN.fullmatch(name):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return name

    @model_validator(mode="after")
    def _policy_has_ticker_layers(self) -> TrainingConfig:
        if self.policy != "flat" and not self.ticker_encoder:
            raise ValueError(
                f"policy {self.policy!r} needs per-ticker layers but ticker_encoder is []; "
                "set ticker_encoder (e.g. [16]) or ask for the flat MLP with policy: flat"
            )
        return self

    @model_validator(mode="after")
    def _batch_fits_rollout(self) -> TrainingConfig:
        rollout = self.n_envs * self.n_steps
        if self.batch_size > rollout:
            raise ValueError(
                f"batch_size ({self.batch_size}) exceeds the rollout size n_envs * n_steps "
                f"({self.n_envs} * {self.n_steps} = {rollout}); lower batch_size or raise n_steps"
            )
        return self


class BacktestConfig(StrictModel):
    """Out-of-sample evaluation (``config/backtest.yaml``)."""

    top_k: int = Field(5, ge=0, description="Trade plots for the top_k most-traded tickers.")
    deterministic: bool = True


BaselineName = Literal["buy_and_hold", "cash", "random", "momentum", "mean_reversion"]


class FoldConfig(StrictModel):
    """How the dates are cut into training and test windows (:mod:`ploutos_core.evaluation.folds`).

    Every count is in bars (trading days).
    """

    scheme: Literal["walk_forward", "cpcv"] = Field(
        "walk_forward",
        description="'walk_forward' (train on the past, test on the next window) or 'cpcv' "
        "(combinatorial purged cross-validation, Lopez de Prado 2018).",
    )
    window: Literal["expanding", "rolling"] = Field(
        "expanding",
        description="walk_forward: training starts at the first bar ('expanding') or keeps "
        "min_train_days bars ('rolling').",
    )
    n_folds: int = Field(5, ge=1, description="walk_forward: test windows tiling the data's end.")
    min_train_days: int = Field(504, ge=2, description="Bars of the first training window.")
    test_days: int | None = Field(
        None,
        ge=1,
        description="Bars per test window; null: all bars after the first training "
        "window and its purge, split evenly over n_folds.",
    )
    purge_days: int = Field(
        10, ge=0, description="Training bars dropped just before each test window."
    )
    embargo_days: int = Field(
        5, ge=0, description="Bars after each test window kept out of training (cpcv)."
    )
    n_groups: int = Field(6, ge=2, description="cpcv: contiguous groups the dates are cut into.")
    n_test_groups: int = Field(2, ge=1, description="cpcv: groups tested in each split.")

    @model_validator(mode="after")
    def _test_groups_fit(self) -> FoldConfig:
        if self.n_test_groups >= self.n_groups:
            raise ValueError(
                f"n_test_groups ({self.n_test_groups}) must be smaller than n_groups "
                f"({self.n_groups}) so that every split keeps a group to train on"
            )
        return self


class BootstrapConfig(StrictModel):
    """The stratified bootstrap behind every confidence interval."""

    reps: int = Field(2000, ge=100, description="Bootstrap resamples.")
    seed: int = Field(0, description="Seed of the resampling: the same seed, the same intervals.")
    confidence: float = Field(0.95, gt=0, lt=1, description="Coverage of the intervals.")


class GateConfig(StrictModel):
    """Thresholds an agent must meet to be promoted (:mod:`ploutos_core.evaluation.gate`)."""

    excess_sharpe_ci_low_min: float = Field(
        0.0, description="Lower CI bound of the agent's IQM Sharpe minus the best baseline's."
    )
    dsr_min: float = Field(0.95, ge=0, le=1, description="Deflated Sharpe Ratio at least this.")
    pbo_max: float = Field(
        0.5, ge=0, le=1, description="Probability of Backtest Overfitting at most this."
    )
    prob_improvement_min: float = Field(
        0.6, ge=0, le=1, description="P(agent > baseline) against every baseline at least this."
    )


class EvaluationConfig(StrictModel):
    """Judging an agent over folds x seeds against baselines (``config/evaluation.yaml``)."""

    folds: FoldConfig = FoldConfig()
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2, 3, 4], min_length=1)
    baselines: list[BaselineName] = Field(
        default_factory=lambda: ["buy_and_hold", "cash", "random", "momentum", "mean_reversion"],
        min_length=1,
        description="Strategies the agent must beat; the gate compares it with each.",
    )
    cost_multipliers: list[float] = Field(
        default_factory=lambda: [0.0, 1.0, 2.0],
        min_length=1,
        description="Each scales the configured costs for a cost-sensitivity run.",
    )
    bootstrap: BootstrapConfig = BootstrapConfig()
    gate: GateConfig = GateConfig()

    @field_validator("seeds", "baselines", "cost_multipliers")
    @classmethod
    def _distinct(cls, value: list) -> list:
        if len(set(value)) != len(value):
            raise ValueError(f"entries must be distinct, got {value}")
        return value

    @field_validator("cost_multipliers")
    @classmethod
    def _non_negative(cls, value: list[float]) -> list[float]:
        if any(m < 0 for m in value):
            raise ValueError(f"cost multipliers must be >= 0, got {value}")
        return value



class PaperConfig(StrictModel):
    """Signals, the paper ledger and its drift check (``config/paper.yaml``,
    :mod:`ploutos_core.signals`)."""

    stopped_after_sessions: int = Field(
        5,
        ge=1,
        description=(
            "A ticker without a bar for this many sessions counts as stopped trading (its "
            "position is closed at its last close, as in the backtest); before that, the "
            "sessions after its last bar wait for its bar."
        ),
    )
    drift_quantiles: tuple[float, float] = Field(
        (0.05, 0.95),
        description="The band: these quantiles of the fold backtests' same-length windows.",
    )
    drift_min_sessions: int = Field(
        5, ge=2, description="Paper sessions needed before the drift check compares anything."
    )
    retrain_after_warnings: int = Field(
        3, ge=1, description="Consecutive drift warnings before the drift sensor asks to retrain."
    )

    @field_validator("drift_quantiles")
    @classmethod
    def _band(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"drift_quantiles must be 0 <= low < high <= 1, got {list(value)}")
        return value

def _format_validation_error(exc: ValidationError, source: str) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key (remove it or check its spelling)")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return f"invalid configuration in {source}:\n" + "\n".join(lines)


def parse_config[M: BaseModel](model: type[M], values: dict[str, Any], source: str) -> M:
    """Validate ``values`` into ``model``, turning pydantic's error into a :class:`ConfigError`."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing file or a non-mapping is a :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of keys to values")
    return values


def load_config[M: BaseModel](
    model: type[M], path: str | Path, overrides: dict[str, Any] | None = None
) -> M:
    """Load ``path`` into ``model``, applying ``overrides`` (nested dicts merge key by key)."""
    values = merge(read_yaml(path), overrides or {})
    return parse_config(model, values, str(path))


def merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``overrides`` into a copy of ``base``."""
    merged = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def default_config_path(name: str) -> Path:
    """Path of ``config/<name>.yaml`` in the project checkout."""
    return CONFIG_DIR / f"{name}.yaml"
