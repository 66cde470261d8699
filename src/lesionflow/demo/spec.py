"""What demo data to draw: :class:`DemoSpec`, its validation, and the class tables the planner uses."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..isic import CLASSES

#: Training images per class: HAM10000-like imbalance, but every class has enough images to learn.
DEFAULT_TRAIN_COUNTS: dict[str, int] = {
    "MEL": 18,
    "NV": 48,
    "BCC": 14,
    "AKIEC": 12,
    "BKL": 16,
    "DF": 10,
    "VASC": 10,
}

#: Relative class frequencies of the Task 1 (segmentation) images: mostly nevi, melanomas, keratoses.
SEG_CLASS_WEIGHTS: dict[str, float] = {
    "MEL": 0.22,
    "NV": 0.45,
    "BCC": 0.07,
    "AKIEC": 0.05,
    "BKL": 0.13,
    "DF": 0.04,
    "VASC": 0.04,
}

#: How the diagnosis was confirmed, per class (values and rough proportions as in HAM10000).
CONFIRM_TYPES: dict[str, dict[str, float]] = {
    "MEL": {"histopathology": 1.0},
    "NV": {"follow_up": 0.5, "histopathology": 0.3, "consensus": 0.1, "confocal": 0.1},
    "BCC": {"histopathology": 1.0},
    "AKIEC": {"histopathology": 1.0},
    "BKL": {"histopathology": 0.5, "consensus": 0.3, "confocal": 0.2},
    "DF": {"histopathology": 0.6, "consensus": 0.4},
    "VASC": {"consensus": 0.5, "histopathology": 0.5},
}

#: Number of the first Task 3 image id: the real HAM10000 images start at ISIC_0024306.
FIRST_TASK3_ID = 24306


@dataclass(frozen=True)
class DemoSpec:
    """How much demo data to draw, and how.

    ``train_counts`` is the number of Task 3 training images per class; validation and test sets follow
    the same class proportions, with every class present when the set has at least seven images.
    Task 1 images get varied sizes (landscape and portrait, 500-1000 px on the long side) and
    ``seg_large`` of the training ones are over 2000 px on the long side.
    """

    seg_train: int = 60
    seg_validation: int = 4
    seg_test: int = 4
    seg_large: int = 2
    train_counts: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TRAIN_COUNTS))
    validation: int = 21
    test: int = 35
    width: int = 600
    height: int = 450
    validation_ground_truth: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("seg_train", "seg_validation", "seg_test", "seg_large", "validation", "test", "seed"):
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("width", "height"):
            _check_int(name, getattr(self, name), minimum=64)
        if self.seg_large > self.seg_train:
            raise InputError(f"seg_large ({self.seg_large}) is more than seg_train ({self.seg_train})")
        if not isinstance(self.validation_ground_truth, bool):
            raise InputError(
                f"demo setting 'validation_ground_truth' must be true or false, got {self.validation_ground_truth!r}"
            )
        object.__setattr__(self, "train_counts", _checked_train_counts(self.train_counts))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "DemoSpec":
        """A spec from a (config) mapping holding any subset of the field names; others keep defaults."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        for key in d:
            if key not in names:
                raise InputError(f"unknown demo setting {key!r} (known: {', '.join(sorted(names))})")
        return cls(**d)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"demo setting {name!r} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"demo setting {name!r} must be at least {minimum}, got {value}")


def _checked_train_counts(counts: Any) -> dict[str, int]:
    """``train_counts`` as a plain dict over every class in ``CLASSES`` order; one integer means all classes."""
    if isinstance(counts, int) and not isinstance(counts, bool):
        counts = {c: counts for c in CLASSES}
    if not isinstance(counts, Mapping):
        raise InputError("train_counts must be a mapping of class to image count, or one count for all")
    unknown = [k for k in counts if k not in CLASSES]
    if unknown:
        raise InputError(f"train_counts: unknown class {unknown[0]!r} (classes: {', '.join(CLASSES)})")
    missing = [c for c in CLASSES if c not in counts]
    if missing:
        raise InputError(f"train_counts: class {missing[0]!r} is missing (give a count for every class)")
    for c in CLASSES:
        _check_int(f"train_counts.{c}", counts[c], minimum=0)
    if sum(counts[c] for c in CLASSES) == 0:
        raise InputError("train_counts: at least one training image is needed")
    return {c: int(counts[c]) for c in CLASSES}
