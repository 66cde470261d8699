"""The ISIC 2018 data layout: folder names, image ids, class names and file naming."""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError

#: The seven Task 3 diagnoses, in the column order of the official CSVs.
CLASSES: tuple[str, ...] = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")

#: Official folder names, relative to ``data_dir``.
FOLDERS: dict[str, str] = {
    "seg_train_images": "ISIC2018_Task1-2_Training_Input",
    "seg_train_masks": "ISIC2018_Task1_Training_GroundTruth",
    "seg_validation_images": "ISIC2018_Task1-2_Validation_Input",
    "seg_test_images": "ISIC2018_Task1-2_Test_Input",
    "train_images": "ISIC2018_Task3_Training_Input",
    "train_labels": "ISIC2018_Task3_Training_GroundTruth",
    "validation_images": "ISIC2018_Task3_Validation_Input",
    "validation_labels": "ISIC2018_Task3_Validation_GroundTruth",
    "test_images": "ISIC2018_Task3_Test_Input",
    "test_labels": "ISIC2018_Task3_Test_GroundTruth",
    "test_masks": "ISIC2018_Task3_Test_Segmentation_GroundTruth",
}

#: Ground-truth CSV files inside the label folders.
LABEL_CSV: dict[str, str] = {
    "train": "ISIC2018_Task3_Training_GroundTruth.csv",
    "validation": "ISIC2018_Task3_Validation_GroundTruth.csv",
    "test": "ISIC2018_Task3_Test_GroundTruth.csv",
}
GROUPINGS_CSV = "ISIC2018_Task3_Training_LesionGroupings.csv"

#: The three Task 3 image sets.
TASK3_SETS: tuple[str, ...] = ("train", "validation", "test")

ID_PATTERN = re.compile(r"^ISIC_\d{7}$")
IMAGE_SUFFIX = ".jpg"
MASK_SUFFIX = "_segmentation.png"


def check_id(image_id: str, source: str | Path = "") -> str:
    """Return ``image_id`` if it is an ISIC id (``ISIC_`` + 7 digits), else raise InputError.

    Ids come from CSVs and file names; validating them keeps every derived path inside ``data_dir``.
    """
    if not isinstance(image_id, str) or not ID_PATTERN.match(image_id):
        raise InputError(f"{image_id!r} is not an ISIC image id (ISIC_ followed by 7 digits)", source or None)
    return image_id


def image_name(image_id: str) -> str:
    return f"{image_id}{IMAGE_SUFFIX}"


def mask_name(image_id: str) -> str:
    return f"{image_id}{MASK_SUFFIX}"


def list_image_ids(folder: str | Path) -> list[str]:
    """Sorted ids of the ``ISIC_<id>.jpg`` images in ``folder``; raises if it is missing or empty."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            "image folder does not exist (config key data_dir must name the folder holding the "
            "ISIC 2018 folders under their official names)",
            folder,
        )
    ids = sorted(
        p.name[: -len(IMAGE_SUFFIX)]
        for p in folder.iterdir()
        if p.name.endswith(IMAGE_SUFFIX) and ID_PATTERN.match(p.name[: -len(IMAGE_SUFFIX)])
    )
    if not ids:
        raise InputError("image folder holds no ISIC_<id>.jpg images", folder)
    return ids
