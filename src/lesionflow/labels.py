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


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def _check_ids(table: pd.DataFrame, path: Path) -> None:
    """Every ``image`` is an ISIC id (so no path built from it leaves data_dir) and appears once."""
    for row, image_id in enumerate(table["image"], start=2):
        isic.check_id(image_id, f"{path}, row {row}")
    first: dict[str, int] = {}
    for row, image_id in enumerate(table["image"], start=2):
        if image_id in first:
            raise InputError(
                f"image {image_id} is listed more than once (rows {first[image_id]} and {row})", f"{path}, row {row}"
            )
        first[image_id] = row


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
    _check_ids(table, path)
    values = table[list(isic.CLASSES)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    one_hot = np.isin(values, (0.0, 1.0)).all(axis=1) & (values.sum(axis=1) == 1)
    if not one_hot.all():
        row = int(np.flatnonzero(~one_hot)[0])
        found = ", ".join(f"{c}={v:g}" for c, v in zip(isic.CLASSES, values[row]) if v != 0) or "all 0"
        raise InputError(
            f"row {row + 2} ({table['image'].iloc[row]}) is not one-hot: {found} "
            "(each row needs one class at 1 and the others at 0)",
            path,
        )
    truth = pd.DataFrame(values, index=pd.Index(table["image"], name="image"), columns=list(isic.CLASSES))
    if image_ids is not None:
        ids = list(image_ids)
        known = set(ids)
        unknown = [row for row, image_id in enumerate(truth.index, start=2) if image_id not in known]
        if unknown:
            raise InputError(
                f"label for image {truth.index[unknown[0] - 2]} which does not exist "
                f"(not among the {len(known)} images; {_count(len(unknown), 'such row')})",
                f"{path}, row {unknown[0]}",
            )
        unlabelled = pd.Index(ids).difference(truth.index)
        if len(unlabelled):
            raise InputError(f"image {unlabelled[0]} has no label ({_count(len(unlabelled), 'such image')})", path)
        truth = truth.loc[ids]
    return truth


def read_groupings_table(path: str | Path) -> pd.DataFrame:
    """The lesion-groupings CSV (``image,lesion_id,...``): ids valid and unique, no empty lesion_id."""
    path = Path(path)
    table = _read_csv(path)
    for column in ("image", "lesion_id"):
        if column not in table.columns:
            raise InputError(f"missing column {column!r} (columns: {', '.join(map(str, table.columns))})", path)
    _check_ids(table, path)
    empty = table["lesion_id"].isna() | (table["lesion_id"].astype(str).str.strip() == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise InputError(f"image {table['image'].iloc[row]} has an empty lesion_id", f"{path}, row {row + 2}")
    return table


def read_groupings(path: str | Path, image_ids: Iterable[str]) -> list[str]:
    """The lesion id of each image in ``image_ids``; images not in the CSV are their own lesion."""
    table = read_groupings_table(path)
    lesion = dict(zip(table["image"], table["lesion_id"].astype(str)))
    return [lesion.get(i, f"single_{i}") for i in image_ids]


def class_indices(truth: pd.DataFrame) -> np.ndarray:
    """Argmax class index of each row of a one-hot frame."""
    return truth.to_numpy().argmax(axis=1)
