"""Cross-validation folds, seeded and written once, shared by training, evaluation and prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedGroupKFold

from .errors import InputError


def kfold(ids: list[str], n_folds: int, seed: int) -> pd.DataFrame:
    """Shuffled k-fold split of ``ids``: a frame ``image, fold``."""
    if len(ids) < n_folds:
        raise InputError(f"config key folds: {n_folds} folds need at least {n_folds} images, got {len(ids)}")
    fold = np.empty(len(ids), dtype=int)
    for k, (_, held_out) in enumerate(KFold(n_folds, shuffle=True, random_state=seed).split(ids)):
        fold[held_out] = k
    return pd.DataFrame({"image": ids, "fold": fold})


def grouped_stratified_kfold(
    ids: list[str], labels: np.ndarray, groups: list[str], n_folds: int, seed: int
) -> pd.DataFrame:
    """Folds stratified by ``labels`` with every group (lesion) on one side only: ``image, lesion_id, fold``."""
    if len(set(groups)) < n_folds:
        raise InputError(f"config key folds: {n_folds} folds need at least {n_folds} lesions")
    fold = np.empty(len(ids), dtype=int)
    splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(splitter.split(np.zeros(len(ids)), labels, groups)):
        fold[held_out] = k
    return pd.DataFrame({"image": ids, "lesion_id": groups, "fold": fold})


def read_folds(path: str | Path, ids: list[str]) -> np.ndarray:
    """The fold of each of ``ids`` (in that order) from a folds CSV."""
    table = pd.read_csv(path, dtype={"image": str}).set_index("image")
    missing = [i for i in ids if i not in table.index]
    if missing:
        raise InputError(f"{len(missing)} images have no fold (first: {missing[0]}); rerun the folds rule", path)
    return table.loc[ids, "fold"].to_numpy()
