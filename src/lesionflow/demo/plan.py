"""Planning the demo data set: every image's id, class, size and lesion, before any pixel is drawn.

The planner draws from its own random stream, so planning is cheap and the file names are known up front
(:func:`lesionflow.demo.planned_files`). Each planned image names the random streams it is drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ..isic import CLASSES
from .spec import CONFIRM_TYPES, FIRST_TASK3_ID, SEG_CLASS_WEIGHTS, DemoSpec

# Random streams (second element of every seed sequence); keep them distinct and stable.
#: The planner's stream: classes, sizes, lesion groups and the order of the ids.
STREAM_PLAN = 1
#: A Task 1 image's lesion, seeded by ``(seed, STREAM_SEG_LESION, image number)``.
STREAM_SEG_LESION = 2
#: A Task 3 lesion, seeded by ``(seed, STREAM_T3_LESION, lesion index)``; shared by the lesion's images.
STREAM_T3_LESION = 3
#: One image's own draws (skin, hairs, vignette, pose, blur, noise), seeded by ``(seed, STREAM_IMAGE, image number)``.
STREAM_IMAGE = 4

#: One row of the Task 3 lesion groupings: (image id, HAM10000-style lesion id, diagnosis confirm type).
GroupingRow = tuple[str, str, str]


@dataclass(frozen=True)
class PlannedImage:
    """One image of the demo data set, as planned: where it goes, what it shows, and its random streams."""

    folder: str  # ``isic.FOLDERS`` key of the image folder
    image_id: str
    class_name: str  # one of ``isic.CLASSES``
    size: tuple[int, int]  # (width, height)
    lesion_index: int  # the lesion's seed index within ``lesion_stream``
    lesion_stream: int  # STREAM_SEG_LESION or STREAM_T3_LESION
    variant: int = 0  # 0: the lesion's first image; >0: a re-render of the same lesion
    group_size: int = 1  # images of the same lesion
    mask_folder: str | None = None  # ``isic.FOLDERS`` key of the folder that gets its mask, if any


@dataclass(frozen=True)
class DemoPlan:
    """Every image to draw, in drawing order, and the Task 3 lesion groupings per set (only ``train``)."""

    images: list[PlannedImage]
    groupings: dict[str, list[GroupingRow]]


def allocate(total: int, weights: Mapping[str, float], min_each: int) -> dict[str, int]:
    """Split ``total`` over classes in proportion to ``weights`` (largest remainder), ``min_each`` floor."""
    present = [c for c in CLASSES if weights.get(c, 0) > 0]
    counts = {c: 0 for c in CLASSES}
    if total <= 0 or not present:
        return counts
    floor = min_each if total >= min_each * len(present) else 0
    for c in present:
        counts[c] = floor
    rest = total - floor * len(present)
    wsum = sum(weights[c] for c in present)
    quotas = {c: rest * weights[c] / wsum for c in present}
    for c in present:
        counts[c] += int(quotas[c])
    left = total - sum(counts.values())
    order = sorted(present, key=lambda c: (-(quotas[c] - int(quotas[c])), CLASSES.index(c)))
    for c in order[:left]:
        counts[c] += 1
    return counts


def _seg_size(rng: np.random.Generator, large: bool, portrait: bool) -> tuple[int, int]:
    """A Task 1 image's (width, height): a common aspect ratio, 500-1000 px (or 2048-2600 px) on the long side."""
    aspect = float(rng.choice([4 / 3, 3 / 2, 1.0, 1.25, 16 / 10]))
    long_side = int(rng.integers(2048, 2601)) if large else int(rng.integers(500, 1001))
    short_side = max(64, int(round(long_side / aspect)))
    return (short_side, long_side) if portrait else (long_side, short_side)


def plan_demo(spec: DemoSpec) -> DemoPlan:
    """Every image to draw for ``spec``, and the Task 3 training lesion groupings."""
    rng = np.random.default_rng([spec.seed, STREAM_PLAN])
    images: list[PlannedImage] = []
    next_id = 0

    def new_id() -> str:
        nonlocal next_id
        image_id = f"ISIC_{next_id:07d}"
        next_id += 1
        return image_id

    seg_classes = list(SEG_CLASS_WEIGHTS)
    seg_p = np.array([SEG_CLASS_WEIGHTS[c] for c in seg_classes])
    seg_p = seg_p / seg_p.sum()
    large_at = {int((k + 0.5) * spec.seg_train / spec.seg_large) for k in range(spec.seg_large)}
    for key, n in (
        ("seg_train_images", spec.seg_train),
        ("seg_validation_images", spec.seg_validation),
        ("seg_test_images", spec.seg_test),
    ):
        for i in range(n):
            large = key == "seg_train_images" and i in large_at
            portrait = i % 4 == 1 or (large and i != min(large_at))
            image_id = new_id()
            images.append(
                PlannedImage(
                    folder=key,
                    image_id=image_id,
                    class_name=str(rng.choice(seg_classes, p=seg_p)),
                    size=_seg_size(rng, large, portrait),
                    lesion_index=int(image_id[5:]),
                    lesion_stream=STREAM_SEG_LESION,
                    mask_folder="seg_train_masks" if key == "seg_train_images" else None,
                )
            )

    next_id = max(next_id, FIRST_TASK3_ID)
    size = (spec.width, spec.height)
    train_counts = dict(spec.train_counts)
    sets = {
        "train": train_counts,
        "validation": allocate(spec.validation, train_counts, 1),
        "test": allocate(spec.test, train_counts, 1),
    }
    groupings: dict[str, list[GroupingRow]] = {}
    lesion_index = 0
    for set_name in ("train", "validation", "test"):
        # One entry per lesion: (class, number of images); training lesions may have 2-3 images.
        lesions: list[tuple[str, int]] = []
        for c in CLASSES:
            left = sets[set_name][c]
            first = True
            while left > 0:
                k = 1
                if set_name == "train" and left >= 2 and (first or rng.random() < 0.2):
                    k = int(min(left, rng.choice([2, 2, 3])))
                lesions.append((c, k))
                left -= k
                first = False
        slots = [(li, j) for li, (_, k) in enumerate(lesions) for j in range(k)]
        order = rng.permutation(len(slots))  # ids must not reveal the class
        ham = None
        if set_name == "train":  # HAM10000-style lesion ids, unique
            ham = rng.choice(max(10_000, 2 * len(lesions)), size=len(lesions), replace=False)
        confirm = [str(rng.choice(list(CONFIRM_TYPES[c]), p=list(CONFIRM_TYPES[c].values()))) for c, _ in lesions]
        rows = []
        for pos in order:
            li, j = slots[pos]
            c, k = lesions[li]
            image_id = new_id()
            images.append(
                PlannedImage(
                    folder=f"{set_name}_images",
                    image_id=image_id,
                    class_name=c,
                    size=size,
                    lesion_index=lesion_index + li,
                    lesion_stream=STREAM_T3_LESION,
                    variant=j,
                    group_size=k,
                    mask_folder="test_masks" if set_name == "test" else None,
                )
            )
            if ham is not None:
                rows.append((image_id, f"HAM_{int(ham[li]):07d}", confirm[li]))
        lesion_index += len(lesions)
        if ham is not None:
            groupings[set_name] = sorted(rows)
    return DemoPlan(images, groupings)
