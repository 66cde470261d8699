"""Image decoding, resizing quality, colour modes, the stored pixel grid (EXIF orientation ignored), mask checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.transform import resize

from lesionflow.errors import InputError
from lesionflow.imageio import (
    exif_orientation,
    image_size,
    read_mask,
    read_rgb,
    read_rgb_resized,
    resize_mask,
    write_png,
)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.mark.parametrize("h,w,size", [(450, 600, 224), (4439, 6688, 224), (1200, 900, 64), (450, 600, 96)])
def test_resize_matches_antialiased_skimage(make_jpeg, h, w, size):
    path = make_jpeg("a.jpg", h, w)
    fast, original = read_rgb_resized(path, size)
    assert fast.shape == (size, size, 3) and fast.dtype == np.uint8
    assert original == (h, w)
    reference = resize(read_rgb(path), (size, size), anti_aliasing=True, preserve_range=True)
    assert psnr(fast, np.round(reference)) >= 38.0


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "P", "LA"])
def test_odd_colour_modes_become_rgb(tmp_path, mode):
    rgb = np.full((40, 50, 3), (200, 120, 60), np.uint8)
    img = Image.fromarray(rgb).convert(mode)
    path = tmp_path / ("x.png" if mode in ("RGBA", "P", "LA") else "x.jpg")
    img.save(path)
    out = read_rgb(path)
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8
    small, size = read_rgb_resized(path, 32)
    assert small.shape == (32, 32, 3) and size == (40, 50)
    if mode == "L":
        assert (out[..., 0] == out[..., 1]).all()
    elif mode == "RGBA":
        assert np.abs(out.astype(int) - rgb).max() <= 2


def test_sixteen_bit_greyscale_png_becomes_rgb(tmp_path):
    arr = np.arange(40 * 50, dtype=np.uint16).reshape(40, 50) * 30
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)
    out = read_rgb(path)
    assert out.shape == (40, 50, 3)
    assert out[..., 0].max() == (arr.max() >> 8)


@pytest.mark.parametrize("orientation", [1, 3, 6, 8, 5])
def test_exif_orientation_is_ignored(make_jpeg, orientation):
    """Pixels and sizes are those of the stored grid whatever the tag says; the tag itself is still read."""
    path = make_jpeg("r.jpg", 300, 200, orientation=orientation)
    with Image.open(path) as img:
        stored = np.asarray(img.convert("RGB"))
    assert stored.shape[:2] == (300, 200)
    assert np.array_equal(read_rgb(path), stored)  # not turned: a half turn (3) keeps the shape, not the pixels
    assert image_size(path) == (300, 200)
    small, original = read_rgb_resized(path, 64)
    assert original == (300, 200)
    reference = resize(stored, (64, 64), anti_aliasing=True, preserve_range=True)
    assert psnr(small, np.round(reference)) >= 38.0
    assert exif_orientation(path) == orientation


def test_orientation_is_1_without_a_usable_tag(make_jpeg, tmp_path):
    assert exif_orientation(make_jpeg("plain.jpg", 40, 30)) == 1
    assert exif_orientation(make_jpeg("odd.jpg", 40, 30, orientation=9)) == 1  # not one of the 8 orientations
    Image.fromarray(np.zeros((4, 5, 3), np.uint8)).save(tmp_path / "p.png")
    assert exif_orientation(tmp_path / "p.png") == 1


@pytest.mark.parametrize("orientation", [1, 6])
def test_png_carries_the_orientation_it_is_given(tmp_path, orientation):
    arr = np.zeros((30, 40), np.uint8)
    arr[2:10, 25:38] = 255  # off-centre: a turned copy would differ
    path = tmp_path / "m.png"
    write_png(path, arr, orientation=orientation)
    with Image.open(path) as img:
        assert img.format == "PNG" and img.getexif().get(0x0112) == (None if orientation == 1 else orientation)
    assert exif_orientation(path) == orientation
    assert np.array_equal(read_mask(path, (30, 40)), arr > 0)  # read back on the stored grid, unturned


def test_truncated_jpeg_names_the_file(make_jpeg):
    path = make_jpeg("t.jpg", 400, 300)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="t.jpg.*(truncated|corrupt)"):
        read_rgb_resized(path, 64)


def test_text_file_named_jpg_names_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image")
    with pytest.raises(InputError, match="notes.jpg: not a readable image"):
        read_rgb(path)


def _save_mask(path, arr, mode="L"):
    Image.fromarray(arr).convert(mode).save(path)
    return path


def test_read_mask_accepts_binary_png(tmp_path):
    arr = np.zeros((30, 40), np.uint8)
    arr[5:20, 10:30] = 255
    mask = read_mask(_save_mask(tmp_path / "m.png", arr), (30, 40))
    assert mask.dtype == bool and mask.sum() == 15 * 20


def test_mask_of_another_size_is_refused(tmp_path):
    path = _save_mask(tmp_path / "m.png", np.zeros((30, 40), np.uint8))
    with pytest.raises(InputError, match=r"m.png: mask is 40×30 but its image is 41×30"):
        read_mask(path, (30, 41))


def test_non_binary_mask_is_refused(tmp_path):
    arr = np.zeros((30, 40), np.uint8)
    arr[0, 0] = 128
    with pytest.raises(InputError, match="not binary"):
        read_mask(_save_mask(tmp_path / "m.png", arr))


@pytest.mark.parametrize("mode", ["P", "I;16", "RGB"])
def test_mask_that_is_not_8bit_single_channel_is_refused(tmp_path, mode):
    arr = np.zeros((30, 40), np.uint8)
    arr[3:9, 3:9] = 255
    path = tmp_path / "m.png"
    img = Image.fromarray(arr)
    img = Image.fromarray(arr.astype(np.uint16) * 257) if mode == "I;16" else img.convert(mode)
    img.save(path)
    with pytest.raises(InputError, match="8-bit single-channel"):
        read_mask(path)


def test_missing_mask_names_the_file(tmp_path):
    with pytest.raises(InputError, match="nope_segmentation.png: file does not exist"):
        read_mask(tmp_path / "nope_segmentation.png")


def test_resize_mask_keeps_area():
    mask = np.zeros((400, 600), bool)
    mask[100:300, 150:450] = True
    small = resize_mask(mask, 64)
    assert small.dtype == np.uint8 and set(np.unique(small)) == {0, 1}
    assert abs(small.mean() - mask.mean()) < 0.02
