"""Small real images for the tests: a photo-like texture and a lesion on a grid turned by its EXIF tag."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def textured_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like RGB image (low-frequency colour fields plus a little fine texture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    channels = []
    for _channel in range(3):
        f = rng.uniform(1, 4, size=4)
        ph = rng.uniform(0, 6.28, size=4)
        v = (
            np.sin(f[0] * 6.28 * xx + ph[0])
            + np.sin(f[1] * 6.28 * yy + ph[1])
            + 0.5 * np.sin(f[2] * 6.28 * (xx + yy) + ph[2])
        )
        channels.append(v)
    img = np.stack(channels, -1)
    img = (img - img.min()) / (img.max() - img.min()) * 200 + 25
    img += rng.normal(0, 2, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


#: Stored size (H, W) and lesion box (rows, columns) of :func:`write_rotated_lesion`: off-centre, so that a
#: quarter turn or a flip of the image or its mask moves the lesion somewhere else.
ROTATED_LESION_SIZE = (120, 200)
ROTATED_LESION_BOX = (slice(15, 55), slice(120, 180))


def write_rotated_lesion(path: Path, orientation: int = 6) -> np.ndarray:
    """A JPEG with a dark lesion at :data:`ROTATED_LESION_BOX` of its stored grid and an EXIF orientation tag.

    Returns its mask as the ISIC masks are drawn: a 0/255 ``uint8`` array on the stored pixel grid.
    """
    rng = np.random.default_rng(0)
    pixels = np.empty((*ROTATED_LESION_SIZE, 3), np.float64)
    pixels[:] = (205, 175, 160)  # skin
    pixels[ROTATED_LESION_BOX] = (70, 45, 35)  # lesion
    pixels = np.clip(pixels + rng.normal(0, 3, pixels.shape), 0, 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, format="JPEG", quality=95, exif=exif.tobytes())
    mask = np.zeros(ROTATED_LESION_SIZE, np.uint8)
    mask[ROTATED_LESION_BOX] = 255
    return mask
