"""Masked-image creation: crop the largest lesion's box (with a margin) from image and mask, multiply."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image

from . import isic
from .cache import fill_in_chunks
from .diskspace import reserved_memmap
from .imageio import atomic_dir, atomic_path, read_mask, read_rgb, write_png
from .postprocess import bounding_box

log = logging.getLogger(__name__)


def masked_crop(
    image: np.ndarray, mask: np.ndarray, margin: float = 0.0, background: str = "zero"
) -> tuple[np.ndarray, bool]:
    """The lesion crop of ``image``; returns (crop, mask_was_empty). An empty mask gives the whole image."""
    box = bounding_box(mask, margin)
    if box is None:
        return image, True
    crop = image[box]
    if background == "zero":
        crop = crop * mask[box][..., None].astype(image.dtype)
    return crop, False


def crop_set(
    image_paths: Sequence[Path],
    mask_paths: Sequence[Path],
    out_dir: str | Path,
    crop_names: Sequence[str],
    size: int,
    images_out: str | Path,
    index_out: str | Path,
    index_ids: Sequence[str],
    *,
    margin: float,
    background: str,
    orientations: Sequence[int] | None = None,
    threads: int = 1,
    progress: bool = True,
) -> np.ndarray:
    """Each image's lesion crop as ``out_dir/crop_names[i]`` (PNG) and the classifier's cache of them.

    Image and mask are cropped on the stored pixel grid (an image's EXIF orientation tag is ignored); a
    crop's PNG carries ``orientations[i]`` when given and not 1. The cache (``images_out``, N×size×size×3
    uint8, filled in chunks) holds each crop resized to ``size``×``size``; its index lists ``index_ids``.
    The folder and the cache appear only once every crop is written. Returns which masks were empty (the
    whole image was used).
    """
    n = len(image_paths)
    if not n == len(mask_paths) == len(crop_names) == len(index_ids):
        raise ValueError("image_paths, mask_paths, crop_names and index_ids must have the same length")
    empty = np.zeros(n, dtype=bool)
    with atomic_dir(out_dir) as crops_tmp, atomic_path(images_out) as images_tmp, atomic_path(index_out) as index_tmp:
        reserved_memmap(
            images_tmp, (n, size, size, 3), np.uint8, what=f"the cache of {n} lesion crops at {size}²"
        ).flush()

        def work(i: int, arrays: list[np.ndarray]) -> None:
            image = read_rgb(image_paths[i])
            mask = read_mask(mask_paths[i], image.shape[:2])
            crop, empty[i] = masked_crop(image, mask, margin, background)
            write_png(crops_tmp / crop_names[i], crop, orientation=1 if orientations is None else orientations[i])
            arrays[0][i] = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS))

        fill_in_chunks([images_tmp], n, work, threads=threads, progress=progress, desc="masked")
        pd.DataFrame({"image": list(index_ids)}).to_csv(index_tmp, index=False)
    return empty


def mask_set(
    ids: Sequence[str],
    image_paths: Sequence[Path],
    mask_dir: str | Path,
    out_dir: str | Path,
    size: int,
    images_out: str | Path,
    index_out: str | Path,
    empty_out: str | Path,
    *,
    margin: float,
    background: str,
    threads: int = 1,
) -> pd.DataFrame:
    """The crops of one Task 3 set: ``out_dir/ISIC_<id>.png`` and the classifier's cache (:func:`crop_set`).

    Returns (and writes to ``empty_out``) the table of ids whose predicted mask was empty.
    """
    empty = crop_set(
        image_paths,
        [Path(mask_dir) / isic.mask_name(i) for i in ids],
        out_dir,
        [f"{i}.png" for i in ids],
        size,
        images_out,
        index_out,
        ids,
        margin=margin,
        background=background,
        threads=threads,
    )
    table = pd.DataFrame({"image": np.asarray(ids)[empty]})
    with atomic_path(empty_out) as tmp:
        table.to_csv(tmp, index=False)
    if empty.any():
        log.warning(
            "%d of %d images had an empty predicted mask: the whole image was used (listed in %s)",
            int(empty.sum()),
            len(ids),
            empty_out,
        )
    return table
