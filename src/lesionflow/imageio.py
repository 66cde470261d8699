"""Image and mask I/O: decode RGB, fast draft-mode reduction, binary-mask checks, atomic writes.

Every image is used on its stored pixel grid: the EXIF orientation tag is read only to be passed on
(:func:`exif_orientation`), never applied. A mask is drawn on that same grid (as the ISIC masks are), so
it lines up pixel for pixel with the stored pixels of its image whatever the tag says.
"""

from __future__ import annotations

import os
import shutil
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from .errors import InputError

# A large ISIC image (6688×4439) is ~30 Mpx; refuse only absurd sizes.
Image.MAX_IMAGE_PIXELS = 200_000_000

#: The EXIF tag that says how a viewer should turn the stored pixels.
_ORIENTATION = 0x0112

#: Colour modes converted to RGB; anything else (16-bit, float) is refused.
_RGB_CONVERTIBLE = {"RGB", "L", "LA", "P", "PA", "RGBA", "RGBX", "CMYK", "YCbCr", "1", "I;16", "I"}


def _open(path: Path) -> Image.Image:
    try:
        img = Image.open(path)
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except UnidentifiedImageError:
        raise InputError("not a readable image (not in any image format Pillow knows)", path) from None
    except Exception as exc:  # OSError, ...
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})", path) from None
    return img


def _load(img: Image.Image, path: Path) -> Image.Image:
    """Force decoding so that truncated or corrupt data fail here, with the file's name."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except Exception as exc:
        raise InputError(f"image data is corrupt or truncated ({exc})", path) from None
    return img


def _to_rgb(img: Image.Image, path: Path) -> Image.Image:
    if img.mode not in _RGB_CONVERTIBLE:
        raise InputError(f"unsupported colour mode {img.mode!r}", path)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (0, 0, 0, 255))
        img = Image.alpha_composite(background, img)
    if img.mode in ("I;16", "I"):  # 16-bit greyscale: keep the 8 most significant bits
        img = Image.fromarray((np.asarray(img).astype(np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    return img.convert("RGB") if img.mode != "RGB" else img


def read_rgb(path: str | Path) -> np.ndarray:
    """The image at ``path`` on its stored pixel grid (EXIF orientation ignored), RGB ``uint8`` H×W×3."""
    path = Path(path)
    img = _load(_open(path), path)
    return np.asarray(_to_rgb(img, path))


def read_rgb_resized(path: str | Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode ``path`` straight to a ``size``×``size``×3 ``uint8`` array; also return the original (H, W).

    JPEGs are decoded in draft mode (DCT-domain reduction by 1/2, 1/4 or 1/8) to no less than twice the
    target size, then reduced with Pillow's antialiased bilinear (triangle) filter, whose support grows
    with the reduction factor: it matches ``skimage.transform.resize(anti_aliasing=True)`` to ≥ 45 dB PSNR
    (Lanczos, sharper, falls to ~35 dB on hairs and specks). Array and size are those of the stored pixel
    grid; the EXIF orientation tag is ignored.
    """
    path = Path(path)
    img = _open(path)
    full_w, full_h = img.size
    if img.format == "JPEG":
        img.draft("RGB", (2 * size, 2 * size))
    img = _to_rgb(_load(img, path), path)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img), (full_h, full_w)


def image_size(path: str | Path) -> tuple[int, int]:
    """The stored (H, W) of an image from its header, without decoding the pixels (EXIF orientation ignored)."""
    path = Path(path)
    with _open(path) as img:
        w, h = img.size
    return h, w


def exif_orientation(path: str | Path) -> int:
    """The EXIF orientation tag (1–8) of the image at ``path``; 1 when it has none or it cannot be read."""
    path = Path(path)
    with _open(path) as img:
        try:
            orientation = img.getexif().get(_ORIENTATION, 1)
        except Exception:  # a damaged EXIF block says nothing about the pixels, which are used as stored
            return 1
    return orientation if isinstance(orientation, int) and 1 <= orientation <= 8 else 1


#: What Pillow's modes mean, for messages about masks in another format.
_MODE_NAMES = {
    "I;16": "a 16-bit image",
    "I;16B": "a 16-bit image",
    "I": "a 32-bit integer image",
    "F": "a floating-point image",
    "P": "a palette (indexed-colour) image",
    "RGB": "an RGB colour image",
    "RGBA": "an RGB image with transparency",
    "LA": "a greyscale image with transparency",
    "CMYK": "a CMYK image",
}


def check_mask(path: str | Path, expected_size: tuple[int, int] | None = None) -> Image.Image:
    """Open and decode a ground-truth mask, checking it is in the ISIC format; return it in mode 'L'.

    The file must be an 8-bit single-channel image ('L' or '1') whose values are only 0 and 255;
    ``expected_size`` (H, W) is the size of its image. The size is checked before the pixels are decoded,
    the values with Pillow's histogram (no copy of the pixels).
    """
    path = Path(path)
    img = _open(path)
    try:
        if img.mode not in ("L", "1"):
            kind = _MODE_NAMES.get(img.mode, "an image")
            raise InputError(f"mask must be an 8-bit single-channel image, got {kind} (mode {img.mode!r})", path)
        w, h = img.size
        if expected_size is not None and (h, w) != tuple(expected_size):
            raise InputError(
                f"mask is {w}×{h} but its image is {expected_size[1]}×{expected_size[0]} (width×height)", path
            )
        img = _load(img, path)
    except InputError:
        img.close()
        raise
    if img.mode == "1":
        img = img.convert("L")
    values = [v for v, count in enumerate(img.histogram()) if count]
    if not set(values) <= {0, 255}:
        raise InputError(
            f"mask is not binary: values other than 0 and 255 found "
            f"({', '.join(map(str, values[:6]))}{', …' if len(values) > 6 else ''})",
            path,
        )
    return img


def read_mask(path: str | Path, expected_size: tuple[int, int] | None = None) -> np.ndarray:
    """A ground-truth mask as a boolean H×W array, checked by :func:`check_mask`."""
    return np.asarray(check_mask(path, expected_size)) > 128


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Area-average a boolean mask to ``size``×``size`` and re-binarise at one half (``uint8`` 0/1)."""
    img = Image.fromarray(mask.astype(np.uint8) * 255)
    small = np.asarray(img.resize((size, size), Image.Resampling.BOX))
    return (small >= 128).astype(np.uint8)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it to ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a temporary sibling folder of ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_png(path: str | Path, array: np.ndarray, orientation: int = 1) -> None:
    """Write a uint8 array as a lossless PNG, atomically.

    An ``orientation`` other than 1 is written as the PNG's EXIF orientation tag, so that a viewer turns the
    output as it turns the photograph it was made from; the pixels stay on the stored grid.
    """
    path = Path(path)
    extra = {}
    if orientation != 1:
        exif = Image.Exif()
        exif[_ORIENTATION] = orientation
        extra["exif"] = exif.tobytes()
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG", **extra)
