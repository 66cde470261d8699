"""Shared test helpers: stand-in networks for the prediction engine, the demo config's settings."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import yaml

from lesionflow import isic
from lesionflow.postprocess import PostProcess
from lesionflow.predictor import ClassCombination, EnsembleSpec, Predictor
from lesionflow.settings import ClassificationTraining, SegmentationTraining, training_params

#: Threshold the maps as they are: no smoothing, keep the largest lesion, no hole filling.
MEAN_PROBABILITY = ClassCombination(ensemble="probabilities", min_probability=0.0)
PLAIN = PostProcess(sigma=0.0, threshold=0.5, largest_component=True, fill_holes=False, resize="probability")


class MapModel:
    """A stand-in for a Keras model: ``predict_on_batch(x)`` is ``fn(x)`` (x: N×S×S×3 float32 0–255)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray]):
        self.fn = fn
        self.calls = 0

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        self.calls += 1
        return self.fn(batch)


def dark_is_lesion(batch: np.ndarray) -> np.ndarray:
    """Per-pixel lesion probability of a model that finds dark pixels: N×S×S×1."""
    return (batch.mean(axis=3, keepdims=True) < 128).astype(np.float32) * 0.98 + 0.01


def segmenter(
    models: Sequence[MapModel], size: int, tta: bool = False, post: PostProcess = PLAIN, chunk_size: int = 256
) -> Predictor:
    spec = EnsembleSpec(
        stage="segmentation",
        folds=tuple(range(len(models))),
        models=tuple(f"fold_{k}/model.keras" for k in range(len(models))),
        image_size=size,
        encoder="stub",
        tta=tta,
        postprocess=post,
    )
    return Predictor(spec, models, chunk_size)


def classifier(
    models: Sequence[MapModel],
    size: int,
    tta: bool = False,
    chunk_size: int = 256,
    combination: ClassCombination | None = None,
) -> Predictor:
    spec = EnsembleSpec(
        stage="classification",
        folds=tuple(range(len(models))),
        models=tuple(f"fold_{k}/model.keras" for k in range(len(models))),
        image_size=size,
        encoder="stub",
        tta=tta,
        classes=tuple(isic.CLASSES),
        combination=combination or MEAN_PROBABILITY,
    )
    return Predictor(spec, models, chunk_size)


# ------------------------------------------------------------------------------------ settings

ROOT = Path(__file__).resolve().parents[2]  # the repository (this file is tests/support/stubs.py)


def demo_config() -> dict:
    """``config/config.yaml`` with the schema's defaults filled in, as the workflow reads it."""
    from snakemake.utils import validate

    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    return config


def training_settings(
    stage: str,
    *,
    image_size: int | None = None,
    model: dict | None = None,
    training: dict | None = None,
    speed: dict | None = None,
    seed: int | None = None,
) -> SegmentationTraining | ClassificationTraining:
    """A stage's training settings from the demo config, with some keys of its sections changed."""
    params = training_params(demo_config(), stage)
    params["model"].update(model or {})
    params["training"].update(training or {})
    params["speed"].update(speed or {})
    if image_size is not None:
        params["image_size"] = image_size
    if seed is not None:
        params["seed"] = seed
    kind = SegmentationTraining if stage == "segmentation" else ClassificationTraining
    return kind.from_params(params)
