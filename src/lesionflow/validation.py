"""Input checks that run before any stage, so that a bad file fails in seconds rather than after training.

:func:`check_images` checks what a set's cache reads: every image decodes and, for the segmentation
training set, every mask exists, has its image's size and is an 8-bit single-channel 0/255 image. Sizes
are those of the stored pixel grid (an image's EXIF orientation tag is ignored, as the masks are drawn on
that grid), the same sizes the caches and the predicted masks use.
:func:`check_ground_truth` checks the masks and labels of a held-out set against its images.
:func:`check_training_labels` checks the Task 3 training ground truth and lesion groupings against the
training images. Each returns a summary for ``results/checks/*.json``. All problems of a kind are
collected and logged; the first one is raised as :class:`InputError` (one line naming the file and the
problem, with the number of further problems), so one run lists every bad file in its log.

A set's check is the only job that lists the set's files as inputs: its summary records the ids, folders
and a fingerprint of the files (name, size, modification time), and the jobs that follow take that JSON
as their input and read their files with :func:`checked_files`. A changed file reruns the check, which
rewrites the JSON, which reruns what follows, while planning handles one input per job instead of one
per image.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

from . import isic
from .errors import InputError
from .imageio import check_mask, image_size, read_rgb_resized
from .labels import read_ground_truth, read_groupings_table

log = logging.getLogger(__name__)

#: Side of the thumbnail an image is decoded to: JPEGs decode at 1/8 scale, which still reads every byte.
_CHECK_SIZE = 8

#: File name endings of images that are not picked up when their name is not an ISIC id.
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")


def ids_of(image_paths: Sequence[str | Path]) -> list[str]:
    """The ISIC ids of ``ISIC_<id>.jpg`` files (raises InputError for any other name)."""
    ids = []
    for path in map(Path, image_paths):
        if not path.name.endswith(isic.IMAGE_SUFFIX):
            raise InputError(f"not an {isic.IMAGE_SUFFIX} image", path)
        ids.append(isic.check_id(path.name[: -len(isic.IMAGE_SUFFIX)], path))
    return ids


def check_image(path: str | Path) -> tuple[int, int]:
    """Decode ``path`` completely (JPEGs at reduced scale) and return its stored (H, W), EXIF orientation ignored."""
    try:
        return read_rgb_resized(path, _CHECK_SIZE)[1]
    except InputError:
        raise
    except Exception as exc:  # anything Pillow meets while decoding an odd file
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})", path) from None


def _raise_first(problems: list[InputError], what: str) -> None:
    """Raise the first problem; when there are several, log them all and say how many more there are."""
    if len(problems) == 1:
        raise problems[0]
    if problems:
        for problem in problems:
            log.error("%s", problem)
        raise InputError(f"{problems[0]} (and {len(problems) - 1} more {what}; all are listed in the job's log)")


def _some(names: Sequence[str], shown: int = 5) -> str:
    return ", ".join(names[:shown]) + (f" … ({len(names)} in all)" if len(names) > shown else "")


def _ignored(folder: Path, listed: set[str]) -> list[str]:
    """Names of image-like files in ``folder`` that are not among ``listed`` (not ISIC ids)."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name.lower().endswith(_IMAGE_SUFFIXES) and p.name not in listed)


def _pair_masks(ids: Sequence[str], image_paths: Sequence[Path], mask_paths: Sequence[str | Path]) -> list[Path]:
    """The mask of each image, by name; raises InputError for an image whose mask is not listed."""
    by_name = {Path(p).name: Path(p) for p in mask_paths}
    masks = []
    for image_id, image in zip(ids, image_paths):
        mask = by_name.get(isic.mask_name(image_id))
        if mask is None:
            raise InputError(f"image {image_id} has no mask {isic.mask_name(image_id)}", image)
        masks.append(mask)
    return masks


def _check_all(
    paths: Sequence[Path], masks: list[Path] | None, size_of: Callable[[Path], tuple[int, int]], threads: int
) -> list[tuple[int, int]]:
    """``size_of`` every image (and check its mask against that size) in threads; every problem is found."""

    def work(i: int) -> tuple[tuple[int, int] | None, InputError | None]:
        try:
            size = size_of(paths[i])
            if masks is not None:
                check_mask(masks[i], size)
            return size, None
        except InputError as exc:
            return None, exc

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        results = list(pool.map(work, range(len(paths))))
    _raise_first([problem for _, problem in results if problem is not None], "bad files")
    return [size for size, _ in results]


def files_fingerprint(paths: Sequence[str | Path]) -> str:
    """SHA-256 of every file's name, size and modification time: it changes when any of the files does."""
    digest = hashlib.sha256()
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{Path(path).name}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _summary(
    image_paths: list[Path], ids: list[str], sizes: list[tuple[int, int]], masks: list[Path] | None
) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "images": len(image_paths),
        "folder": str(image_paths[0].parent),
        "smallest_image_hw": list(min(sizes, key=lambda s: s[0] * s[1])),
        "largest_image_hw": list(max(sizes, key=lambda s: s[0] * s[1])),
        "masks": 0 if masks is None else len(masks),
        "warnings": [],
        "checked": ["every file name is an ISIC id"],
        "ids": list(ids),
    }
    if masks is not None:
        summary["mask_folder"] = str(masks[0].parent)
        summary["checked"].append("every image has a mask of its size, 8-bit single-channel, values 0 and 255")
        extra = _ignored(masks[0].parent, {m.name for m in masks})
        if extra:
            summary["warnings"].append(
                f"{masks[0].parent}: ignored {len(extra)} mask file(s) with no image: {_some(extra)}"
            )
    return summary


def _paired(
    image_paths: Sequence[str | Path], mask_paths: Sequence[str | Path] | None
) -> tuple[list[Path], list[str], Any]:
    """The images as paths, their ids, and their masks paired by id (None without masks)."""
    image_paths = [Path(p) for p in image_paths]
    if not image_paths:
        raise InputError("no images to check")
    ids = ids_of(image_paths)
    return image_paths, ids, None if mask_paths is None else _pair_masks(ids, image_paths, mask_paths)


def check_images(
    image_paths: Sequence[str | Path], mask_paths: Sequence[str | Path] | None = None, threads: int = 1
) -> dict[str, Any]:
    """Check what a set's cache reads: every image decodes; with ``mask_paths``, every image's mask.

    Images are decoded in ``threads`` threads (Pillow releases the GIL). Returns a summary: counts, the
    smallest and largest image, warnings (files ignored) and what was checked.
    """
    start = time.perf_counter()
    image_paths, ids, masks = _paired(image_paths, mask_paths)
    sizes = _check_all(image_paths, masks, check_image, threads)
    summary = _summary(image_paths, ids, sizes, masks)
    summary["checked"].insert(1, "every image decodes (JPEG at 1/8 scale)")
    summary["fingerprint"] = files_fingerprint([*image_paths, *(masks or [])])
    ignored = _ignored(image_paths[0].parent, {p.name for p in image_paths})
    if ignored:
        summary["warnings"].append(
            f"{image_paths[0].parent}: ignored {len(ignored)} image file(s) whose name is "
            f"not ISIC_<7 digits>.jpg: {_some(ignored)}"
        )
    return _finish(summary, start)


def check_ground_truth(
    image_paths: Sequence[str | Path],
    mask_paths: Sequence[str | Path] | None = None,
    labels_csv: str | Path | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Check the ground truth of a held-out set against its images (their sizes from the file headers).

    With ``mask_paths``, every image has a mask of its size in the ISIC format; with ``labels_csv``, the
    labels are well-formed and there is one for each image and an image for each.
    """
    start = time.perf_counter()
    image_paths, ids, masks = _paired(image_paths, mask_paths)
    sizes = _check_all(image_paths, masks, image_size, threads)
    summary = {**_summary(image_paths, ids, sizes, masks), "labels": None}
    if labels_csv is not None:
        truth = read_ground_truth(labels_csv, ids)
        summary["labels"] = str(labels_csv)
        summary["classes"] = {c: int(n) for c, n in truth.sum().items()}
        summary["checked"].append("labels: columns image,MEL..VASC, one-hot rows, ISIC ids, one label per image")
    return _finish(summary, start)


def checked_files(check_json: str | Path) -> tuple[list[str], list[Path], list[Path] | None]:
    """The ids, image paths and mask paths (None without masks) that a check recorded in its JSON."""
    summary = json.loads(Path(check_json).read_text())
    ids = summary["ids"]
    folder = Path(summary["folder"])
    masks = None
    if summary.get("masks"):
        mask_folder = Path(summary["mask_folder"])
        masks = [mask_folder / isic.mask_name(i) for i in ids]
    return ids, [folder / isic.image_name(i) for i in ids], masks


def _finish(summary: dict[str, Any], start: float) -> dict[str, Any]:
    for warning in summary["warnings"]:
        log.warning("%s", warning)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    log.info(
        "checked %d images%s in %.1f s",
        summary["images"],
        " and their masks" if summary["masks"] else "",
        summary["seconds"],
    )
    return summary


def check_training_labels(
    labels_csv: str | Path, groupings_csv: str | Path, image_ids: Sequence[str]
) -> dict[str, Any]:
    """Check the Task 3 training ground truth and lesion groupings against the training images.

    Every label has an image and every image one label; the groupings CSV has ``image`` and
    ``lesion_id`` columns, valid unique ids and no row for an image that does not exist. An image missing
    from the groupings is its own lesion (a warning, as the classifier's folds treat it so).
    """
    ids = [isic.check_id(i) for i in image_ids]
    truth = read_ground_truth(labels_csv, ids)
    groupings = read_groupings_table(groupings_csv)
    known = set(ids)
    unknown = [row for row, image_id in enumerate(groupings["image"], start=2) if image_id not in known]
    if unknown:
        image_id = groupings["image"].iloc[unknown[0] - 2]
        raise InputError(
            f"lesion_id for image {image_id} which does not exist (not among the {len(known)} "
            f"training images; {len(unknown)} such row{'' if len(unknown) == 1 else 's'})",
            f"{groupings_csv}, row {unknown[0]}",
        )
    grouped = set(groupings["image"])
    alone = [i for i in ids if i not in grouped]
    warnings = []
    if alone:
        warnings.append(
            f"{groupings_csv}: {len(alone)} image(s) have no lesion_id and count as their own lesion ({_some(alone)})"
        )
    for warning in warnings:
        log.warning("%s", warning)
    lesions = groupings.set_index("image")["lesion_id"].astype(str)
    return {
        "labels": str(labels_csv),
        "groupings": str(groupings_csv),
        "images": len(ids),
        "classes": {c: int(n) for c, n in truth.sum().items()},
        "lesions": int(lesions.nunique()) + len(alone),
        "warnings": warnings,
        "checked": [
            "labels: columns image,MEL..VASC, one-hot rows, ISIC ids, one label per image",
            "groupings: columns image and lesion_id, ISIC ids listed once, no empty lesion_id, "
            "no row for an image that does not exist",
        ],
    }
