"""Small ISIC-style data on disk: a set of images (with masks), Task 3 labels and lesion groupings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from lesionflow.isic import CLASSES

from support.images import textured_rgb

IDS = [f"ISIC_{i:07d}" for i in range(1, 8)]


def write_set(folder: Path, ids=IDS, size=(60, 80), masks: Path | None = None) -> tuple[list[Path], list[Path]]:
    """JPEGs of ``size`` (H, W) and, with ``masks``, a binary mask of the same size for each."""
    folder.mkdir(parents=True, exist_ok=True)
    images, mask_paths = [], []
    for k, image_id in enumerate(ids):
        path = folder / f"{image_id}.jpg"
        Image.fromarray(textured_rgb(*size, seed=k)).save(path, quality=90)
        images.append(path)
        if masks is not None:
            masks.mkdir(parents=True, exist_ok=True)
            arr = np.zeros(size, np.uint8)
            arr[10:40, 20:50] = 255
            mask_paths.append(masks / f"{image_id}_segmentation.png")
            Image.fromarray(arr).save(mask_paths[-1])
    return images, mask_paths


def write_labels(path: Path, ids=IDS) -> Path:
    table = pd.DataFrame(0.0, index=pd.Index(ids, name="image"), columns=list(CLASSES))
    for k, image_id in enumerate(ids):
        table.loc[image_id, CLASSES[k % len(CLASSES)]] = 1.0
    table.to_csv(path)
    return path


def write_groupings(path: Path, rows: list[tuple[str, str]]) -> Path:
    pd.DataFrame(rows, columns=["image", "lesion_id"]).assign(diagnosis_confirm_type="histopathology").to_csv(
        path, index=False
    )
    return path
