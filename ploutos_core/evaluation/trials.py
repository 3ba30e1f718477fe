"""The trial registry: every distinct training configuration evaluated on a dataset, once.

The Deflated Sharpe Ratio needs the number of trials behind a selected agent and the spread of
their Sharpe ratios; the PBO needs their out-of-sample return series side by side. Both are
honest only if *every* configuration ever tried on the data is counted, including the ones
that were discarded, so each evaluation registers its trial here.

What makes a trial distinct (:func:`trial_key`): the SHA-256 of the training configuration as
canonical JSON, without the keys in :data:`IGNORED_KEYS`:

- ``seed``: seeds are repeats of one trial (the evaluation already spans seeds), not new
  configurations to select among;
- ``device``: where training ran changes no hyperparameter;
- ``checkpoint_freq``, ``keep_checkpoints``, ``nan_tolerance``: bookkeeping.

``total_timesteps`` *is* part of the key: choosing the best of several training lengths is a
selection like any other, and the DSR must count it.

Trials are grouped by the caller's data fingerprint (e.g. :func:`ploutos_core.data.lineage.
frame_fingerprint` of the data, plus the fold layout when it changes): trials on different data
are different experiments. The file is JSON, rewritten atomically under an exclusive lock::

    {"version": 1, "datasets": {fingerprint: {trial_key: {"config": {...}, "returns": [...]}}}}
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

from ploutos_core.errors import StorageError
from ploutos_core.evaluation.sharpe import sharpe_ratio
from ploutos_core.storage import write_json_atomic

VERSION = 1
IGNORED_KEYS = frozenset({"seed", "device", "checkpoint_freq", "keep_checkpoints", "nan_tolerance"})


def trial_key(training_config: BaseModel | Mapping[str, Any]) -> str:
    """The identity of a trial: a hash of its configuration without :data:`IGNORED_KEYS`."""
    values = (
        training_config.model_dump(mode="json")
        if isinstance(training_config, BaseModel)
        else dict(training_config)
    )
    kept = {k: v for k, v in values.items() if k not in IGNORED_KEYS}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TrialRegistry:
    """The registry file at ``path`` (created on the first :meth:`register`)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def register(
        self,
        data_fingerprint: str,
        training_config: BaseModel | Mapping[str, Any],
        returns: np.ndarray,
    ) -> bool:
        """Record a trial's out-of-sample per-bar returns on the data ``data_fingerprint``.

        A trial already recorded keeps its first returns (the ones its selection was based on)
        and is counted once. Returns whether the trial was new.
        """
        series = np.asarray(returns, dtype=np.float64).reshape(-1)
        if series.size < 2 or not np.all(np.isfinite(series)):
            raise ValueError(f"a trial needs at least 2 finite returns, got {series.size} values")
        key = trial_key(training_config)
        with self._locked():
            content = self._read()
            trials = content["datasets"].setdefault(data_fingerprint, {})
            if key in trials:
                return False
            config = (
                training_config.model_dump(mode="json")
                if isinstance(training_config, BaseModel)
                else dict(training_config)
            )
            trials[key] = {"config": config, "returns": series.tolist()}
            write_json_atomic(self.path, content)
        return True

    def n_trials(self, data_fingerprint: str) -> int:
        """How many distinct configurations were evaluated on the data: the DSR's N."""
        return len(self._trials(data_fingerprint))

    def trial_keys(self, data_fingerprint: str) -> list[str]:
        """The trials' keys, in the column order of :meth:`returns_matrix`."""
        return sorted(self._trials(data_fingerprint))

    def returns_matrix(self, data_fingerprint: str) -> np.ndarray:
        """``[time, trials]`` out-of-sample returns, columns in :meth:`trial_keys` order, for
        :func:`~ploutos_core.evaluation.overfitting.probability_of_backtest_overfitting`.

        Raises ``ValueError`` when the series differ in length (they must cover the same bars).
        """
        trials = self._trials(data_fingerprint)
        if not trials:
            return np.empty((0, 0))
        lengths = {key: len(trials[key]["returns"]) for key in sorted(trials)}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"the trials on {data_fingerprint} have return series of different lengths "
                f"({lengths}); register returns over the same test bars"
            )
        return np.column_stack([trials[key]["returns"] for key in sorted(trials)])

    def trial_sharpes(self, data_fingerprint: str) -> np.ndarray:
        """Each trial's per-period Sharpe ratio, for the DSR's variance of trials."""
        trials = self._trials(data_fingerprint)
        return np.array([sharpe_ratio(np.asarray(trials[k]["returns"])) for k in sorted(trials)])

    def _trials(self, data_fingerprint: str) -> dict[str, Any]:
        return self._read()["datasets"].get(data_fingerprint, {})

    def _read(self) -> dict[str, Any]:
        try:
            content = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {"version": VERSION, "datasets": {}}
        except (OSError, ValueError) as exc:
            raise StorageError(
                f"cannot read the trial registry {self.path}: {exc}; restore it or move it away "
                "(trial counts then restart at zero)"
            ) from exc
        if content.get("version") != VERSION or not isinstance(content.get("datasets"), dict):
            raise StorageError(
                f"{self.path} is not a version-{VERSION} trial registry; move it away"
            )
        return content

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serialize read-modify-write between processes (parallel Dagster runs)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            lock_path.parent.mkdir(parents=True, exist_ok=True)
            handle = lock_path.open("a")
        except OSError as exc:
            raise StorageError(f"cannot lock {lock_path}: {exc.strerror}") from exc
        with handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
