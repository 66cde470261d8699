"""Readers of the run's files: a results file in, checked data out.

Bad input raises :class:`InputError` naming the file and the problem. Also the record shapes the readers
check (:data:`SEGMENTATION_COLUMNS`, :data:`CLASSIFICATION_COLUMNS`, :data:`PROVENANCE_KEYS`) and the
gallery tile :class:`Case` that :func:`load_case` builds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image

from ..errors import InputError

#: Fields every provenance record has (see :mod:`lesionflow.provenance`).
PROVENANCE_KEYS = ("settings", "data_sha256", "versions", "device")

#: Columns of the fold tables, in order.
SEGMENTATION_COLUMNS = ("jaccard", "threshold_jaccard", "dice", "accuracy", "sensitivity", "specificity", "n_images")
CLASSIFICATION_COLUMNS = (
    "balanced_accuracy",
    "accuracy",
    "macro_auc",
    "macro_auc_sens_80",
    "mean_average_precision",
    "n_images",
)


def _check_keys(record: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    if not isinstance(record, Mapping):
        raise InputError(f"{where} is not a JSON object")
    if missing := [k for k in keys if k not in record]:
        raise InputError(f"{where} lacks key(s) {', '.join(missing)}")


def read_json(path: str | Path) -> Any:
    """The JSON document at ``path``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None


def read_metrics(path: str | Path, stage: str, kind: str) -> dict[str, Any]:
    """A metrics JSON of ``stage`` (``segmentation``/``classification``), checked for what the tables use.

    ``kind`` is ``folds`` (``results/metrics/{stage}.json``: per fold and mean, and for classification all
    folds pooled) or ``set`` (``results/metrics/{stage}_{set}.json``: one image set's scores).
    """
    record = read_json(path)
    scored = [
        c
        for c in {"segmentation": SEGMENTATION_COLUMNS, "classification": CLASSIFICATION_COLUMNS}[stage]
        if c != "n_images"
    ]
    need_classes = stage == "classification"
    try:
        if kind == "set":
            _check_keys(record, [*scored, *(["per_class"] if need_classes else [])], "scores")
        else:
            _check_keys(record, ["folds", "mean", *(["all_folds"] if need_classes else [])], "metrics")
            if not isinstance(record["folds"], Mapping) or not record["folds"]:
                raise InputError("'folds' must be a non-empty object of fold_<k> entries")
            for name, fold in record["folds"].items():
                if not name.startswith("fold_") or not name[5:].isdigit():
                    raise InputError(f"fold key {name!r} is not fold_<number>")
                _check_keys(fold, scored, name)
            _check_keys(record["mean"], [c for c in scored if c != "macro_auc_sens_80"], "mean")
            if need_classes:
                _check_keys(record["all_folds"], [*scored, "per_class"], "all_folds")
    except InputError as exc:
        raise InputError(str(exc), path) from None
    return record


def read_provenance(path: str | Path) -> dict[str, Any]:
    """A model's ``provenance.json``, checked for the fields of the provenance table."""
    record = read_json(path)
    try:
        _check_keys(record, PROVENANCE_KEYS, "provenance")
    except InputError as exc:
        raise InputError(str(exc), path) from None
    return record


def read_table(path: str | Path, required: Sequence[str] = (), what: str = "CSV") -> pd.DataFrame:
    """A CSV file with at least the ``required`` columns."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"image": str})
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable {what} ({type(exc).__name__}: {exc})", path) from None
    if missing := [c for c in required if c not in table.columns]:
        raise InputError(
            f"missing column(s) {', '.join(missing)} (columns: {', '.join(map(str, table.columns))})", path
        )
    return table


def read_history(path: str | Path) -> pd.DataFrame:
    """A training history (Keras CSVLogger): ``epoch``, ``loss``, ``val_loss``, other metrics, learning rate."""
    table = read_table(path, ("epoch", "loss", "val_loss"), "training history")
    if table.empty:
        raise InputError("training history has no epochs", path)
    numeric = table.apply(pd.to_numeric, errors="coerce")
    if bad := [c for c in table.columns if (numeric[c].isna() & table[c].notna()).any()]:
        row = int(np.flatnonzero(numeric[bad[0]].isna() & table[bad[0]].notna())[0])
        raise InputError(
            f"row {row + 2}: column {bad[0]} holds a non-numeric value {str(table[bad[0]].iloc[row])!r}", path
        )
    return numeric


def read_per_image_scores(path: str | Path) -> pd.Series:
    """Per-image Jaccard, indexed by image id, from ``evaluation_per_image.csv`` or ``scores_{set}.csv``."""
    table = read_table(path, ("image", "jaccard"), "per-image score table")
    scores = pd.to_numeric(table["jaccard"], errors="coerce")
    if scores.isna().any() or not scores.between(0, 1).all():
        row = int(np.flatnonzero(scores.isna() | ~scores.between(0, 1))[0])
        raise InputError(f"row {row + 2}: jaccard {str(table['jaccard'].iloc[row])!r} is not a number in [0, 1]", path)
    return pd.Series(scores.to_numpy(), index=pd.Index(table["image"].astype(str), name="image"), name="jaccard")


def read_probabilities(path: str | Path, classes: Sequence[str]) -> pd.DataFrame:
    """Class probabilities indexed by image (a submission CSV or the held-out predictions)."""
    table = read_table(path, ("image", *classes), "prediction table")
    prob = table.set_index("image")[list(classes)].apply(pd.to_numeric, errors="coerce")
    if prob.isna().any().any():
        raise InputError("probabilities must be numbers (found empty or non-numeric values)", path)
    return prob


def load_thumbnail(path: str | Path, max_side: int) -> np.ndarray:
    """An RGB ``uint8`` copy of the image at ``path`` (stored pixel grid), its longer side at most ``max_side``.

    JPEGs are decoded in draft mode, so a 30-megapixel photograph costs a fraction of a full decode.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (2 * max_side, 2 * max_side))
            img = img.convert("RGB")
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.asarray(img)
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except Exception as exc:
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})", path) from None


def load_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """The 0/255 mask at ``path`` as a boolean array resized (nearest neighbour) to ``shape`` (H, W)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            small = img.convert("L").resize((shape[1], shape[0]), Image.Resampling.NEAREST)
            return np.asarray(small) > 128
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except Exception as exc:
        raise InputError(f"not a readable mask ({type(exc).__name__}: {exc})", path) from None


@dataclass(frozen=True)
class Case:
    """One gallery tile: an image with its predicted mask, the ground truth if known, and its score."""

    image_id: str
    image: np.ndarray
    predicted: np.ndarray
    truth: np.ndarray | None = None
    jaccard: float | None = None


def load_case(
    image_path: str | Path,
    predicted_path: str | Path,
    truth_path: str | Path | None = None,
    jaccard: float | None = None,
    max_side: int = 320,
) -> Case:
    """A gallery tile: the image's thumbnail with its predicted (and ground-truth) mask at the same size."""
    image = load_thumbnail(image_path, max_side)
    shape = image.shape[:2]
    truth = None if truth_path is None else load_mask(truth_path, shape)
    return Case(Path(image_path).stem, image, load_mask(predicted_path, shape), truth, jaccard)
