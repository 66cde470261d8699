"""Every configuration key of the schema is described in config/README.md, and every shipped config is valid."""

from __future__ import annotations

import re

import pytest
import yaml
from snakemake.utils import validate

from lesionflow.config import check_config

from support import ROOT

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def _resolve(schema: dict, node: dict) -> dict:
    """``node`` with its ``$ref`` (a JSON pointer into ``schema``) merged in."""
    if "$ref" not in node:
        return node
    target = schema
    for part in node["$ref"].removeprefix("#/").split("/"):
        target = target[part]
    return {**_resolve(schema, target), **{k: v for k, v in node.items() if k != "$ref"}}


def schema_keys(schema: dict, node: dict | None = None, prefix: str = "") -> list[str]:
    """Every setting the schema names, as dotted paths (``segmentation.training.epochs``): the keys that hold
    values, not the sections that only group other keys."""
    node = _resolve(schema, schema if node is None else node)
    keys = []
    for name, child in (node.get("properties") or {}).items():
        inner = schema_keys(schema, child, f"{prefix}{name}.")
        keys += inner or [prefix + name]
    return keys


def documented(key: str, text: str) -> bool:
    """Named in full (`` `a.b.c` ``), or as `` `.c` `` on a line that names a sibling (`` `a.b.x` ``)."""
    if f"`{key}`" in text:
        return True
    parent, _, leaf = key.rpartition(".")
    return any(f"`{parent}." in line and f"`.{leaf}`" in line for line in text.splitlines()) if parent else False


def test_every_schema_key_is_described_in_config_readme():
    schema = yaml.safe_load(SCHEMA.read_text())
    keys = schema_keys(schema)
    assert len(keys) > 60 and "segmentation.training.augmentation.shift" in keys
    text = (ROOT / "config/README.md").read_text()
    assert [key for key in keys if not documented(key, text)] == []


@pytest.mark.parametrize(
    "path",
    [
        "config/config.yaml",
        "config/isic2018.yaml",
        "config/original.yaml",
        "config/experiments/class_weights.yaml",
        ".test/config.yaml",
    ],
)
def test_shipped_configs_are_valid(path):
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    if path != "config/config.yaml":  # merged over the default, as Snakemake merges config files

        def merge(into: dict, new: dict) -> dict:
            for key, value in new.items():
                into[key] = merge(dict(into.get(key) or {}), value) if isinstance(value, dict) else value
            return into

        config = merge(config, yaml.safe_load((ROOT / path).read_text()))
    check_config(config, SCHEMA)
    validate(config, schema=str(SCHEMA))
    assert re.match(r"^\S", config["data_dir"])


def test_the_original_preset_sets_the_original_codes_method():
    original = yaml.safe_load((ROOT / "config/original.yaml").read_text())
    seg, cls = original["segmentation"], original["classification"]
    assert seg["model"]["decoder"] == "transpose" and seg["training"]["learning_rate"] == 1e-4
    assert (seg["training"]["lr_factor"], seg["training"]["lr_patience"]) == (0.5, 2)
    assert (cls["training"]["lr_factor"], cls["training"]["lr_patience"]) == (0.25, 2)
    for stage in (seg, cls):
        augmentation = stage["training"]["augmentation"]
        assert (augmentation["rotation_range"], augmentation["fill"], augmentation["rotate90"]) == (
            180,
            "nearest",
            False,
        )
        assert stage["prediction"]["tta"] is False
    assert seg["postprocess"]["resize"] == "mask"
    assert (cls["training"]["loss"], cls["training"]["class_weights"], cls["training"]["passes_per_epoch"]) == (
        "crossentropy",
        "ones",
        2,
    )
    assert (cls["prediction"]["ensemble"], cls["prediction"]["min_probability"]) == ("logits", 0.001)
