"""Where the input files of each image set live under ``data_dir`` (the official ISIC 2018 layout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import isic
from .errors import InputError

#: Image sets that are resized to the segmentation cache: Task 1 training + the three Task 3 sets.
CACHE_SETS: tuple[str, ...] = ("seg_train", *isic.TASK3_SETS)

_IMAGE_FOLDER = {
    "seg_train": "seg_train_images",
    "train": "train_images",
    "validation": "validation_images",
    "test": "test_images",
}
_MASK_FOLDER = {"seg_train": "seg_train_masks", "test": "test_masks"}
_LABEL_FOLDER = {"train": "train_labels", "validation": "validation_labels", "test": "test_labels"}


def demo_spec(demo_config: Mapping[str, Any]):
    """The demo generator's spec from the ``demo`` section of the config (the schema fills in its defaults)."""
    from .demo import DemoSpec

    return DemoSpec.from_dict({"seed": demo_config["seed"], **demo_config["spec"]})


@dataclass(frozen=True)
class DataLayout:
    """Paths of one ``data_dir``; with ``demo_spec`` the files are those the demo generator will write."""

    root: Path
    demo_spec: Any = None

    def _planned(self) -> dict[str, list[str]]:
        from .demo import planned_files

        return planned_files(self.demo_spec)

    def folder(self, key: str) -> Path:
        return self.root / isic.FOLDERS[key]

    def image_ids(self, image_set: str) -> list[str]:
        folder_key = _IMAGE_FOLDER[image_set]
        if self.demo_spec is not None:
            return [name[: -len(isic.IMAGE_SUFFIX)] for name in self._planned()[folder_key]]
        if not self.root.is_dir():
            raise InputError("data_dir does not exist (config key data_dir)", self.root)
        return isic.list_image_ids(self.folder(folder_key))

    def image_paths(self, image_set: str) -> list[Path]:
        folder = self.folder(_IMAGE_FOLDER[image_set])
        return [folder / isic.image_name(i) for i in self.image_ids(image_set)]

    def mask_dir(self, image_set: str) -> Path:
        return self.folder(_MASK_FOLDER[image_set])

    def mask_paths(self, image_set: str) -> list[Path]:
        """The mask of every image of ``image_set``; for real data every one must exist."""
        folder = self.mask_dir(image_set)
        paths = [folder / isic.mask_name(i) for i in self.image_ids(image_set)]
        if self.demo_spec is None:
            if not folder.is_dir():
                raise InputError(f"mask folder does not exist (the {image_set} images need their masks)", folder)
            missing = [p for p in paths if not p.is_file()]
            if missing:
                raise InputError(
                    f"mask of image {missing[0].name[: -len(isic.MASK_SUFFIX)]} does not exist "
                    f"(images without a mask: {len(missing)} of {len(paths)})",
                    missing[0],
                )
        return paths

    def labels_csv(self, image_set: str) -> Path:
        return self.folder(_LABEL_FOLDER[image_set]) / isic.LABEL_CSV[image_set]

    def groupings_csv(self) -> Path:
        return self.folder("train_labels") / isic.GROUPINGS_CSV

    def has_ground_truth(self, image_set: str, kind: str) -> bool:
        """Whether ``kind`` ('masks' or 'labels') ground truth exists for a Task 3 set."""
        if kind == "masks":
            if image_set not in _MASK_FOLDER:
                return False
            folder_key = _MASK_FOLDER[image_set]
            if self.demo_spec is not None:
                return bool(self._planned().get(folder_key))
            return self.mask_dir(image_set).is_dir()
        if self.demo_spec is not None:
            return bool(self._planned().get(_LABEL_FOLDER[image_set]))
        return self.labels_csv(image_set).is_file()

    def demo_files(self) -> list[Path]:
        """Every file the demo generator writes, as paths under ``root``."""
        return [self.folder(key) / name for key, names in self._planned().items() for name in names]
