"""Segmentation and classification metrics, defined exactly as the official ISIC scorer defines them.

The reference is the ``isic-challenge-scoring`` package (5.6), which ranked the ISIC 2018 challenge;
the tests score the same data with it and require agreement to 1e-9. Its definitions, reproduced here:

Segmentation (Task 1), per image, foreground = pixel value > 128:
  accuracy (TP+TN)/all; sensitivity TP/(TP+FN), 1.0 if the truth is empty; specificity TN/(TN+FP),
  1.0 if the truth is full; Jaccard TP/(TP+FP+FN) and Dice 2TP/(2TP+FP+FN), both 1.0 when truth and
  prediction are both empty; thresholded Jaccard = Jaccard if >= 0.65 else 0. Summaries are plain
  means over images (every image weighs the same).

Classification (Task 3):
  balanced accuracy = mean over the classes present in the truth of (argmax hits / images of the class);
  a prediction whose maximum probability is tied between classes is "undecided" and counts as wrong.
  The scorer's per-category accuracy/sensitivity/specificity/dice/ppv/npv are one-vs-rest at
  probability > 0.5 (not argmax!) with the same 1.0 "freebies" on empty denominators; its AUC,
  partial AUC above 80 % sensitivity and average precision are one-vs-rest from scikit-learn; macro
  averages skip undefined (NaN) values. The official truth-CSV reader gives ISIC_0035068 zero weight.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn.metrics
from PIL import Image
from tqdm import tqdm

from .errors import InputError
from .isic import CLASSES, MASK_SUFFIX, mask_name

#: Per-image segmentation metrics, in the official scorer's column order.
SEGMENTATION_METRICS: tuple[str, ...] = (
    "accuracy",
    "sensitivity",
    "specificity",
    "jaccard",
    "threshold_jaccard",
    "dice",
)
#: A 0-255 mask pixel is foreground when strictly greater than this.
FOREGROUND_THRESHOLD = 128
#: Per-image Jaccard below this counts 0 in the thresholded Jaccard.
JACCARD_THRESHOLD = 0.65
#: Images the official truth-CSV reader scores with weight 0 (dropped here when ``official_exclusions``).
OFFICIAL_ZERO_WEIGHT_IMAGES: frozenset[str] = frozenset({"ISIC_0035068"})
#: Keys of the official per-category metrics, in its order.
OFFICIAL_CATEGORY_METRICS: tuple[str, ...] = (
    "accuracy",
    "sensitivity",
    "specificity",
    "dice",
    "ppv",
    "npv",
    "auc",
    "auc_sens_80",
    "ap",
)

_MASK_FILE = re.compile(r"^(ISIC_\d{7})" + re.escape(MASK_SUFFIX) + r"$")


# ----------------------------------------------------------------------------------------------
# binary confusion-matrix metrics (the official formulas, including their conventions for 0/0)


def _ratio_or_one(numerator: float, denominator: float) -> float:
    return 1.0 if denominator == 0 else numerator / denominator


def _binary_metrics(tp: float, tn: float, fp: float, fn: float) -> dict[str, float]:
    return {
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "sensitivity": _ratio_or_one(tp, tp + fn),
        "specificity": _ratio_or_one(tn, tn + fp),
        "jaccard": _ratio_or_one(tp, tp + fp + fn),
        "dice": _ratio_or_one(2 * tp, (2 * tp) + fp + fn),
        "ppv": _ratio_or_one(tp, tp + fp),
        "npv": _ratio_or_one(tn, tn + fn),
    }


def _confusion(truth: np.ndarray, prediction: np.ndarray) -> tuple[int, int, int, int]:
    """TP, TN, FP, FN of two boolean arrays."""
    tp = int(np.count_nonzero(truth & prediction))
    fp = int(np.count_nonzero(prediction)) - tp
    fn = int(np.count_nonzero(truth)) - tp
    return tp, truth.size - tp - fp - fn, fp, fn


# ----------------------------------------------------------------------------------------------
# segmentation


def _foreground(mask: np.ndarray, name: str) -> np.ndarray:
    if mask.dtype == bool:
        return mask
    if not np.issubdtype(mask.dtype, np.integer):
        raise InputError(
            f"{name} mask must be bool or 0-255 integers, got dtype {mask.dtype} (threshold probabilities first)"
        )
    return mask > FOREGROUND_THRESHOLD


def segmentation_scores(truth: np.ndarray, prediction: np.ndarray) -> dict[str, float]:
    """Official per-image metrics of a predicted mask against the truth.

    Both are bool arrays or 0-255 integer arrays (foreground > 128) of the same shape. Returns
    ``{"accuracy", "sensitivity", "specificity", "jaccard", "threshold_jaccard", "dice"}`` as floats.
    """
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    if truth.shape != prediction.shape:
        raise InputError(f"prediction mask has shape {prediction.shape}; truth has {truth.shape}")
    if truth.size == 0:
        raise InputError("masks are empty arrays (no pixels)")
    metrics = _binary_metrics(*_confusion(_foreground(truth, "truth"), _foreground(prediction, "prediction")))
    jaccard = metrics["jaccard"]
    metrics["threshold_jaccard"] = jaccard if jaccard >= JACCARD_THRESHOLD else 0.0
    return {key: float(metrics[key]) for key in SEGMENTATION_METRICS}


def summarise_segmentation(per_image: pd.DataFrame) -> dict[str, float | int]:
    """Mean of each per-image metric over the images (the official macro average), plus ``n_images``.

    Keys: the six ``SEGMENTATION_METRICS`` and ``"n_images"``.
    """
    missing = [key for key in SEGMENTATION_METRICS if key not in per_image.columns]
    if missing:
        raise InputError(f"per-image segmentation scores lack columns {missing}")
    if len(per_image) == 0:
        raise InputError("no per-image segmentation scores to summarise")
    summary: dict[str, float | int] = {key: float(per_image[key].mean()) for key in SEGMENTATION_METRICS}
    summary["n_images"] = int(len(per_image))
    return summary


def read_segmentation_mask(path: str | Path) -> np.ndarray:
    """A mask PNG as a 2-D uint8 array; like the official scorer, only greyscale ('L') or 1-bit images."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode == "1":
                image = image.convert("L")
            if image.mode != "L":
                raise InputError(f"mask is not single-channel greyscale (mode {image.mode!r})", path)
            return np.asarray(image)
    except InputError:
        raise
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except Exception as exc:
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})", path) from None


def _mask_ids(folder: Path, role: str) -> set[str]:
    if not folder.is_dir():
        raise InputError(f"{role} mask folder does not exist", folder)
    return {m.group(1) for p in folder.iterdir() if (m := _MASK_FILE.match(p.name))}


def score_mask_folders(truth_dir: str | Path, prediction_dir: str | Path) -> pd.DataFrame:
    """Per-image official metrics for the ``ISIC_<id>_segmentation.png`` masks of two folders.

    Every truth mask needs a prediction of the same name and size, and every prediction a truth mask.
    Returns one row per image id (index ``image``, sorted), columns ``SEGMENTATION_METRICS``.
    """
    truth_dir, prediction_dir = Path(truth_dir), Path(prediction_dir)
    truth_ids = _mask_ids(truth_dir, "truth")
    prediction_ids = _mask_ids(prediction_dir, "prediction")
    if not truth_ids:
        raise InputError("truth folder holds no ISIC_<id>_segmentation.png masks", truth_dir)
    if missing := sorted(truth_ids - prediction_ids):
        raise InputError(
            f"prediction mask missing ({len(missing)} truth masks have none)", prediction_dir / mask_name(missing[0])
        )
    if extra := sorted(prediction_ids - truth_ids):
        raise InputError(
            f"truth mask missing for a prediction ({len(extra)} predictions have none)", truth_dir / mask_name(extra[0])
        )
    rows = {}
    for image_id in tqdm(sorted(truth_ids), desc="score", unit="img", mininterval=2):
        truth = read_segmentation_mask(truth_dir / mask_name(image_id))
        prediction_path = prediction_dir / mask_name(image_id)
        prediction = read_segmentation_mask(prediction_path)
        if prediction.shape != truth.shape:
            raise InputError(f"mask has size {prediction.shape}; the truth has {truth.shape}", prediction_path)
        rows[image_id] = segmentation_scores(truth, prediction)
    frame = pd.DataFrame.from_dict(rows, orient="index", columns=list(SEGMENTATION_METRICS))
    frame.index.name = "image"
    return frame


# ----------------------------------------------------------------------------------------------
# classification


def _class_frame(frame: pd.DataFrame, role: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{role} must be a pandas DataFrame indexed by image")
    columns = [str(c) for c in frame.columns]
    if missing := [c for c in CLASSES if c not in columns]:
        raise InputError(f"{role} lacks class columns {missing}")
    if extra := [c for c in columns if c not in CLASSES]:
        raise InputError(f"{role} has columns other than the classes: {extra} (index it by image)")
    if frame.index.has_duplicates:
        raise InputError(f"{role} has duplicate images: {frame.index[frame.index.duplicated()].tolist()[:5]}")
    try:
        values = frame.set_axis(columns, axis=1)[list(CLASSES)].astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{role} holds non-numeric values ({exc})") from None
    if not np.isfinite(values.to_numpy()).all():
        raise InputError(f"{role} holds missing or infinite values")
    return values.sort_index()


def _auc_sens_80(truth: np.ndarray, scores: np.ndarray, sensitivity: float = 0.80) -> float:
    """Un-normalised ROC area above a sensitivity, as the official ``auc_above_sensitivity``."""
    fpr, tpr, _ = sklearn.metrics.roc_curve(truth, scores, drop_intermediate=False)
    start = int(tpr.searchsorted(sensitivity, side="left"))
    fpr_at = np.interp(sensitivity, tpr[start - 1 : start + 1], fpr[start - 1 : start + 1])
    return float(sklearn.metrics.auc(np.insert(fpr[start:], 0, fpr_at), np.insert(tpr[start:], 0, sensitivity)))


def _ranking_metrics(truth: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    """One-vs-rest AUC, partial AUC above 80 % sensitivity (None when one side is empty), and AP."""
    ones = np.ones(truth.size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # AP with no positives warns (and is 0.0, as officially)
        ap = float(sklearn.metrics.average_precision_score(truth, scores, sample_weight=ones))
    if truth.all() or not truth.any():
        return {"auc": None, "auc_sens_80": None, "ap": ap}
    return {
        "auc": float(sklearn.metrics.roc_auc_score(truth, scores, sample_weight=ones)),
        "auc_sens_80": _auc_sens_80(truth, scores),
        "ap": ap,
    }


def _mean_defined(values: list[float | None]) -> float | None:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else None


def _ratio_or_none(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def classification_scores(
    truth: pd.DataFrame, prediction: pd.DataFrame, *, official_exclusions: bool = True
) -> dict[str, Any]:
    """Official Task 3 metrics of predicted probabilities against one-hot truth (JSON-serialisable).

    ``truth`` and ``prediction``: frames indexed by image id with exactly the ``CLASSES`` columns.
    ``official_exclusions`` drops ``OFFICIAL_ZERO_WEIGHT_IMAGES`` as the official scorer does.
    Returns a dict with keys:

    - ``n_images``, ``n_undecided`` (predictions with a tied maximum: counted wrong, in no column);
    - ``balanced_accuracy`` (official), ``accuracy`` (argmax top-1);
    - ``macro_auc``, ``macro_auc_sens_80``, ``mean_average_precision`` (official macro averages);
    - ``per_class``: class -> ``support``, argmax-decision ``precision``, ``recall``, ``specificity``,
      ``f1`` (None where 0/0) and ranking ``auc``, ``auc_sens_80`` (None if the class is absent or is
      every image), ``average_precision``;
    - ``official_per_category``: class -> the scorer's own keys ``OFFICIAL_CATEGORY_METRICS`` (binary
      ones at probability > 0.5), and ``official_macro_average``: their means (skipping None);
    - ``classes`` and ``confusion_matrix`` (counts, rows truth, columns argmax prediction).
    """
    truth_values = _class_frame(truth, "truth")
    prediction_values = _class_frame(prediction, "prediction")
    if official_exclusions:
        truth_values = truth_values.drop(index=list(OFFICIAL_ZERO_WEIGHT_IMAGES), errors="ignore")
        prediction_values = prediction_values.drop(index=list(OFFICIAL_ZERO_WEIGHT_IMAGES), errors="ignore")
    if missing := truth_values.index.difference(prediction_values.index).tolist():
        raise InputError(f"prediction lacks {len(missing)} images, e.g. {missing[:5]}")
    if extra := prediction_values.index.difference(truth_values.index).tolist():
        raise InputError(f"prediction has {len(extra)} images that truth lacks, e.g. {extra[:5]}")
    if len(truth_values) == 0:
        raise InputError("no images to score")
    t = truth_values.to_numpy()
    p = prediction_values.to_numpy()
    if not (np.isin(t, (0.0, 1.0)).all() and (t.sum(axis=1) == 1).all()):
        raise InputError("truth must be one-hot: one 1 and six 0 per image")
    if ((p < 0) | (p > 1)).any():
        raise InputError("prediction probabilities must lie in [0, 1]")

    n, k = t.shape
    truth_label = t.argmax(axis=1)
    undecided = (p == p.max(axis=1, keepdims=True)).sum(axis=1) > 1
    predicted_label = p.argmax(axis=1)
    decided = ~undecided
    confusion = np.bincount(truth_label[decided] * k + predicted_label[decided], minlength=k * k).reshape(k, k)
    support = np.bincount(truth_label, minlength=k)
    hits = np.diag(confusion)
    predicted_count = confusion.sum(axis=0)

    per_class: dict[str, dict[str, Any]] = {}
    official: dict[str, dict[str, float | None]] = {}
    for j, name in enumerate(CLASSES):
        tp = int(hits[j])
        fp, fn = int(predicted_count[j]) - tp, int(support[j]) - tp
        tn = n - tp - fp - fn
        ranking = _ranking_metrics(t[:, j] > 0.5, p[:, j])
        per_class[name] = {
            "support": int(support[j]),
            "precision": _ratio_or_none(tp, tp + fp),
            "recall": _ratio_or_none(tp, tp + fn),
            "specificity": _ratio_or_none(tn, tn + fp),
            "f1": _ratio_or_none(2 * tp, 2 * tp + fp + fn),
            "auc": ranking["auc"],
            "auc_sens_80": ranking["auc_sens_80"],
            "average_precision": ranking["ap"],
        }
        binary = _binary_metrics(*_confusion(t[:, j] > 0.5, p[:, j] > 0.5))
        official[name] = {
            key: (ranking[key] if key in ranking else float(binary[key])) for key in OFFICIAL_CATEGORY_METRICS
        }

    official_macro = {key: _mean_defined([official[c][key] for c in CLASSES]) for key in OFFICIAL_CATEGORY_METRICS}
    recalls = [per_class[c]["recall"] for c in CLASSES]
    return {
        "n_images": int(n),
        "n_undecided": int(undecided.sum()),
        "balanced_accuracy": _mean_defined(recalls),
        "accuracy": float(hits.sum() / n),
        "macro_auc": official_macro["auc"],
        "macro_auc_sens_80": official_macro["auc_sens_80"],
        "mean_average_precision": official_macro["ap"],
        "per_class": per_class,
        "official_per_category": official,
        "official_macro_average": official_macro,
        "classes": list(CLASSES),
        "confusion_matrix": confusion.tolist(),
    }
