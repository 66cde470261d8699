"""Predicting on a folder of the user's own images: listing, output names, reading with a skip list.

A ``predict`` set is any folder of photographs. These rules decide what in it is an image and what each
output is called:

* Images are the files directly in the folder whose suffix is ``.jpg``, ``.jpeg`` or ``.png`` in any
  case (``.JPG``, ``.Png``, ...). Other files, sub-folders and hidden files (names starting with ``.``)
  are ignored.
* Every output is named after the whole input file name, suffix included, plus ``.png``: ``mole 1.JPG``
  gives ``masks/mole 1.JPG.png`` and ``masked/mole 1.JPG.png``, and its row in ``predictions.csv`` has
  ``file`` = ``mole 1.JPG``. File names are unique within a folder, so outputs never collide (``a.jpg``
  and ``a.png`` give ``a.jpg.png`` and ``a.png.png``), and the input's name is the output's minus ``.png``.
* Every image is used on its stored pixel grid; its EXIF orientation tag is ignored, as for the ISIC sets.
  A mask therefore has the image's stored size and lines up pixel for pixel with its stored pixels. So that
  a viewer shows the outputs turned like the photograph, the mask and masked-crop PNGs carry the image's
  EXIF orientation tag when it has one other than 1.
* An image file that cannot be used is skipped and listed with the reason in ``skipped.csv``: a name
  that is not valid UTF-8 or too long to add ``.png`` to, a broken link, or content that does not decode
  (a truncated JPEG, a text file named ``.jpg``, ...).
* Snakemake watches each image file, so adding, removing or changing one reruns that set. A path that
  Snakemake would read as holding a wildcard (``lesion{1}.jpg``) cannot be one of its inputs: such a file
  is still predicted, and adding or removing it still reruns the set, but a change to its content alone
  does not.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import isic
from .cache import NothingReadable, build_cache
from .errors import InputError
from .imageio import atomic_path, exif_orientation

log = logging.getLogger(__name__)

#: Suffixes of image files, compared case-insensitively.
SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png")
#: What every output name adds to its input's file name.
OUTPUT_SUFFIX = ".png"
#: Columns of ``skipped.csv``.
SKIPPED_COLUMNS = ["file", "reason"]
#: Columns of ``predictions.csv``.
PREDICTION_COLUMNS = ["file", *isic.CLASSES, "predicted_class"]

_NAME_MAX = 255  # bytes of one file name on common file systems
# Text that Snakemake reads as a wildcard in a path ('{name}' or '{name,regex}'); such paths cannot be
# Snakemake inputs, so changes to those files are not watched (they are still predicted).
_WILDCARD_LIKE = re.compile(r"\{\s*[.\w]+\s*(,[^{}]*)?\}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Listing:
    """The image files of one ``predict`` folder."""

    folder: Path
    names: tuple[str, ...]  # usable image file names, sorted
    rejected: tuple[tuple[str, str], ...] = ()  # (printable file name, reason), sorted

    @property
    def paths(self) -> list[Path]:
        return [self.folder / name for name in self.names]

    def watchable_paths(self) -> list[str]:
        """Paths Snakemake can take as inputs (all but those that look like wildcards), as strings."""
        return [str(p) for p in self.paths if not _WILDCARD_LIKE.search(str(p))]


def is_image_name(name: str) -> bool:
    """Whether a file name counts as an image: a suffix of :data:`SUFFIXES` in any case, not hidden."""
    return not name.startswith(".") and name.lower().endswith(SUFFIXES)


def output_name(file_name: str) -> str:
    """The name of every output of an input file: the whole file name plus ``.png``."""
    return file_name + OUTPUT_SUFFIX


def printable(name: str) -> str:
    """A file name as one line of text: bytes that are not UTF-8 and control characters become ``\\xNN``."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _name_problem(name: str) -> str | None:
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        return "file name is not valid UTF-8 (rename the file)"
    if _CONTROL.search(name):
        return "file name contains a control character such as a line break (rename the file)"
    if len(encoded) + len(OUTPUT_SUFFIX) > _NAME_MAX:
        return f"file name is too long to add {OUTPUT_SUFFIX!r} for its outputs ({len(encoded)} bytes)"
    return None


def list_images(folder: str | Path, key: str) -> Listing:
    """The image files of ``folder`` (see the module's rules); ``key`` names its config key in errors.

    Raises :class:`InputError` when the folder does not exist or holds no image files.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise InputError(f"config key {key}: image folder {printable(str(folder))} {what}")
    names, rejected = [], []
    for entry in os.scandir(folder):
        if not is_image_name(entry.name) or entry.is_dir():
            continue
        problem = _name_problem(entry.name)
        if problem is None and not entry.is_file():
            problem = "not a readable file (a broken link or a special file)"
        if problem is None:
            names.append(entry.name)
        else:
            rejected.append((printable(entry.name), problem))
    if not names and not rejected:
        raise InputError(f"config key {key}: image folder {printable(str(folder))} holds no {'/'.join(SUFFIXES)} files")
    return Listing(folder, tuple(sorted(names)), tuple(sorted(rejected)))


def cache_images(
    listing: Listing,
    size: int,
    images_out: str | Path,
    index_out: str | Path,
    key: str = "",
    threads: int = 1,
    progress: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Resize every readable image of ``listing`` to ``size``×``size`` into ``images_out`` and its index, with
    the workflow's one resize-to-cache (:func:`lesionflow.cache.build_cache`, skipping unreadable files).

    ``images_out`` holds N×S×S×3 uint8; the index has ``image`` (the file name), ``height`` and ``width``
    (the original size of the stored pixel grid) and ``orientation`` (the EXIF orientation tag, 1 when
    there is none), which :func:`lesionflow.predictor.write_masks` passes on to the masks. Files that do
    not decode are left out; returns ``(index, skipped)``, where ``skipped`` lists
    (:data:`SKIPPED_COLUMNS`) those and the listing's rejected files, sorted by name. Raises
    :class:`InputError` naming ``key`` when no file can be used; outputs appear only on success.
    """
    names = list(listing.names)
    cached, unreadable = None, []
    if names:
        try:
            cached = build_cache(
                names,
                listing.paths,
                size,
                images_out,
                index_out,
                threads=threads,
                progress=progress,
                unreadable="skip",
                orientation=True,
            )
            unreadable = cached.skipped
        except NothingReadable as exc:
            unreadable = exc.skipped
    skipped = pd.DataFrame(sorted([*listing.rejected, *unreadable]), columns=SKIPPED_COLUMNS)
    for row in skipped.itertuples(index=False):
        log.warning("skipped %r: %s", row.file, row.reason)
    if cached is None:
        first = skipped.iloc[0]
        raise InputError(
            f"{key + ': ' if key else ''}none of the {len(skipped)} image files in "
            f"{printable(str(listing.folder))} can be used (first: {first.file!r}: {first.reason})"
        )
    return cached.index, skipped


def read_index(path: str | Path) -> pd.DataFrame:
    """An index or table written here, with file names kept as text exactly as written."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a CSV atomically."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def crop_images(
    folder: str | Path,
    names: Sequence[str],
    mask_dir: str | Path,
    out_dir: str | Path,
    size: int,
    images_out: str | Path,
    index_out: str | Path,
    *,
    margin: float,
    background: str,
    threads: int = 1,
    progress: bool = True,
) -> list[str]:
    """Write each image's lesion crop as ``out_dir/<file name>.png`` and the classifier's cache.

    The crop is :func:`lesionflow.masking.crop_set`'s with the image's predicted mask, both on the stored
    pixel grid; the PNG carries the image's EXIF orientation tag when that is not 1. Returns the names whose
    mask was empty (whole image used).
    """
    from .masking import crop_set

    folder, mask_dir = Path(folder), Path(mask_dir)
    empty = crop_set(
        [folder / name for name in names],
        [mask_dir / output_name(name) for name in names],
        out_dir,
        [output_name(name) for name in names],
        size,
        images_out,
        index_out,
        names,
        margin=margin,
        background=background,
        orientations=[exif_orientation(folder / name) for name in names],
        threads=threads,
        progress=progress,
    )
    return [name for name, e in zip(names, empty) if e]


def predictions_table(files: Sequence[str], prob: np.ndarray) -> pd.DataFrame:
    """``file``, the seven class probabilities and ``predicted_class`` (the most probable class)."""
    prob = np.asarray(prob, dtype=np.float64)
    if prob.shape != (len(files), len(isic.CLASSES)):
        raise ValueError(f"prob must be {len(files)}×{len(isic.CLASSES)}, got {prob.shape}")
    table = pd.DataFrame(prob, columns=list(isic.CLASSES))
    table.insert(0, "file", list(files))
    table["predicted_class"] = np.asarray(isic.CLASSES)[prob.argmax(axis=1)]
    return table
