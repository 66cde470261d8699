"""Image and mask I/O: decode upright RGB, fast draft-mode reduction, binary-mask checks, atomic writes."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError

# A large ISIC image (6688×4439) is ~30 Mpx; refuse only absurd sizes.
Image.MAX_IMAGE_PIXELS = 200_000_000

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
    """The image at ``path`` as an upright (EXIF-rotated) RGB ``uint8`` array of shape H×W×3."""
    path = Path(path)
    img = _load(_open(path), path)
    img = ImageOps.exif_transpose(img)
    return np.asarray(_to_rgb(img, path))


def read_rgb_resized(path: str | Path, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode ``path`` straight to a ``size``×``size``×3 ``uint8`` array; also return the original (H, W).

    JPEGs are decoded in draft mode (DCT-domain reduction by 1/2, 1/4 or 1/8) to no less than twice the
    target size, then reduced with Pillow's antialiased bilinear (triangle) filter, whose support grows
    with the reduction factor: it matches ``skimage.transform.resize(anti_aliasing=True)`` to ≥ 45 dB PSNR
    (Lanczos, sharper, falls to ~35 dB on hairs and specks). The original size is the upright size, after
    EXIF rotation.
    """
    path = Path(path)
    img = _open(path)
    full_w, full_h = img.size
    if img.format == "JPEG":
        img.draft("RGB", (2 * size, 2 * size))
    img = _load(img, path)
    orientation = img.getexif().get(0x0112, 1)
    img = ImageOps.exif_transpose(img)
    if orientation in (5, 6, 7, 8):
        full_w, full_h = full_h, full_w
    img = _to_rgb(img, path)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img), (full_h, full_w)


def image_size(path: str | Path) -> tuple[int, int]:
    """The upright (H, W) of an image from its header, without decoding the pixels."""
    path = Path(path)
    with _open(path) as img:
        w, h = img.size
        if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            w, h = h, w
    return h, w


#: What Pillow's modes mean, for messages about masks in another format.
_MODE_NAMES = {"I;16": "a 16-bit image", "I;16B": "a 16-bit image", "I": "a 32-bit integer image",
               "F": "a floating-point image", "P": "a palette (indexed-colour) image", "RGB": "an RGB colour image",
               "RGBA": "an RGB image with transparency", "LA": "a greyscale image with transparency",
               "CMYK": "a CMYK image"}


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
            raise InputError(f"mask is {w}×{h} but its image is {expected_size[1]}×{expected_size[0]} "
                             "(width×height)", path)
        img = _load(img, path)
    except InputError:
        img.close()
        raise
    if img.mode == "1":
        img = img.convert("L")
    values = [v for v, count in enumerate(img.histogram()) if count]
    if not set(values) <= {0, 255}:
        raise InputError(f"mask is not binary: values other than 0 and 255 found "
                         f"({', '.join(map(str, values[:6]))}{', …' if len(values) > 6 else ''})", path)
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


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as a lossless PNG, atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")
