"""Fixtures shared by all tests: small real JPEG files, small disks, and (as a plugin) the workflow runs.

Plain helpers live in the ``support`` package next to this file (see ``support/__init__.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from support.files import SmallDisk
from support.images import textured_rgb

# demo_run (a finished run of .test/config.yaml) and the Snakemake helpers
pytest_plugins = ["support.workflow"]


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


@pytest.fixture
def small_disk(tmp_path):
    """Make tmpfs disks of a given size (``small_disk(path, kilobytes)`` -> :class:`SmallDisk`); unmounted after."""
    disks = []

    def make(path: Path, kilobytes: int) -> SmallDisk:
        disks.append(SmallDisk(path, kilobytes))
        return disks[-1]

    yield make
    for disk in disks:
        disk.unmount()
