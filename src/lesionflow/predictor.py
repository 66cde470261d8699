"""One prediction engine for both stages: a fold ensemble that describes itself, predicted in chunks.

A stage's trained folds live in ``results/<stage>/fold_<k>/model.keras``; beside them,
``results/<stage>/ensemble.json`` (:class:`EnsembleSpec`) says what the ensemble is: its stage, folds and
model files, image size, test-time augmentation and (segmentation) post-processing. :class:`Predictor`
loads it and is the only code that runs the networks after training. Held-out evaluation
(:meth:`Predictor.fold`), the ISIC Task 3 sets and folders of the user's own images all call it through the
functions at the end of this module; only the naming of their outputs differs.

How an ensemble combines its models:

* segmentation: each model's per-pixel probability is turned into a logit and averaged over the test-time
  transforms (the 8 symmetries of the square, undone after prediction), then over the folds; the sigmoid
  of the mean is the ensemble's probability map;
* classification: the class probabilities are averaged over transforms and folds, then renormalised.

Images go through the networks :data:`CHUNK` at a time, so memory stays flat whatever the set's size.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from . import isic
from .cache import release_rows
from .errors import InputError
from .imageio import atomic_dir, atomic_path, read_mask, write_png
from .postprocess import PostProcess, full_size_mask
from .tta import DIHEDRAL, inverse_transform, transform

log = logging.getLogger(__name__)

#: Images per chunk: bounds the float arrays of one chunk (256 × 224² × 4 B ≈ 51 MB per map).
CHUNK = 256
#: Images per network call.
BATCH_SIZE = {"segmentation": 32, "classification": 64}

Stage = Literal["segmentation", "classification"]
_EPS = 1e-6
_TINY = 1e-30  # the floor of a class probability before its logarithm


@dataclass(frozen=True)
class ClassCombination:
    """How a classifier ensemble combines its folds and test-time transforms (``classification.prediction``):
    the mean of their probabilities, or the softmax of the mean of their logits (``ensemble``); then class
    probabilities below ``min_probability`` are set to 0 and each row renormalised."""

    ensemble: str  # probabilities or logits
    min_probability: float

    @classmethod
    def from_config(cls, prediction: Mapping[str, Any]) -> "ClassCombination":
        return cls(ensemble=str(prediction["ensemble"]), min_probability=float(prediction["min_probability"]))

    def to_dict(self) -> dict[str, Any]:
        return {"ensemble": self.ensemble, "min_probability": self.min_probability}


@dataclass(frozen=True)
class EnsembleSpec:
    """What ``ensemble.json`` holds. Model paths are relative to the file's folder (they may lead out of it)."""

    stage: Stage
    folds: tuple[int, ...]
    models: tuple[str, ...]
    image_size: int
    encoder: str
    tta: bool
    postprocess: PostProcess | None = None  # segmentation only
    classes: tuple[str, ...] = field(default=())  # classification only: the output columns, in order
    combination: ClassCombination | None = None  # classification only

    def __post_init__(self) -> None:
        if self.stage not in BATCH_SIZE:
            raise ValueError(f"stage must be one of {sorted(BATCH_SIZE)}, got {self.stage!r}")
        if len(self.folds) != len(self.models) or not self.folds:
            raise ValueError("an ensemble needs one model file per fold, and at least one fold")
        if (self.stage == "segmentation") != (self.postprocess is not None):
            raise ValueError("post-processing settings belong to (and only to) a segmentation ensemble")
        if (self.stage == "classification") != (self.combination is not None):
            raise ValueError("a class combination belongs to (and only to) a classification ensemble")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "stage": self.stage,
            "folds": list(self.folds),
            "models": list(self.models),
            "image_size": self.image_size,
            "encoder": self.encoder,
            "input": {"dtype": "uint8", "shape": ["N", self.image_size, self.image_size, 3], "colour_order": "RGB"},
            "tta": self.tta,
        }
        if self.postprocess is not None:
            data["postprocess"] = self.postprocess.to_dict()
        if self.classes:
            data["classes"] = list(self.classes)
        if self.combination is not None:
            data["combination"] = self.combination.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "EnsembleSpec":
        post, combination = data.get("postprocess"), data.get("combination")
        return cls(
            stage=data["stage"],
            folds=tuple(data["folds"]),
            models=tuple(data["models"]),
            image_size=int(data["image_size"]),
            encoder=data["encoder"],
            tta=bool(data["tta"]),
            postprocess=None if post is None else PostProcess.from_config(post),
            classes=tuple(data.get("classes", ())),
            combination=None if combination is None else ClassCombination.from_config(combination),
        )

    def write(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def read(cls, path: str | Path) -> "EnsembleSpec":
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not a readable ensemble description ({type(exc).__name__}: {exc})", path) from None


def describe_ensemble(
    stage: Stage,
    model_paths: Sequence[str | Path],
    spec_path: str | Path,
    image_size: int,
    encoder: str,
    tta: bool,
    postprocess: PostProcess | None = None,
    combination: ClassCombination | None = None,
) -> EnsembleSpec:
    """Write ``spec_path`` for the fold models ``model_paths`` (``.../fold_<k>/model.keras``, in fold order).

    The model paths are written relative to the file's folder, so a results folder can be moved as a whole; an
    experiment that reuses another configuration's models refers to them there (``../../../segmentation/...``).
    """
    folder = Path(spec_path).parent.resolve()
    models = tuple(Path(os.path.relpath(Path(p).resolve(), folder)).as_posix() for p in model_paths)
    folds = tuple(int(Path(p).parent.name.removeprefix("fold_")) for p in model_paths)
    spec = EnsembleSpec(
        stage=stage,
        folds=folds,
        models=models,
        image_size=image_size,
        encoder=encoder,
        tta=tta,
        postprocess=postprocess,
        classes=tuple(isic.CLASSES) if stage == "classification" else (),
        combination=combination,
    )
    spec.write(spec_path)
    return spec


class Predictor:
    """A stage's fold ensemble, ready to predict on cached images (N×S×S×3 uint8, RGB)."""

    def __init__(self, spec: EnsembleSpec, models: Sequence[Any], chunk_size: int = CHUNK):
        if len(models) != len(spec.folds):
            raise ValueError(f"{len(spec.folds)} folds but {len(models)} models")
        self.spec = spec
        self.models = tuple(models)
        self.chunk_size = chunk_size

    @classmethod
    def load(cls, spec_path: str | Path) -> "Predictor":
        """Load the ensemble ``spec_path`` describes, with every fold model (checked against its size)."""
        from .models import load_model  # imports TensorFlow: only once a job has claimed its device

        spec = EnsembleSpec.read(spec_path)
        folder = Path(spec_path).parent
        models = [load_model(folder / rel, spec.image_size) for rel in spec.models]
        log.info(
            "%s ensemble: folds %s, %d×%d, TTA %s",
            spec.stage,
            list(spec.folds),
            spec.image_size,
            spec.image_size,
            "on" if spec.tta else "off",
        )
        return cls(spec, models)

    def fold(self, fold: int) -> "Predictor":
        """The predictor of one fold's model alone (for scoring it on its held-out images)."""
        position = self.spec.folds.index(fold)
        spec = replace(self.spec, folds=(fold,), models=(self.spec.models[position],))
        return Predictor(spec, [self.models[position]], self.chunk_size)

    @property
    def transforms(self) -> tuple[tuple[int, bool], ...]:
        return tuple(DIHEDRAL) if self.spec.tta else tuple(DIHEDRAL[:1])

    def predict(self, images: np.ndarray) -> np.ndarray:
        """The ensemble's output for a few images: N×S×S probabilities or N×7 class probabilities."""
        if images.ndim != 4 or images.shape[1:] != (self.spec.image_size, self.spec.image_size, 3):
            raise ValueError(f"images must be N×{self.spec.image_size}×{self.spec.image_size}×3, got {images.shape}")
        if self.spec.stage == "segmentation":
            return self._segment(images)
        return self._classify(images)

    def chunks(
        self, images: np.ndarray, indices: Sequence[int] | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``(indices, output)`` for ``images[indices]`` (default: all), ``chunk_size`` images at a time."""
        indices = np.arange(len(images)) if indices is None else np.asarray(indices, dtype=np.int64)
        for start in range(0, len(indices), self.chunk_size):
            part = indices[start : start + self.chunk_size]
            chunk = np.asarray(images[part])  # a copy
            if len(part):
                release_rows(images, int(part.min()), int(part.max()) + 1)  # a memory-mapped cache's pages
            yield part, self.predict(chunk)

    def _batches(self, images: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        size = BATCH_SIZE[self.spec.stage]
        for start in range(0, len(images), size):
            yield slice(start, start + size), np.asarray(images[start : start + size], dtype=np.float32)

    def _segment(self, images: np.ndarray) -> np.ndarray:
        logits = np.zeros(images.shape[:3], dtype=np.float32)
        for model in self.models:
            for rows, batch in self._batches(images):
                for k, flip in self.transforms:
                    prob = model.predict_on_batch(np.ascontiguousarray(transform(batch, k, flip)))[..., 0]
                    prob = np.clip(inverse_transform(np.asarray(prob), k, flip), _EPS, 1 - _EPS)
                    logits[rows] += np.log(prob / (1 - prob)) / len(self.transforms)
        return 1.0 / (1.0 + np.exp(-logits / len(self.models)))

    def _classify(self, images: np.ndarray) -> np.ndarray:
        combination = self.spec.combination
        logits = combination.ensemble == "logits"
        total = np.zeros((len(images), len(isic.CLASSES)), dtype=np.float64)
        for model in self.models:
            for rows, batch in self._batches(images):
                for k, flip in self.transforms:
                    prob = np.asarray(model.predict_on_batch(np.ascontiguousarray(transform(batch, k, flip))))
                    # the model ends in a softmax: log-probabilities are its logits up to a per-row constant
                    total[rows] += np.log(np.maximum(prob, _TINY)) if logits else prob
        mean = total / (len(self.models) * len(self.transforms))
        if logits:
            mean = np.exp(mean - mean.max(axis=1, keepdims=True))
        prob = mean / mean.sum(axis=1, keepdims=True)
        if combination.min_probability > 0:
            prob = np.where(prob < combination.min_probability, 0.0, prob)
            prob = prob / prob.sum(axis=1, keepdims=True)
        return prob


# ---------------------------------------------------------------- what the workflow's jobs call


def write_masks(
    predictor: Predictor, images: np.ndarray, index: pd.DataFrame, out_dir: str | Path, names: Sequence[str]
) -> int:
    """One full-size 0/255 PNG mask per image, ``out_dir/names[i]``; returns how many were written.

    ``index`` gives each image's stored size (``height``, ``width``) and, when it has the column, the EXIF
    ``orientation`` tag the mask carries (user folders). The folder appears only once every mask is written.
    """
    if not len(images) == len(index) == len(names):
        raise ValueError("images, index and names must have the same length")
    post = _postprocess(predictor)
    heights, widths = index["height"].to_numpy(int), index["width"].to_numpy(int)
    orientations = index["orientation"].to_numpy(int) if "orientation" in index else np.ones(len(index), int)
    with atomic_dir(out_dir) as tmp, tqdm(total=len(images), desc="masks", unit="img", mininterval=2) as bar:
        for rows, prob in predictor.chunks(images):
            for i, p in zip(rows, prob):
                mask = full_size_mask(p, heights[i], widths[i], post)
                write_png(tmp / names[i], mask.astype(np.uint8) * 255, orientation=int(orientations[i]))
            bar.update(len(rows))
    return len(images)


def evaluate_masks(
    predictor: Predictor, images: np.ndarray, index: pd.DataFrame, folds: np.ndarray, truth_paths: Sequence[str | Path]
) -> pd.DataFrame:
    """Score each fold's model on its held-out images at full size, as the official scorer does.

    One row per image: ``image, fold`` and the metrics of :func:`lesionflow.metrics.segmentation_scores`.
    """
    from .metrics import segmentation_scores

    post = _postprocess(predictor)
    rows = []
    for fold in predictor.spec.folds:
        held_out = np.flatnonzero(folds == fold)
        for part, prob in tqdm(predictor.fold(fold).chunks(images, held_out), desc=f"fold {fold}", unit="chunk"):
            for i, p in zip(part, prob):
                image, height, width = index.iloc[i][["image", "height", "width"]]
                truth = read_mask(truth_paths[i], (height, width))
                pred = full_size_mask(p, int(height), int(width), post)
                rows.append({"image": image, "fold": fold, **segmentation_scores(truth, pred)})
    return pd.DataFrame(rows)


def class_probabilities(predictor: Predictor, images: np.ndarray, indices: Sequence[int] | None = None) -> np.ndarray:
    """The ensemble's N×7 class probabilities (columns in :data:`lesionflow.isic.CLASSES` order)."""
    parts = [prob for _, prob in predictor.chunks(images, indices)]
    return np.concatenate(parts) if parts else np.zeros((0, len(isic.CLASSES)))


def held_out_probabilities(
    predictor: Predictor, images: np.ndarray, ids: Sequence[str], folds: np.ndarray
) -> pd.DataFrame:
    """Every image's probabilities from its own fold's model: ``image, fold`` and the seven classes."""
    parts = []
    for fold in predictor.spec.folds:
        held_out = np.flatnonzero(folds == fold)
        table = pd.DataFrame(class_probabilities(predictor.fold(fold), images, held_out), columns=list(isic.CLASSES))
        table.insert(0, "image", np.asarray(ids, dtype=object)[held_out])
        table.insert(1, "fold", fold)
        parts.append(table)
    return pd.concat(parts, ignore_index=True)


def _postprocess(predictor: Predictor) -> PostProcess:
    if predictor.spec.postprocess is None:
        raise ValueError(f"a {predictor.spec.stage} ensemble does not predict masks")
    return predictor.spec.postprocess
