"""Promotion: the record that a model directory passed the evaluation gate.

Walk-forward evidence is about the procedure (the training config), not about one set of
weights, so the model that is deployed is the procedure's model trained by ``trained_model``;
it is promoted when a verdict that judged *that config* (same :func:`trial_key`) promotes it.
``promotion.json`` in the model directory records the verdict it was promoted by; everything
that acts on a model (signals, the paper ledger) refuses a directory without one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from ploutos_core.artifacts import Manifest, ModelDir
from ploutos_core.errors import ManifestError
from ploutos_core.evaluation.trials import trial_key
from ploutos_core.storage import write_json_atomic

PROMOTION = "promotion.json"


class PromotionError(ManifestError):
    """A model is not (or cannot be) promoted; the message says which verdict or step is missing."""


class Promotion(BaseModel):
    """A model directory's ``promotion.json``.

    Parameters
    ----------
    promoted_at:
        When it was promoted (UTC, ISO 8601).
    verdict:
        The ``verdict.json`` that promoted it.
    trial_key:
        The judged config's :func:`~ploutos_core.evaluation.trials.trial_key`; equal to the
        model's own.
    data_fingerprint:
        The market the verdict was computed on.
    agent_iqm_sharpe, dsr, pbo:
        The verdict's headline figures, for whoever reads the promotion alone.
    last_bar:
        The latest bar of the data when the model was promoted (ISO date): the paper ledger
        decides its first orders on it, for the session after it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    promoted_at: str
    verdict: str
    trial_key: str
    data_fingerprint: str
    agent_iqm_sharpe: float
    dsr: float
    pbo: float | None
    last_bar: str


def promotion_path(model_dir: ModelDir) -> Path:
    return model_dir.path / PROMOTION


def promote(
    model_dir: ModelDir, verdict: Mapping[str, Any], verdict_path: str | Path, *, last_bar: str
) -> Promotion:
    """Record that ``model_dir`` is promoted by ``verdict`` (``verdict.json``'s content) when the
    data's latest bar is ``last_bar`` (ISO date).

    Raises
    ------
    PromotionError
        When the verdict does not promote, judged another config than the model's, or the model
        did not finish training.
    """
    if not verdict.get("promoted"):
        reasons = "; ".join(verdict.get("reasons", [])) or "no reasons recorded"
        raise PromotionError(
            f"the verdict {verdict_path} does not promote the agent ({reasons}); the model in "
            f"{model_dir.path} stays unpromoted"
        )
    manifest = Manifest.read(model_dir.manifest)
    if manifest.status != "complete":
        raise PromotionError(
            f"the model in {model_dir.path} is {manifest.status}, not complete; train it to the end"
        )
    model_key = trial_key(manifest.config)
    judged_key = verdict.get("trial_key")
    if judged_key != model_key:
        raise PromotionError(
            f"the verdict {verdict_path} judged config {judged_key}, the model in "
            f"{model_dir.path} was trained with config {model_key}; evaluate this config "
            "(materialize fold_model, fold_backtest and verdict with the same training config) "
            "or retrain with the judged one"
        )
    promotion = Promotion(
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        verdict=str(verdict_path),
        trial_key=model_key,
        data_fingerprint=str(verdict.get("data_fingerprint", "")),
        agent_iqm_sharpe=float(verdict["agent"]["sharpe"]["iqm"]),
        dsr=float(verdict["dsr"]),
        pbo=None if verdict.get("pbo") is None else float(verdict["pbo"]),
        last_bar=last_bar,
    )
    write_json_atomic(promotion_path(model_dir), promotion.model_dump(mode="json"))
    return promotion


def read_promotion(model_dir: ModelDir, shown_as: str | None = None) -> Promotion:
    """The promotion of ``model_dir``; messages name the directory ``shown_as`` (its URL when
    ``model_dir`` is a working copy) or its path.

    Raises
    ------
    PromotionError
        When the directory holds no model or was never promoted.
    """
    where = shown_as or str(model_dir.path)
    if not model_dir.manifest.is_file():
        raise PromotionError(
            f"{where} is not a model directory (no {model_dir.manifest.name}); pass the "
            "directory `ploutos train` or the trained_model asset wrote"
        )
    path = promotion_path(model_dir)
    if not path.is_file():
        raise PromotionError(
            f"the model in {where} was never promoted (no {PROMOTION}): evaluate its "
            "config and materialize production_model, which promotes it when the verdict passes "
            "promotion_gate"
        )
    try:
        return Promotion.model_validate(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise PromotionError(
            f"cannot read {PROMOTION} of {where}: {exc}; materialize production_model again"
        ) from exc
