"""The training environment and the PPO model: VecNormalize over the vectorized portfolio, the
policy's network shape, the learning-rate schedule, and resuming a saved model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.utils import ConstantSchedule, LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

from ploutos_core.config import TrainingConfig
from ploutos_core.env import PortfolioVecEnv
from ploutos_core.errors import ConfigError, ManifestError
from ploutos_core.market import MarketData
from ploutos_core.training.distributions import use_batched_distribution
from ploutos_core.training.encoders import TickerEncoder
from ploutos_core.training.normalization import PooledVecNormalize
from ploutos_core.training.policies import SHARED_HEAD, SharedTickerPolicy


def build_env(
    config: TrainingConfig, market: MarketData, *, stats: Path | None = None
) -> VecNormalize:
    """``PortfolioVecEnv`` over ``market`` wrapped in a training-mode
    :class:`~ploutos_core.training.normalization.PooledVecNormalize`.

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
        return PooledVecNormalize(
            venv,
            market.F,
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


def policy_class(config: TrainingConfig) -> str | type[SharedTickerPolicy]:
    """The SB3 policy of ``config.policy``: ``MlpPolicy`` (encoder, flat) or
    :class:`~ploutos_core.training.policies.SharedTickerPolicy` (shared)."""
    return SharedTickerPolicy if config.policy == "shared" else "MlpPolicy"


def policy_kwargs(config: TrainingConfig, n_tickers: int, n_features: int) -> dict[str, Any]:
    """SB3 ``policy_kwargs`` for ``config.policy``.

    ``flat``: ``MlpPolicy``'s ``net_arch``; ``encoder``: the same behind a
    :class:`~ploutos_core.training.encoders.TickerEncoder` of ``ticker_encoder`` widths;
    ``shared``: :class:`SharedTickerPolicy` with ``ticker_encoder`` per-ticker layers, the
    ``pooling`` summary, the :data:`~ploutos_core.training.policies.SHARED_HEAD` actor head and
    a ``net_arch`` critic.
    """
    if config.policy == "shared":
        return {
            "n_features": n_features,
            "ticker_widths": list(config.ticker_encoder),
            "head_widths": list(SHARED_HEAD),
            "critic_widths": list(config.net_arch),
            "pooling": config.pooling,
        }
    kwargs: dict[str, Any] = {"net_arch": list(config.net_arch)}
    if config.policy == "encoder":
        kwargs["features_extractor_class"] = TickerEncoder
        kwargs["features_extractor_kwargs"] = {
            "n_tickers": n_tickers,
            "n_features": n_features,
            "widths": list(config.ticker_encoder),
        }
    return kwargs


def saved_policy(model: PPO) -> tuple[str, list[int], list[int]]:
    """``(policy, net_arch, ticker_encoder)`` of a loaded model, in the config's terms."""
    kwargs = model.policy_kwargs
    if isinstance(model.policy, SharedTickerPolicy):
        return "shared", list(kwargs.get("critic_widths", [])), list(kwargs["ticker_widths"])
    widths = list(kwargs.get("features_extractor_kwargs", {}).get("widths", []))
    net_arch = kwargs.get("net_arch")
    arch = list(net_arch) if net_arch is not None else []
    return ("encoder" if widths else "flat"), arch, widths


def build_model(
    config: TrainingConfig,
    env: VecNormalize,
    device: torch.device,
    tensorboard_dir: Path,
    *,
    resume: Path | None = None,
) -> PPO:
    """A new PPO model of ``config.policy`` (:func:`policy_class`), or the model at ``resume``
    continued on ``env``.

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
        policy_class(config),
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
    policy, saved_arch, saved_encoder = saved_policy(model)
    if policy != config.policy:
        raise ConfigError(
            f"{resume} has policy {policy!r} but the config says {config.policy!r}; "
            "resume with the config the model was trained with"
        )
    if saved_arch and saved_arch != list(config.net_arch):
        raise ConfigError(
            f"{resume} has net_arch {saved_arch} but the config says {config.net_arch}; "
            "resume with the config the model was trained with"
        )
    if policy != "flat" and saved_encoder != list(config.ticker_encoder):
        raise ConfigError(
            f"{resume} has ticker_encoder {saved_encoder} but the config says "
            f"{config.ticker_encoder}; resume with the config the model was trained with"
        )
    if policy == "shared" and model.policy.pooling != config.pooling:
        raise ConfigError(
            f"{resume} has pooling {model.policy.pooling!r} but the config says "
            f"{config.pooling!r}; resume with the config the model was trained with"
        )
    return model


def _universe_shape(env: VecNormalize) -> tuple[int, int]:
    """Tickers and features per ticker of the market ``env`` trades."""
    market = env.unwrapped.market
    return market.N, len(market.feature_names)
