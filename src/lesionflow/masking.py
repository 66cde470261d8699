"""Masked-image creation: crop the largest lesion's box (with a margin) from image and mask, multiply."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from PIL import Image
from tqdm import tqdm

from . import isic
from .diskspace import reserved_memmap
from .imageio import atomic_path, read_mask, read_rgb, write_png
from .postprocess import bounding_box

log = logging.getLogger(__name__)


def masked_crop(image: np.ndarray, mask: np.ndarray, margin: float = 0.0, background: str = "zero") -> tuple[np.ndarray, bool]:
    """The lesion crop of ``image``; returns (crop, mask_was_empty). An empty mask gives the whole image."""
    box = bounding_box(mask, margin)
    if box is None:
        return image, True
    crop = image[box]
    if background == "zero":
        crop = crop * mask[box][..., None].astype(image.dtype)
    return crop, False


def mask_set(ids: Sequence[str], image_paths: Sequence[Path], mask_dir: str | Path, out_dir: str | Path,
             size: int, images_out: str | Path, index_out: str | Path, empty_out: str | Path,
             margin: float = 0.0, background: str = "zero", threads: int = 1) -> pd.DataFrame:
    """Write ``out_dir/ISIC_<id>.png`` crops and the classifier's cache (N×size×size×3 + index).

    Image and mask are cropped on the stored pixel grid (an image's EXIF orientation tag is ignored).
    Returns the table of ids whose predicted mask was empty (the whole image was used).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    empty = np.zeros(len(ids), dtype=bool)
    with atomic_path(images_out) as tmp, atomic_path(index_out) as index_tmp:
        cache = reserved_memmap(tmp, (len(ids), size, size, 3), np.uint8,
                                what=f"the cache of {len(ids)} masked crops at {size}²")

        def work(i: int) -> None:
            image = read_rgb(image_paths[i])
            mask = read_mask(Path(mask_dir) / isic.mask_name(ids[i]), image.shape[:2])
            crop, empty[i] = masked_crop(image, mask, margin, background)
            write_png(out / f"{ids[i]}.png", crop)
            cache[i] = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS))

        with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
            for _ in tqdm(pool.map(work, range(len(ids))), total=len(ids), desc="masked", unit="img", mininterval=2):
                pass
        cache.flush()
        del cache
        pd.DataFrame({"image": list(ids)}).to_csv(index_tmp, index=False)
    table = pd.DataFrame({"image": np.asarray(ids)[empty]})
    table.to_csv(empty_out, index=False)
    if empty.any():
        log.warning("%d of %d images had an empty predicted mask: the whole image was used (listed in %s)",
                    int(empty.sum()), len(ids), empty_out)
    return table
