"""The manifest: what a model was trained on and how, written by training and parsed once by every
later reader into a :class:`Manifest`.

Every run carries what it was made from (RL Zoo's saved ``config.yml`` habit): the universe and
feature definition it observes, the periods it was trained and is to be tested on, the full
config, the library versions and the run's figures. Readers never index the JSON by hand.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from ploutos_core.artifacts.model_dir import stats_path_for
from ploutos_core.config import TrainingConfig
from ploutos_core.errors import ManifestError
from ploutos_core.storage import write_json_atomic

MANIFEST_FORMAT = 1
"""Version of the manifest's layout; a manifest of another version is refused (retrain)."""

Status = Literal["training", "interrupted", "complete"]
PolicyKind = Literal["shared", "encoder", "flat"]


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries a model depends on, for the manifest."""
    versions = {"python": platform.python_version()}
    for key, dist in (
        ("numpy", "numpy"),
        ("pandas", "pandas"),
        ("torch", "torch"),
        ("stable_baselines3", "stable-baselines3"),
        ("gymnasium", "gymnasium"),
        ("pandas_ta", "pandas-ta"),
        ("ploutos", "ploutos"),
    ):
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = "not installed"
    return versions


class Period(BaseModel):
    """An inclusive date range, ISO dates (YYYY-MM-DD)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str
    end: str

    def __str__(self) -> str:
        return f"{self.start} .. {self.end}"


class Manifest(BaseModel):
    """A model directory's ``manifest.json``.

    Parameters
    ----------
    status:
        ``training`` while it runs, then ``interrupted`` or ``complete``.
    model, vecnormalize:
        File names (in the directory) of the model the status refers to and of its statistics;
        None while training.
    tickers, feature_names:
        The universe and the features, in observation order.
    feature_version:
        ``ploutos_core.features.FEATURE_VERSION`` of the features trained on (None for features
        that do not come from the registry, e.g. a test's random ones).
    train_period, test_period:
        Fitted on the first; the backtest runs on the second.
    config:
        The full training config.
    versions:
        Python and library versions (:func:`library_versions`).
    device:
        Where it trained.
    resumed_from:
        The checkpoint this run continued, if any.
    timesteps:
        Timesteps trained in all (a resumed run counts the earlier ones).
    wall_time_s, steps_per_second, rollout_time_s, update_time_s, ep_rew_mean:
        Figures of the run (None until it ends).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal[1] = MANIFEST_FORMAT
    status: Status
    model: str | None = None
    vecnormalize: str | None = None
    tickers: tuple[str, ...]
    feature_names: tuple[str, ...]
    feature_version: str | None
    train_period: Period
    test_period: Period
    config: TrainingConfig
    versions: dict[str, str]
    device: str
    resumed_from: str | None = None
    timesteps: int
    wall_time_s: float | None = None
    steps_per_second: float | None = None
    rollout_time_s: float | None = None
    update_time_s: float | None = None
    ep_rew_mean: float | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def seed(self) -> int:
        """The run's seed (the config's)."""
        return self.config.seed

    @computed_field  # type: ignore[prop-decorator]
    @property
    def policy(self) -> PolicyKind:
        """``encoder`` (a per-ticker encoder in front of the MLPs), ``flat`` (the guide's MLP) or
        ``shared`` (one network per ticker and a pooled context; trades another universe)."""
        return self.config.policy

    def write(self, path: str | Path) -> Path:
        """Write the manifest as JSON to ``path``, atomically."""
        return write_json_atomic(path, self.model_dump(mode="json"))

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Parse ``path``.

        Raises
        ------
        ManifestError
            When the file is missing, unreadable, of another format or invalid; the message names
            the file and says to retrain.
        """
        path = Path(path)
        if not path.is_file():
            raise ManifestError(
                f"no manifest at {path}; a model directory written by `ploutos train` or the "
                "trained_model asset has one"
            )
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ManifestError(f"cannot read {path}: {exc}") from exc
        if not isinstance(values, dict) or values.get("format") != MANIFEST_FORMAT:
            found = values.get("format") if isinstance(values, dict) else None
            raise ManifestError(
                f"{path} has manifest format {found!r}, this Ploutos reads format "
                f"{MANIFEST_FORMAT}: the model was written by another version; retrain it"
            )
        return cls.parse(values, str(path))

    @classmethod
    def parse(cls, values: dict[str, Any], source: str) -> Manifest:
        """Validate ``values`` (a manifest's JSON object) read from ``source``."""
        stored = {k: v for k, v in values.items() if k not in cls.model_computed_fields}
        config = stored.get("config")
        old_flat = isinstance(config, dict) and config.get("ticker_encoder") == []
        if old_flat and "policy" not in config:
            # Written before the policy key: an empty ticker_encoder meant the flat MLP.
            stored["config"] = {**config, "policy": "flat"}
        if isinstance(config, dict) and "pooling" not in config:
            # Written before the pooling key: a shared policy pooled by max.
            stored["config"] = {**stored["config"], "pooling": "max"}
        try:
            return cls.model_validate(stored)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ManifestError(
                f"{source} is not a valid manifest ({problems}); retrain the model"
            ) from None

    def finished(self, status: Status, model_path: Path, figures: dict[str, Any]) -> Manifest:
        """This manifest once training stopped with ``status``, its model at ``model_path``."""
        return self.model_copy(
            update={
                "status": status,
                "model": model_path.name,
                "vecnormalize": stats_path_for(model_path).name,
                **figures,
            }
        )
