"""Shared fixtures: small real JPEG/PNG files and the project's paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

# demo_run (a finished run of .test/config.yaml) and the Snakemake helpers
pytest_plugins = ["workflow_run"]


def textured_rgb(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth, photo-like RGB image (low-frequency colour fields plus a little fine texture)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    channels = []
    for c in range(3):
        f = rng.uniform(1, 4, size=4)
        ph = rng.uniform(0, 6.28, size=4)
        v = (np.sin(f[0] * 6.28 * xx + ph[0]) + np.sin(f[1] * 6.28 * yy + ph[1])
             + 0.5 * np.sin(f[2] * 6.28 * (xx + yy) + ph[2]))
        channels.append(v)
    img = np.stack(channels, -1)
    img = (img - img.min()) / (img.max() - img.min()) * 200 + 25
    img += rng.normal(0, 2, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture
def make_jpeg(tmp_path):
    """Write a textured JPEG of a given size (and optional Pillow mode/EXIF orientation); return its path."""

    def make(name: str, h: int, w: int, mode: str = "RGB", orientation: int | None = None, seed: int = 0) -> Path:
        path = tmp_path / name
        img = Image.fromarray(textured_rgb(h, w, seed)).convert(mode)
        kwargs = {}
        if orientation is not None:
            exif = Image.Exif()
            exif[0x0112] = orientation
            kwargs["exif"] = exif.tobytes()
        img.save(path, format="JPEG", quality=95, **kwargs)
        return path

    return make
