"""Resize-to-cache: one image set → ``images.npy`` (N×S×S×3 uint8), ``index.csv`` and optional ``masks.npy``.

Arrays are streamed into memory-mapped ``.npy`` files, so memory stays flat whatever N is. Images are
decoded in parallel threads (Pillow releases the GIL while decoding and resizing).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
from numpy.lib.format import open_memmap
from tqdm import tqdm

from .diskspace import reserved_memmap
from .errors import InputError
from .imageio import atomic_path, exif_orientation, read_mask, read_rgb_resized, resize_mask

log = logging.getLogger(__name__)

INDEX_COLUMNS = ["image", "height", "width"]

#: Images written per memory map (≈77 MB of 224² images): bounds the job's resident memory.
CHUNK = 512


@dataclass(frozen=True)
class Cache:
    """A resized image set on disk, opened read-only and memory-mapped."""

    images: np.ndarray  # N×S×S×3 uint8
    index: pd.DataFrame  # image, height, width (original size, of the stored pixel grid)
    masks: np.ndarray | None = None  # N×S×S uint8 0/1

    @property
    def ids(self) -> list[str]:
        return self.index["image"].tolist()


def fill_in_chunks(
    paths: Sequence[str | Path],
    n: int,
    work: Callable[[int, list[np.ndarray]], None],
    *,
    threads: int = 1,
    progress: bool = True,
    desc: str = "",
) -> None:
    """Call ``work(i, arrays)`` for i in 0..n-1 in ``threads`` threads, on the ``.npy`` files ``paths`` (created
    beforehand, e.g. by :func:`lesionflow.diskspace.reserved_memmap`), memory-mapped :data:`CHUNK` rows at a time.

    Unmapping a written chunk hands its pages back to the page cache, so the job's resident memory stays
    flat whatever ``n`` is.
    """
    bar = tqdm(total=n, disable=not progress, desc=desc, unit="img", mininterval=2)
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, n, CHUNK):
            arrays = [open_memmap(path, mode="r+") for path in paths]
            rows = range(start, min(n, start + CHUNK))
            for _ in pool.map(work, rows, repeat(arrays, len(rows))):
                bar.update()
            for array in arrays:
                array.flush()  # the next chunk's maps replace these, which unmaps them
    bar.close()


def release_rows(array: np.ndarray, start: int, stop: int) -> None:
    """Drop rows ``start``…``stop - 1`` of a memory-mapped array from this process's resident memory.

    Reading a memory-mapped cache maps its pages into the process, and they count in its RSS (and against a
    cluster job's memory limit) until unmapped. Rows already copied out are not needed again: telling the
    kernel so (``MADV_DONTNEED`` on clean, file-backed pages) keeps the RSS of a pass over a large cache flat.
    A no-op for arrays that are not a whole memory-mapped file (as :func:`load_cache` opens them; a view's
    ``offset`` is its parent's, so its rows cannot be located), or where ``madvise`` is unavailable.
    """
    import mmap

    mapping = array.base if isinstance(array, np.memmap) else None
    if not isinstance(mapping, mmap.mmap) or not hasattr(mapping, "madvise") or stop <= start:
        return
    row_bytes = int(np.prod(array.shape[1:])) * array.itemsize
    first = array.offset + start * row_bytes
    aligned = first - first % mmap.PAGESIZE
    length = (stop - start) * row_bytes + (first - aligned)
    try:
        mapping.madvise(mmap.MADV_DONTNEED, aligned, min(length, len(mapping) - aligned))
    except (OSError, ValueError):
        pass


def load_cache(images: str | Path, index: str | Path, masks: str | Path | None = None) -> Cache:
    """Open a cache written by :func:`build_cache` (arrays memory-mapped, not read into memory)."""
    table = pd.read_csv(index, dtype={"image": str})
    arr = np.load(images, mmap_mode="r")
    if len(arr) != len(table):
        raise InputError(f"cache holds {len(arr)} images but its index lists {len(table)}", images)
    return Cache(arr, table, None if masks is None else np.load(masks, mmap_mode="r"))


@dataclass(frozen=True)
class Cached:
    """What :func:`build_cache` wrote: the index of the cached images, and the ones left out with why."""

    index: pd.DataFrame  # image, height, width (and orientation, when asked for)
    skipped: list[tuple[str, str]]  # (id, reason) of each image that could not be read (unreadable="skip")


class NothingReadable(InputError):
    """No image of a set could be read (``unreadable="skip"``); ``skipped`` says why for each."""

    def __init__(self, message: str, skipped: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.skipped = skipped


def unreadable_reason(exc: Exception) -> str:
    """The message of a read error without the file name in front (the file is named beside it)."""
    if isinstance(exc, InputError):
        text = str(exc)
        prefix = f"{exc.path}: " if exc.path else ""
        return text[len(prefix) :] if text.startswith(prefix) else text
    return f"not a readable image ({type(exc).__name__}: {exc})"


def build_cache(
    ids: Sequence[str],
    image_paths: Sequence[str | Path],
    size: int,
    images_out: str | Path,
    index_out: str | Path,
    mask_paths: Sequence[str | Path] | None = None,
    masks_out: str | Path | None = None,
    threads: int = 1,
    progress: bool = True,
    *,
    unreadable: str = "raise",
    orientation: bool = False,
) -> Cached:
    """Resize every image (and mask) to ``size``×``size`` and stream them into ``.npy`` files: the one
    resize-to-cache of the workflow, for the ISIC sets and for folders of one's own images alike.

    Images and masks are resized on their stored pixel grids (an image's EXIF orientation tag is ignored), so
    a mask's lesion stays where it is on its image; each mask must have its image's stored size. Outputs
    appear under their final names only when the whole set is done. With ``unreadable="raise"`` (a checked
    ISIC set) a bad file raises :class:`InputError` naming it and leaves nothing behind; with ``"skip"`` (a
    user's folder, masks not allowed) it is left out of the cache and listed in :attr:`Cached.skipped`, and
    only when no image can be read does it raise. ``orientation`` adds each image's EXIF orientation tag (1
    when there is none) to the index, for the masks predicted from it.
    """
    n = len(image_paths)
    if n == 0:
        raise InputError("no images to cache", Path(images_out).parent)
    if len(ids) != n or (mask_paths is not None and len(mask_paths) != n):
        raise ValueError("ids, image_paths and mask_paths must have the same length")
    if (mask_paths is None) != (masks_out is None):
        raise ValueError("mask_paths and masks_out go together")
    if unreadable not in ("raise", "skip") or (unreadable == "skip" and mask_paths is not None):
        raise ValueError("unreadable is 'raise' or 'skip' (and 'skip' caches no masks)")
    sizes = np.zeros((n, 2), dtype=np.int64)
    orientations = np.ones(n, dtype=np.int64)
    reasons: list[str | None] = [None] * n
    # Skipping writes every row to a scratch file first, then only the readable rows to images_out.
    scratch = Path(images_out).with_name(f".{Path(images_out).name}.all.tmp{os.getpid()}")

    try:
        with (
            atomic_path(images_out) as images_tmp,
            atomic_path(index_out) as index_tmp,
            nullcontext() if masks_out is None else atomic_path(masks_out) as masks_tmp,
        ):
            # Create the files, then map one chunk at a time: unmapping a written chunk hands its pages
            # back to the page cache, so the job's resident memory stays flat whatever N is.
            first = scratch if unreadable == "skip" else images_tmp
            reserved_memmap(first, (n, size, size, 3), np.uint8, what=f"the cache of {n} images at {size}²").flush()
            if masks_tmp is not None:
                reserved_memmap(masks_tmp, (n, size, size), np.uint8, what=f"the cache of {n} masks at {size}²").flush()
            arrays = [first] if masks_tmp is None else [first, masks_tmp]

            def work(i: int, maps: list[np.ndarray]) -> None:
                try:
                    maps[0][i], sizes[i] = read_rgb_resized(image_paths[i], size)
                    if orientation:
                        orientations[i] = exif_orientation(image_paths[i])
                except MemoryError:
                    raise
                except Exception as exc:
                    if unreadable == "raise":
                        raise
                    reasons[i] = unreadable_reason(exc)
                    return
                if masks_tmp is not None:
                    maps[1][i] = resize_mask(read_mask(mask_paths[i], tuple(sizes[i])), size)

            fill_in_chunks(
                arrays, n, work, threads=threads, progress=progress, desc=f"resize {Path(images_out).parent.name}"
            )
            good = [i for i in range(n) if reasons[i] is None]
            skipped = [(str(ids[i]), str(reasons[i])) for i in range(n) if reasons[i] is not None]
            if not good:
                name, reason = skipped[0]
                raise NothingReadable(f"none of the {n} images can be read (first: {name!r}: {reason})", skipped)
            if unreadable == "skip":
                _copy_rows(scratch, good, images_tmp, f"the cache of {len(good)} images at {size}²")
            table = pd.DataFrame({"image": [ids[i] for i in good], "height": sizes[good, 0], "width": sizes[good, 1]})
            if orientation:
                table["orientation"] = orientations[good]
            table.to_csv(index_tmp, index=False)
    finally:
        scratch.unlink(missing_ok=True)
    log.info("cached %d images at %d×%d into %s (%d skipped)", len(good), size, size, images_out, len(skipped))
    return Cached(table, skipped)


def _copy_rows(source: Path, rows: list[int], destination: Path, what: str) -> None:
    """Write ``rows`` of the ``.npy`` at ``source`` to a new ``.npy`` at ``destination``, a chunk at a time."""
    full = open_memmap(source, mode="r")
    out = reserved_memmap(destination, (len(rows), *full.shape[1:]), full.dtype, what=what)
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        out[start : start + len(chunk)] = full[chunk]
    out.flush()
    del full, out
