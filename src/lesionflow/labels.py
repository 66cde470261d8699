"""Task 3 ground-truth and lesion-grouping CSVs, read strictly: errors name the file and row."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from . import isic
from .errors import InputError

COLUMNS = ["image", *isic.CLASSES]


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError("CSV file does not exist", path)
    try:
        return pd.read_csv(path, dtype={"image": str})
    except Exception as exc:
        raise InputError(f"not a readable CSV ({type(exc).__name__}: {exc})", path) from None


def read_ground_truth(path: str | Path, image_ids: Iterable[str] | None = None) -> pd.DataFrame:
    """The one-hot ground truth, indexed by image, columns :data:`isic.CLASSES` (floats 0/1).

    With ``image_ids`` (the images present), every label must have an image and every image a label.
    """
    path = Path(path)
    table = _read_csv(path)
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}; expected {','.join(COLUMNS)}", path)
    extra = [c for c in table.columns if c not in COLUMNS]
    if extra:
        raise InputError(f"unexpected column(s) {', '.join(map(str, extra))}; expected {','.join(COLUMNS)}", path)
    for row, image_id in enumerate(table["image"], start=2):
        isic.check_id(image_id, f"{path}, row {row}")
    dup = table["image"][table["image"].duplicated()]
    if len(dup):
        raise InputError(f"image {dup.iloc[0]} is listed more than once", path)
    values = table[list(isic.CLASSES)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    one_hot = np.isin(values, (0.0, 1.0)).all(axis=1) & (values.sum(axis=1) == 1)
    if not one_hot.all():
        row = int(np.flatnonzero(~one_hot)[0])
        raise InputError(f"row {row + 2} ({table['image'].iloc[row]}) is not one-hot: "
                         f"{dict(zip(isic.CLASSES, values[row].tolist()))}", path)
    truth = pd.DataFrame(values, index=pd.Index(table["image"], name="image"), columns=list(isic.CLASSES))
    if image_ids is not None:
        ids = list(image_ids)
        unknown = truth.index.difference(ids)
        if len(unknown):
            raise InputError(f"label for image {unknown[0]} which does not exist ({len(unknown)} such rows)", path)
        unlabelled = pd.Index(ids).difference(truth.index)
        if len(unlabelled):
            raise InputError(f"image {unlabelled[0]} has no label ({len(unlabelled)} such images)", path)
        truth = truth.loc[ids]
    return truth


def read_groupings(path: str | Path, image_ids: Iterable[str]) -> list[str]:
    """The lesion id of each image in ``image_ids``; images not in the CSV are their own lesion."""
    path = Path(path)
    table = _read_csv(path)
    for column in ("image", "lesion_id"):
        if column not in table.columns:
            raise InputError(f"missing column {column!r} (columns: {', '.join(map(str, table.columns))})", path)
    for row, image_id in enumerate(table["image"], start=2):
        isic.check_id(image_id, f"{path}, row {row}")
    lesion = dict(zip(table["image"], table["lesion_id"].astype(str)))
    return [lesion.get(i, f"single_{i}") for i in image_ids]


def class_indices(truth: pd.DataFrame) -> np.ndarray:
    """Argmax class index of each row of a one-hot frame."""
    return truth.to_numpy().argmax(axis=1)
