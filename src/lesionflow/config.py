"""Config checking against the workflow's JSON schema, with one-line errors that name the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from .errors import InputError


def load_schema(path: str | Path) -> dict[str, Any]:
    with open(path) as fh:
        return yaml.safe_load(fh)


def config_error(config: dict[str, Any], schema: dict[str, Any]) -> tuple[str, str] | None:
    """The dotted key (e.g. ``segmentation.folds``) of the first invalid value and the problem; None if valid."""
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(config))
    if error is None:
        return None
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {}))
        unknown = [k for k in error.instance if k not in known]
        message = f"unknown key(s) {', '.join(map(repr, unknown))} (known keys: {', '.join(known)})"
    elif "errorMessage" in error.schema:  # the schema's explanation, e.g. of a rule between two keys
        message = f"{message} ({error.schema['errorMessage']})"
    return key, message


def check_config(config: dict[str, Any], schema_path: str | Path) -> None:
    """Raise InputError naming the dotted key (e.g. ``segmentation.folds``) of the first invalid value."""
    if error := config_error(config, load_schema(schema_path)):
        key, message = error
        raise InputError(f"config key {key}: {message}")
