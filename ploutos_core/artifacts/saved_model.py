"""Saving a trained model with its statistics, and loading one for evaluation."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm

from ploutos_core.artifacts.manifest import Manifest
from ploutos_core.artifacts.model_dir import ModelDir, stats_path_for
from ploutos_core.config import EnvConfig
from ploutos_core.env.core import Policy
from ploutos_core.errors import ManifestError
from ploutos_core.storage import atomic_path


def save_model(model: BaseAlgorithm, path: str | Path) -> Path:
    """Save ``model`` and its VecNormalize statistics beside it, each atomically.

    The statistics are written first, so a model file never exists without its statistics.
    """
    path = Path(path)
    vec_normalize = model.get_vec_normalize_env()
    if vec_normalize is not None:
        with atomic_path(stats_path_for(path)) as tmp:
            vec_normalize.save(str(tmp))
    with atomic_path(path) as tmp, tmp.open("wb") as file:
        model.save(file)
    return path


@dataclass(frozen=True)
class TrainedModel:
    """A saved policy ready for evaluation.

    Attributes
    ----------
    model : stable_baselines3.PPO
        The policy, on the CPU.
    obs_stats : stable_baselines3.common.vec_env.VecNormalize
        Observation statistics from training, frozen (``training=False``, ``norm_reward=False``).
    manifest : Manifest
        The model directory's manifest.
    model_path, stats_path : Path
        The model file and its statistics.
    """

    model: Any
    obs_stats: Any
    manifest: Manifest
    model_path: Path
    stats_path: Path

    @property
    def model_dir(self) -> ModelDir:
        return ModelDir.of(self.model_path)

    @property
    def manifest_path(self) -> Path:
        return self.model_dir.manifest

    @property
    def env_config(self) -> EnvConfig:
        """The environment settings the model was trained with (costs, sizing, capital)."""
        return self.manifest.config.env

    @property
    def test_period(self) -> tuple[str, str]:
        """``(start, end)`` of the test period, ISO dates."""
        return self.manifest.test_period.start, self.manifest.test_period.end

    def policy(self, deterministic: bool = True) -> Policy:
        """The model as a :data:`Policy` on raw observations (normalized with ``obs_stats``).

        The actions are those of ``model.predict`` on the probabilities of
        :meth:`probabilities`: deterministic, their argmax (SB3's ``mode()``, tested equal);
        stochastic, a sample of the same distribution (not the same random stream as
        ``predict``).
        """
        import torch

        probabilities = self.probabilities_function()

        def act(obs: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                probs = probabilities(obs)
                if deterministic:
                    actions = probs.argmax(dim=-1)
                else:
                    actions = torch.distributions.Categorical(
                        probs=probs, validate_args=False
                    ).sample()
            return actions.cpu().numpy()

        return act

    def probabilities_function(self) -> Callable[[np.ndarray], Any]:
        """Raw observations ``[B, obs_size]`` -> the policy's action probabilities, a torch
        tensor ``[B, N, 3]`` (hold, buy, sell), computed without gradients.

        The observations are normalized with the frozen ``obs_stats`` and go through the policy
        network's steps of ``ActorCriticPolicy.get_distribution`` (features, actor latent,
        action logits), then one batched ``Categorical`` over ``[batch, N, 3]`` logits instead
        of SB3's ``MultiCategoricalDistribution``, which builds one distribution object per
        ticker and costs ~25 ms a bar at 500 tickers. A ``shared`` policy
        (:class:`~ploutos_core.training.policies.SharedTickerPolicy`) takes observations of any
        number of tickers.
        """
        import torch
        from stable_baselines3.common.preprocessing import preprocess_obs

        net = self.model.policy
        net.set_training_mode(False)
        nvec = self.model.action_space.nvec
        n_tickers, n_choices = len(nvec), int(nvec[0])
        # A shared-ticker policy reads the number of tickers from each observation, so it acts
        # on another universe than the one it was trained on.
        any_universe = hasattr(net, "action_logits")

        def logits_of(normalized: torch.Tensor) -> torch.Tensor:
            if any_universe:
                return net.action_logits(normalized)
            features = net.pi_features_extractor(
                preprocess_obs(normalized, net.observation_space, net.normalize_images)
            )
            logits = net.action_net(net.mlp_extractor.forward_actor(features))
            return logits.reshape(-1, n_tickers, n_choices)

        def probabilities(obs: np.ndarray) -> torch.Tensor:
            normalized = torch.as_tensor(self.obs_stats.normalize_obs(obs), device=net.device)
            with torch.no_grad():
                return torch.distributions.Categorical(
                    logits=logits_of(normalized), validate_args=False
                ).probs

        return probabilities


def _fast_load_objects(model_path: Path) -> dict[str, Any]:
    """The saved ``policy_kwargs`` with ``ortho_init=False``.

    ``PPO.load`` builds the policy, initializing it, and then overwrites every weight with the
    saved ones; orthogonal initialization of the first layer (a QR decomposition of a
    ``obs_size x 256`` matrix) costs over a second at 500 tickers for nothing.
    """
    from stable_baselines3.common.save_util import json_to_data

    try:
        with zipfile.ZipFile(model_path) as archive:
            data = json_to_data(archive.read("data").decode())
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ManifestError(f"{model_path} is not a Stable-Baselines3 model file: {exc}") from exc
    return {"policy_kwargs": {**data.get("policy_kwargs", {}), "ortho_init": False}}


def load_trained_model(model_path: str | Path) -> TrainedModel:
    """Load a model zip, its VecNormalize statistics and its directory's manifest.

    Parameters
    ----------
    model_path:
        ``final_model.zip``, ``checkpoint_<steps>_steps.zip`` or ``interrupted_model.zip``; the
        statistics are found with :func:`ploutos_core.artifacts.model_dir.stats_path_for`.

    Raises
    ------
    ManifestError
        When the model, its statistics or the manifest is missing or unreadable, or the
        statistics do not fit the model's observations.
    """
    from stable_baselines3 import PPO

    model_path = Path(model_path)
    if not model_path.is_file():
        raise ManifestError(
            f"no model at {model_path}; pass final_model.zip or a checkpoint of a model directory"
        )
    stats_path = stats_path_for(model_path)
    if not stats_path.is_file():
        raise ManifestError(
            f"no VecNormalize statistics at {stats_path} for {model_path.name}: a model is "
            "evaluated with the statistics saved beside it"
        )
    manifest_path = ModelDir.of(model_path).manifest
    manifest = Manifest.read(manifest_path)
    try:
        with stats_path.open("rb") as handle:
            obs_stats = pickle.load(handle)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError) as exc:
        raise ManifestError(f"cannot read the VecNormalize statistics {stats_path}: {exc}") from exc
    obs_stats.training = False
    obs_stats.norm_reward = False
    model = PPO.load(model_path, device="cpu", custom_objects=_fast_load_objects(model_path))
    nvec = np.asarray(getattr(model.action_space, "nvec", []))
    if nvec.size != len(manifest.tickers) or not np.all(nvec == 3):
        raise ManifestError(
            f"{model_path} has action space {model.action_space} but its manifest lists "
            f"{len(manifest.tickers)} tickers with hold/buy/sell each: the model and "
            f"{manifest_path} do not belong together"
        )
    # Pooled statistics (ploutos_core.training.normalization) know their features per ticker.
    if getattr(obs_stats.obs_rms, "n_features", None) != len(manifest.feature_names):
        raise ManifestError(
            f"{stats_path} does not hold pooled statistics of {len(manifest.feature_names)} "
            f"features: it belongs to another model or an earlier Ploutos; retrain the model"
        )
    return TrainedModel(model, obs_stats, manifest, model_path, stats_path)
