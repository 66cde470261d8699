"""Experiments: variants of the configuration run side by side in one DAG, sharing what they do not change.

The config's ``experiments`` section maps a name to overrides of the configuration, nested as in the config
(e.g. ``{classification: {training: {class_weights: ones}}}``). Each experiment's outputs go under
``results/experiments/<name>/`` with the layout of ``results/``. The workflow is a chain of steps
(:data:`STEPS`); a step's outputs depend on its own settings and on every earlier step's. An experiment
whose settings up to a step equal those of the base configuration (or of an earlier experiment) reads
that step's outputs from there instead of computing them again: a classifier-only experiment reuses the
resize caches, segmentation models, masks and masked crops; one that changes the segmentation encoder
reuses only the caches. Each stage's training (fold models) is a step apart from its prediction (test-time
augmentation, post-processing, how the folds are combined), so an experiment that changes only how a stage
predicts reuses that stage's fold models and trains nothing of it.

The base configuration is the experiment :data:`BASE`; its folder is ``results/`` itself.
"""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from .config import config_error
from .errors import InputError

#: The name of the base configuration in comparisons; not allowed as an experiment's name.
BASE = "base"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
#: Top-level config sections an experiment may override; the rest (data, GPUs, retries, folders to
#: predict, export) belong to the workflow as a whole.
OVERRIDABLE = ("seed", "speed", "segmentation", "masking", "classification")
#: Keys of the stage sections set once for the whole workflow: what a job asks the machine or cluster for.
WORKFLOW_WIDE = ("resources",)

#: The workflow's steps in DAG order. Each reads the outputs of the steps before it.
STEPS = ("cache", "segmentation_models", "segmentation", "masked", "classification_models", "classification")
#: The keys of a stage's section that only its prediction reads (its ensemble.json): not the fold models'.
PREDICTION_KEYS = {"segmentation": ("postprocess", "prediction"), "classification": ("prediction",)}
#: What ``experiments_select`` may name: a held-out metric of one stage, higher is better.
SELECTABLE = {
    "jaccard": "segmentation",
    "threshold_jaccard": "segmentation",
    "dice": "segmentation",
    "balanced_accuracy": "classification",
    "macro_auc": "classification",
    "mean_average_precision": "classification",
}


def step_settings(config: Mapping[str, Any], step: str) -> dict[str, Any]:
    """The settings that ``step``'s own outputs depend on (the steps before it aside)."""
    segmentation, classification = config["segmentation"], config["classification"]
    if step == "cache":  # results/cache/{seg_train,train,validation,test}: images resized for the U-Net
        return {"segmentation.image_size": segmentation["image_size"]}
    if step == "segmentation_models":  # segmentation/folds.csv and the U-Nets segmentation/fold_*/
        return {
            "seed": config["seed"],
            "speed": config["speed"],
            "segmentation": _without(segmentation, WORKFLOW_WIDE + PREDICTION_KEYS["segmentation"]),
        }
    if step == "segmentation":  # the ensemble, held-out scores, masks of every set
        return {f"segmentation.{key}": segmentation[key] for key in PREDICTION_KEYS["segmentation"]}
    if step == "masked":  # lesion crops and the classifier's caches
        return {"masking": config["masking"], "classification.image_size": classification["image_size"]}
    if step == "classification_models":  # classification/folds.csv and the classifiers classification/fold_*/
        return {"classification": _without(classification, WORKFLOW_WIDE + PREDICTION_KEYS["classification"])}
    if step == "classification":  # the ensemble, held-out scores, submission CSVs
        return {f"classification.{key}": classification[key] for key in PREDICTION_KEYS["classification"]}
    raise ValueError(f"unknown step {step!r} (steps: {', '.join(STEPS)})")


def _without(section: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in section.items() if k not in keys}


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in: nested mappings key by key; any other value (lists too) replaced."""
    result = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dotted keys, e.g. ``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


@dataclass(frozen=True)
class Experiment:
    """One configuration of the comparison: the base one or a named variant of it.

    ``folder`` is where its own outputs go, relative to ``results/``: ``""`` for the base configuration,
    ``experiments/<name>/`` for an experiment. ``sources`` gives, for each step, the folder its outputs are
    read from: its own, or the one of the first configuration with the same settings up to that step.
    """

    name: str
    overrides: dict[str, Any]
    config: dict[str, Any]
    folder: str
    sources: dict[str, str] = field(default_factory=dict)

    def source(self, step: str) -> str:
        return self.sources[step]

    def owns(self, step: str) -> bool:
        """Whether this configuration computes ``step`` itself."""
        return self.sources[step] == self.folder

    def changes(self, base: "Experiment") -> list[tuple[str, Any, Any]]:
        """The settings this configuration changes: (dotted key, base value, value), in key order."""
        mine = flatten({k: self.config[k] for k in OVERRIDABLE})
        theirs = flatten({k: base.config[k] for k in OVERRIDABLE})
        return [
            (k, theirs.get(k), mine.get(k)) for k in sorted(set(mine) | set(theirs)) if mine.get(k) != theirs.get(k)
        ]

    def describe(self, base: "Experiment") -> dict[str, Any]:
        """What results/experiments/experiments.json records of it."""
        return {
            "folder": f"results/{self.folder}",
            "overrides": self.overrides,
            "changes": [{"key": k, "base": b, "value": v} for k, b, v in self.changes(base)],
            "reads": {step: f"results/{self.sources[step]}" for step in STEPS},
        }


def experiment_folder(name: str) -> str:
    return "" if name == BASE else f"experiments/{name}/"


def check_overrides(name: str, overrides: Any) -> None:
    """One line naming ``experiments.<name>`` for a bad name or an override of a workflow-wide setting."""
    where = f"config key experiments.{name}"
    if name == BASE or not NAME_PATTERN.match(name):
        raise InputError(
            f"{where}: an experiment's name is letters, digits, _ and - ({BASE!r} names the base configuration)"
        )
    if not isinstance(overrides, Mapping) or not overrides:
        raise InputError(f"{where}: must be a mapping of overrides, e.g. {{classification: {{training: {{...}}}}}}")
    if unknown := [k for k in overrides if k not in OVERRIDABLE]:
        raise InputError(
            f"{where}: cannot override {', '.join(map(repr, unknown))}; an experiment overrides "
            f"{', '.join(OVERRIDABLE)} (the other sections are set once for the whole workflow)"
        )
    for stage in ("segmentation", "classification"):
        section = overrides.get(stage)
        if isinstance(section, Mapping):
            for key in WORKFLOW_WIDE:
                if key in section:
                    raise InputError(
                        f"{where}.{stage}.{key}: set once for the whole workflow, not per experiment "
                        f"(set {stage}.{key} instead)"
                    )


def plan_experiments(config: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Experiment]:
    """The base configuration (first, as :data:`BASE`) and each configured experiment, with the folder each
    step's outputs are read from. ``config`` has the schema's defaults filled in; each experiment's merged
    configuration is checked against ``schema``, and a bad value raises one line naming
    ``experiments.<name>.<key>``."""
    base_config = {k: v for k, v in config.items() if k not in ("experiments", "experiments_select")}
    if config.get("experiments_select") is not None and not config.get("experiments"):
        raise InputError("config key experiments_select: there are no experiments to select from (set experiments)")
    configs: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {BASE: ({}, base_config)}
    for name, overrides in (config.get("experiments") or {}).items():
        name = str(name)
        check_overrides(name, overrides)
        effective = merged(base_config, overrides)
        if error := config_error(effective, schema):
            key, message = error
            raise InputError(f"config key experiments.{name}.{key}: {message}")
        configs[name] = (copy.deepcopy(dict(overrides)), effective)

    planned: dict[str, Experiment] = {}
    first_with: dict[str, str] = {}  # settings of the steps up to one, as JSON -> the first folder with them
    for name, (overrides, effective) in configs.items():
        folder = experiment_folder(name)
        sources, upstream = {}, []
        for step in STEPS:
            upstream.append(step_settings(effective, step))
            key = step + json.dumps(upstream, sort_keys=True, default=str)
            sources[step] = first_with.setdefault(key, folder)
        planned[name] = Experiment(name, overrides, effective, folder, sources)
    return planned


def owners_pattern(experiments: Mapping[str, Experiment], step: str) -> str:
    """A regular expression matching the folders that compute ``step`` themselves (``""`` for the base), as a
    group: never the empty string, which Snakemake would take for no constraint at all."""
    return "(?:" + "|".join(re.escape(e.folder) for e in experiments.values() if e.owns(step)) + ")"


def select_experiment(comparison: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The configuration with the highest held-out mean of ``metric`` (the first of them on a tie, the base
    configuration first): what results/experiments/selected.json records."""
    if metric not in SELECTABLE:
        raise InputError(f"experiments_select: {metric!r} is not one of {', '.join(SELECTABLE)}")
    stage = SELECTABLE[metric]
    means = comparison[(comparison["stage"] == stage) & (comparison["fold"].astype(str) == "mean")]
    if metric not in means or means.empty:
        raise InputError(f"the comparison has no held-out mean of {stage} {metric}")
    scores = {str(name): float(value) for name, value in zip(means["experiment"], means[metric])}
    if all(math.isnan(v) for v in scores.values()):
        raise InputError(f"no configuration has a held-out mean of {stage} {metric}")
    best = max(scores, key=lambda name: (not math.isnan(scores[name]), scores[name]))  # max keeps the first
    return {"metric": metric, "stage": stage, "selected": best, "mean": scores[best], "means": scores}


def copy_selected(selected: Mapping[str, Any], candidates: Mapping[str, str], destination: str | Path) -> str:
    """Copy the selected configuration's file or folder (``candidates``: name -> path) to ``destination``,
    atomically; return the path copied."""
    from .imageio import atomic_dir, atomic_path

    name = selected.get("selected") if isinstance(selected, Mapping) else None
    if name not in candidates:
        raise InputError(f"the selected configuration {name!r} is not one of {', '.join(candidates)}")
    source = Path(candidates[name])
    if source.is_dir():
        with atomic_dir(destination) as tmp:
            for item in sorted(source.iterdir()):
                shutil.copy2(item, tmp / item.name)
    else:
        with atomic_path(destination) as tmp:
            shutil.copy2(source, tmp)
    return str(source)


# ------------------------------------------------------------------ the comparison


def _fold_label(key: str) -> str:
    return key[len("fold_") :] if key.startswith("fold_") else key


def _scalars(record: Mapping[str, Any]) -> dict[str, float]:
    return {
        k: (math.nan if v is None else float(v))
        for k, v in record.items()
        if (isinstance(v, (int, float)) and not isinstance(v, bool)) or v is None
    }


def comparison_table(metrics: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """One row per experiment, stage and held-out fold, then one per experiment and stage with fold ``mean``.

    ``metrics`` maps an experiment's name to its stages' metrics JSON (``results/metrics/{stage}.json``:
    ``folds`` of ``fold_<k>`` entries and ``mean``). Columns: ``experiment``, ``stage``, ``fold``, then
    each stage's scalar metrics in the order they first appear (empty where a stage lacks one).
    """
    rows: list[dict[str, Any]] = []
    for name, stages in metrics.items():
        for stage, record in stages.items():
            if not isinstance(record, Mapping) or not isinstance(record.get("folds"), Mapping):
                raise InputError(f"the {stage} metrics of experiment {name!r} lack 'folds'")
            if "mean" not in record:
                raise InputError(f"the {stage} metrics of experiment {name!r} lack 'mean'")
            folds = sorted(record["folds"].items(), key=lambda kv: (len(kv[0]), kv[0]))
            for key, scores in folds:
                rows.append({"experiment": name, "stage": stage, "fold": _fold_label(key), **_scalars(scores)})
            rows.append({"experiment": name, "stage": stage, "fold": "mean", **_scalars(record["mean"])})
    table = pd.DataFrame(rows)
    if "n_images" in table:
        table["n_images"] = table["n_images"].astype("Int64")
    return table
