"""``dg.Config`` classes generated from the core's pydantic models, defaults from config/*.yaml.

The core models (``ploutos_core.config``) are the one definition of every setting; this module
mirrors them for the Dagster launchpad so that field names match the YAML keys and the defaults
shown in the UI are the YAML's. Run config overrides a field; the asset turns the values back into
the core model, which validates them (unknown keys and bad values are errors).
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg
from pydantic import BaseModel, Field, create_model

from ploutos_core.config import default_config_path, merge, parse_config, read_yaml


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def config_class(
    model: type[BaseModel], defaults: dict[str, Any], name: str
) -> type[dg.Config]:
    """A ``dg.Config`` with ``model``'s fields, descriptions and types; ``defaults`` first."""
    fields: dict[str, Any] = {}
    for key, info in model.model_fields.items():
        annotation = info.annotation
        if _is_model(annotation):
            nested = config_class(annotation, defaults.get(key, {}), f"{name}_{key}")
            fields[key] = (nested, Field(default_factory=nested, description=info.description))
            continue
        default = defaults.get(key, info.get_default(call_default_factory=True))
        fields[key] = (annotation, Field(default=default, description=info.description))
    return create_model(name, __base__=dg.Config, **fields)


def config_class_from_yaml(
    model: type[BaseModel], yaml_name: str, name: str, overlay_env: str | None = None
) -> type[dg.Config]:
    """:func:`config_class` with defaults read from ``config/<yaml_name>.yaml``.

    When the environment variable ``overlay_env`` names a YAML file, its keys override the
    defaults (e.g. ``PLOUTOS_TRAINING_CONFIG=config/demo_training.yaml make ui``).
    """
    source = str(default_config_path(yaml_name))
    defaults = read_yaml(source)
    overlay = os.environ.get(overlay_env) if overlay_env else None
    if overlay:
        defaults = merge(defaults, read_yaml(overlay))
        source = f"{source} + {overlay}"
    parse_config(model, defaults, source)
    return config_class(model, defaults, name)


def to_core[M: BaseModel](config: dg.Config, model: type[M], source: str) -> M:
    """Validate launchpad values into the core model."""
    return parse_config(model, config.model_dump(), source)
