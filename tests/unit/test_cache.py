"""Resize-to-cache: shapes, index, masks, determinism, the stored pixel grid, and nothing left behind on bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lesionflow.cache import NothingReadable, build_cache, load_cache
from lesionflow.errors import InputError
from lesionflow.validation import check_images

from support.images import ROTATED_LESION_SIZE, write_rotated_lesion


@pytest.fixture
def image_set(make_jpeg, tmp_path):
    sizes = [(450, 600), (600, 450), (300, 500), (700, 700)]
    ids = [f"ISIC_{i:07d}" for i in range(len(sizes))]
    images, masks = [], []
    for i, (image_id, (h, w)) in enumerate(zip(ids, sizes)):
        images.append(make_jpeg(f"{image_id}.jpg", h, w, seed=i))
        m = np.zeros((h, w), np.uint8)
        m[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        path = tmp_path / f"{image_id}_segmentation.png"
        Image.fromarray(m).save(path)
        masks.append(path)
    return ids, images, masks, sizes


def test_cache_shapes_index_and_masks(image_set, tmp_path):
    ids, images, masks, sizes = image_set
    out = tmp_path / "cache"
    table = build_cache(
        ids, images, 64, out / "images.npy", out / "index.csv", masks, out / "masks.npy", threads=2, progress=False
    ).index
    cache = load_cache(out / "images.npy", out / "index.csv", out / "masks.npy")
    assert cache.images.shape == (4, 64, 64, 3) and cache.images.dtype == np.uint8
    assert cache.masks.shape == (4, 64, 64) and set(np.unique(cache.masks)) == {0, 1}
    assert cache.ids == ids
    assert [tuple(r) for r in table[["height", "width"]].to_numpy()] == sizes
    assert pd.read_csv(out / "index.csv")["height"].tolist() == [h for h, _ in sizes]
    # the centred half-size box covers a quarter of the image
    assert abs(cache.masks.mean() - 0.25) < 0.03


def test_cache_is_identical_with_one_or_many_threads(image_set, tmp_path):
    ids, images, _, _ = image_set
    for threads in (1, 2):
        build_cache(
            ids, images, 32, tmp_path / f"{threads}.npy", tmp_path / f"{threads}.csv", threads=threads, progress=False
        )
    assert (tmp_path / "1.npy").read_bytes() == (tmp_path / "2.npy").read_bytes()


def test_chunked_writing_gives_the_same_cache(image_set, tmp_path, monkeypatch):
    ids, images, masks, _ = image_set
    build_cache(
        ids,
        images,
        32,
        tmp_path / "one.npy",
        tmp_path / "one.csv",
        masks,
        tmp_path / "one_m.npy",
        threads=2,
        progress=False,
    )
    monkeypatch.setattr("lesionflow.cache.CHUNK", 3)  # 4 images: a full chunk and a partial one
    build_cache(
        ids,
        images,
        32,
        tmp_path / "chunks.npy",
        tmp_path / "chunks.csv",
        masks,
        tmp_path / "chunks_m.npy",
        threads=2,
        progress=False,
    )
    assert (tmp_path / "one.npy").read_bytes() == (tmp_path / "chunks.npy").read_bytes()
    assert (tmp_path / "one_m.npy").read_bytes() == (tmp_path / "chunks_m.npy").read_bytes()
    assert (tmp_path / "one.csv").read_text() == (tmp_path / "chunks.csv").read_text()


def test_corrupt_image_leaves_no_cache(image_set, tmp_path):
    ids, images, masks, _ = image_set
    images[2].write_bytes(b"garbage")
    out = tmp_path / "cache"
    with pytest.raises(InputError, match=f"{ids[2]}.jpg"):
        build_cache(ids, images, 32, out / "images.npy", out / "index.csv", masks, out / "masks.npy", progress=False)
    assert list(out.iterdir()) == []


def test_missing_mask_leaves_no_cache(image_set, tmp_path):
    ids, images, masks, _ = image_set
    masks[1].unlink()
    out = tmp_path / "cache"
    with pytest.raises(InputError, match=f"{ids[1]}_segmentation.png: file does not exist"):
        build_cache(ids, images, 32, out / "images.npy", out / "index.csv", masks, out / "masks.npy", progress=False)
    assert list(out.iterdir()) == []


def test_size_mismatched_mask_is_refused(image_set, tmp_path):
    ids, images, masks, _ = image_set
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(masks[0])
    with pytest.raises(InputError, match="mask is 10×10 but its image is 600×450"):
        build_cache(ids, images, 32, tmp_path / "i.npy", tmp_path / "i.csv", masks, tmp_path / "m.npy", progress=False)


def test_skipping_leaves_out_unreadable_images_and_keeps_the_rest_as_they_would_be(image_set, tmp_path, monkeypatch):
    ids, images, _, _ = image_set
    out = tmp_path / "out"
    build_cache(ids[1:3], images[1:3], 32, out / "kept.npy", out / "kept.csv", progress=False)
    images[0].write_bytes(b"garbage")
    images[3].write_bytes(images[3].read_bytes()[:200])  # truncated
    monkeypatch.setattr("lesionflow.cache.CHUNK", 3)  # rows copied across a chunk boundary
    cached = build_cache(ids, images, 32, out / "i.npy", out / "i.csv", threads=2, progress=False, unreadable="skip")
    assert [name for name, _ in cached.skipped] == [ids[0], ids[3]]
    assert all(reason.startswith("not a readable image") for _, reason in cached.skipped), cached.skipped
    assert cached.index["image"].tolist() == ids[1:3]
    assert (out / "i.npy").read_bytes() == (out / "kept.npy").read_bytes()
    assert sorted(p.name for p in out.iterdir()) == ["i.csv", "i.npy", "kept.csv", "kept.npy"]  # no scratch file


def test_skipping_every_image_is_an_error_listing_why_and_leaves_nothing(image_set, tmp_path):
    ids, images, masks, _ = image_set
    for path in images:
        path.write_bytes(b"garbage")
    out = tmp_path / "cache"
    with pytest.raises(NothingReadable, match=f"none of the 4 images can be read \\(first: '{ids[0]}'") as caught:
        build_cache(ids, images, 32, out / "i.npy", out / "i.csv", progress=False, unreadable="skip")
    assert [name for name, _ in caught.value.skipped] == ids
    assert list(out.iterdir()) == []
    with pytest.raises(ValueError, match="'skip' caches no masks"):
        build_cache(ids, images, 32, out / "i.npy", out / "i.csv", masks, out / "m.npy", unreadable="skip")


def test_orientation_is_recorded_when_asked(tmp_path):
    image = tmp_path / "ISIC_0000001.jpg"
    write_rotated_lesion(image, orientation=6)
    cached = build_cache(["ISIC_0000001"], [image], 32, tmp_path / "i.npy", tmp_path / "i.csv", orientation=True)
    assert cached.index["orientation"].tolist() == [6]
    assert "orientation" in pd.read_csv(tmp_path / "i.csv")


def test_empty_set_is_refused(tmp_path):
    with pytest.raises(InputError, match="no images"):
        build_cache([], [], 32, tmp_path / "i.npy", tmp_path / "i.csv", progress=False)


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean arrays."""
    return float((a & b).sum() / (a | b).sum())


def test_exif_rotated_image_and_its_mask_line_up_on_the_stored_grid(tmp_path):
    """Orientation 6 (shown turned a quarter): checked, cached and predicted back on the stored grid."""
    image_id = "ISIC_0000001"
    image = tmp_path / f"{image_id}.jpg"
    mask = tmp_path / f"{image_id}_segmentation.png"
    truth = write_rotated_lesion(image, orientation=6)
    Image.fromarray(truth).save(mask)
    assert check_images([image], [mask])["largest_image_hw"] == list(ROTATED_LESION_SIZE)  # no size error

    out = tmp_path / "cache"
    table = build_cache(
        [image_id], [image], 32, out / "images.npy", out / "index.csv", [mask], out / "masks.npy", progress=False
    ).index
    assert tuple(table.loc[0, ["height", "width"]]) == ROTATED_LESION_SIZE
    cache = load_cache(out / "images.npy", out / "index.csv", out / "masks.npy")
    dark = cache.images[0].mean(axis=2) < 128  # the lesion as the cached image shows it
    lesion = cache.masks[0] == 1
    assert _overlap(dark, lesion) > 0.8
    rows, cols = np.nonzero(lesion)
    assert rows.mean() < 16 < cols.mean()  # upper right, where it is on the stored grid

    from lesionflow import isic
    from lesionflow.predictor import write_masks

    from support.stubs import MapModel, dark_is_lesion, segmenter

    write_masks(
        segmenter([MapModel(dark_is_lesion)], 32),
        cache.images,
        cache.index,
        tmp_path / "predicted",
        names=[isic.mask_name(image_id)],
    )
    with Image.open(tmp_path / "predicted" / isic.mask_name(image_id)) as predicted:
        assert predicted.size == ROTATED_LESION_SIZE[::-1]  # (W, H) of the stored grid
        assert _overlap(np.asarray(predicted) > 128, truth > 0) > 0.8


def test_released_rows_of_a_memory_mapped_cache_read_back_the_same(tmp_path):
    from lesionflow.cache import release_rows

    path = tmp_path / "images.npy"
    written = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    np.save(path, written)
    mapped = np.load(path, mmap_mode="r")
    first = np.array(mapped[5:30])
    release_rows(mapped, 5, 30)  # pages dropped from memory, not the data
    np.testing.assert_array_equal(mapped[5:30], first)
    np.testing.assert_array_equal(mapped, written)
    plain = written.copy()
    release_rows(plain, 0, 40)  # not memory-mapped: nothing to do
    np.testing.assert_array_equal(plain, written)
