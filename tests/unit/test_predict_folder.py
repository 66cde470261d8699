"""Predicting on a folder of one's own images: listing, output names, skip list, and the `predict` rules."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from snakemake_interface_storage_plugins.io import WILDCARD_REGEX

from lesionflow import isic
from lesionflow.cache import build_cache, load_cache
from lesionflow.errors import InputError
from lesionflow.imageio import atomic_dir
from lesionflow.predictor import write_masks
from lesionflow.userimages import (
    PREDICTION_COLUMNS,
    SKIPPED_COLUMNS,
    Listing,
    cache_images,
    crop_images,
    list_images,
    output_name,
    predictions_table,
)

from support.files import touch
from support.images import ROTATED_LESION_BOX, ROTATED_LESION_SIZE, write_rotated_lesion
from support.stubs import MapModel, dark_is_lesion, segmenter

KEY = "predict.clinic_a"


# ------------------------------------------------------------------------------------------- listing


def test_listing_takes_image_suffixes_in_any_case_and_ignores_everything_else(tmp_path):
    touch(
        tmp_path,
        "a.jpg",
        "b.JPG",
        "c.Jpeg",
        "d.png",
        "e.PNG",
        "f.jPg",
        "g.gif",
        "h.txt",
        "i.jpg.txt",
        "README",
        ".hidden.jpg",
        "._a.jpg",
    )
    (tmp_path / "sub.jpg").mkdir()  # a folder, even with an image's suffix
    touch(tmp_path / "sub", "deeper.jpg")  # sub-folders are not searched
    listing = list_images(tmp_path, KEY)
    assert listing.names == ("a.jpg", "b.JPG", "c.Jpeg", "d.png", "e.PNG", "f.jPg")
    assert listing.rejected == ()
    assert listing.paths == [tmp_path / n for n in listing.names]


def test_odd_names_are_kept_and_their_outputs_never_collide(tmp_path):
    names = [
        "a.jpg",
        "a.png",
        "a.JPG",
        "a.jpeg",
        "mole 1.jpg",
        " leading space.png",
        "Müttermal – rücken.JPG",
        "病变 3.jpeg",
        "no-isic-id.png",
        "ISIC_0000001.jpg",
        "a.jpg.png",
        "50% (left), 'b'.jpg",
    ]
    touch(tmp_path, *names)
    listing = list_images(tmp_path, KEY)
    assert sorted(listing.names) == sorted(names) and listing.rejected == ()
    outputs = [output_name(n) for n in listing.names]
    assert len(set(outputs)) == len(names)  # a.jpg / a.png / a.JPG / a.jpeg all differ
    assert output_name("a.jpg") == "a.jpg.png" and output_name("a.png") == "a.png.png"
    # the input's name is the output's name minus '.png'
    assert all(out.removesuffix(".png") == n for out, n in zip(outputs, listing.names))


def test_names_snakemake_would_read_as_wildcards_are_predicted_but_not_watched(tmp_path):
    names = ["lesion{1}.jpg", "x{a,b}.png", "x{ y }.png", "plain.jpg", "braces{}.jpg", "a{-}.jpg", "{.png"]
    touch(tmp_path, *names)
    listing = list_images(tmp_path, KEY)
    assert sorted(listing.names) == sorted(names)
    watched = listing.watchable_paths()
    for path in map(str, listing.paths):
        # exactly the paths Snakemake itself would parse as holding a wildcard are left out
        assert (path in watched) == (WILDCARD_REGEX.search(path) is None), path
    assert str(tmp_path / "lesion{1}.jpg") not in watched and str(tmp_path / "plain.jpg") in watched


def test_names_that_cannot_be_used_are_rejected_with_a_reason(tmp_path):
    not_utf8 = os.fsdecode(b"caf\xe9.jpg")  # Latin-1 bytes
    long_name = "x" * 251 + ".jpg"  # 255 bytes: '.png' would make it too long
    touch(tmp_path, "good.jpg", not_utf8, "line\nbreak.jpg", long_name)
    (tmp_path / "gone.jpg").symlink_to(tmp_path / "does-not-exist.jpg")
    (tmp_path / "linked.png").symlink_to(tmp_path / "good.jpg")  # a working link is an image like any other
    listing = list_images(tmp_path, KEY)
    assert listing.names == ("good.jpg", "linked.png")
    rejected = dict(listing.rejected)
    assert set(rejected) == {"caf\\xe9.jpg", "line\\x0abreak.jpg", long_name, "gone.jpg"}
    assert "not valid UTF-8" in rejected["caf\\xe9.jpg"]
    assert "control character" in rejected["line\\x0abreak.jpg"]
    assert "too long" in rejected[long_name]
    assert "broken link" in rejected["gone.jpg"]


def test_a_missing_or_empty_folder_is_an_error_naming_the_key_and_the_path(tmp_path):
    missing = tmp_path / "no such folder"
    with pytest.raises(InputError, match=f"predict.clinic_a: image folder {missing} does not exist"):
        list_images(missing, KEY)
    touch(tmp_path / "empty", "notes.txt", ".hidden.jpg")
    with pytest.raises(
        InputError,
        match=f"predict.clinic_a: image folder {tmp_path / 'empty'} holds no "
        r"\.jpg/\.jpeg/\.png files",
    ):
        list_images(tmp_path / "empty", KEY)
    touch(tmp_path, "a-file.jpg")
    with pytest.raises(InputError, match="is not a folder"):
        list_images(tmp_path / "a-file.jpg", KEY)


# ------------------------------------------------------------------------------------------- reading


@pytest.fixture
def user_folder(make_jpeg, tmp_path) -> Path:
    """Two good JPEGs, a greyscale PNG, an RGBA PNG, a truncated JPEG, a text file named .jpg, a .txt."""
    folder = tmp_path / "user images"
    folder.mkdir()
    shutil.move(make_jpeg("mole 1.jpg", 300, 400, seed=1), folder / "mole 1.jpg")
    shutil.move(make_jpeg("b.JPG", 250, 180, seed=2), folder / "Büro 2.JPG")
    Image.open(folder / "mole 1.jpg").convert("L").save(folder / "mole 1.png")
    rgba = Image.open(folder / "Büro 2.JPG").convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.Png")
    data = (folder / "mole 1.jpg").read_bytes()
    (folder / "cut off.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.jpg").write_text("this is not an image\n")
    (folder / "readme.txt").write_text("ignored\n")
    return folder


def test_unreadable_files_are_skipped_and_listed_and_the_rest_cached(user_folder, tmp_path):
    (user_folder / "gone.jpg").symlink_to(user_folder / "nothing-here.jpg")
    listing = list_images(user_folder, KEY)
    out = tmp_path / "cache"
    index, skipped = cache_images(listing, 32, out / "images.npy", out / "index.csv", KEY, threads=2, progress=False)
    assert index["image"].tolist() == ["Büro 2.JPG", "alpha.Png", "mole 1.jpg", "mole 1.png"]
    assert [tuple(r) for r in index[["height", "width"]].to_numpy()] == [(250, 180), (250, 180), (300, 400), (300, 400)]
    assert list(skipped.columns) == SKIPPED_COLUMNS
    assert skipped["file"].tolist() == ["cut off.jpg", "gone.jpg", "notes.jpg"]
    reasons = dict(zip(skipped["file"], skipped["reason"]))
    assert "truncated" in reasons["cut off.jpg"]
    assert "broken link" in reasons["gone.jpg"]
    assert "not a readable image" in reasons["notes.jpg"]
    assert not any(r.startswith(str(user_folder)) for r in reasons.values())  # the file is in its own column
    cache = load_cache(out / "images.npy", out / "index.csv")
    assert cache.images.shape == (4, 32, 32, 3) and cache.ids == index["image"].tolist()
    assert sorted(p.name for p in out.iterdir()) == ["images.npy", "index.csv"]  # no scratch file left


def test_the_cache_equals_the_task3_cache_of_the_same_files(user_folder, tmp_path):
    listing = Listing(user_folder, ("Büro 2.JPG", "alpha.Png", "mole 1.png"))
    cache_images(listing, 48, tmp_path / "a.npy", tmp_path / "a.csv", progress=False)
    build_cache(list(listing.names), listing.paths, 48, tmp_path / "b.npy", tmp_path / "b.csv", progress=False)
    assert np.array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))
    ours = pd.read_csv(tmp_path / "a.csv")
    assert ours.drop(columns="orientation").equals(pd.read_csv(tmp_path / "b.csv"))
    assert ours["orientation"].tolist() == [1, 1, 1]  # none of them has an EXIF orientation tag


def test_no_usable_file_is_an_error_naming_the_key_and_leaves_nothing(tmp_path):
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "notes.jpg").write_text("text")
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "cache"
    out.mkdir()
    with pytest.raises(
        InputError,
        match=r"predict\.clinic_a: none of the 2 image files in .*bad can be used "
        r"\(first: 'empty.png': ",
    ):
        cache_images(list_images(folder, KEY), 32, out / "images.npy", out / "index.csv", KEY, progress=False)
    assert list(out.iterdir()) == []


# ------------------------------------------------------------------------------- masks, crops, table


def test_masks_and_crops_are_named_after_their_inputs_at_the_original_size(user_folder, tmp_path):
    names = ["Büro 2.JPG", "mole 1.jpg"]
    index = pd.DataFrame({"image": names, "height": [250, 300], "width": [180, 400]})
    yy, xx = np.mgrid[0:32, 0:32]
    disk = (yy - 16) ** 2 + (xx - 12) ** 2 < 64
    images = np.full((2, 32, 32, 3), 200, np.uint8)
    images[0][disk] = 40  # a dark lesion; the second image has none
    masks = tmp_path / "out" / "masks"
    masks.parent.mkdir()
    assert (
        write_masks(
            segmenter([MapModel(dark_is_lesion)], 32), images, index, masks, names=[output_name(n) for n in names]
        )
        == 2
    )
    written = [masks / "Büro 2.JPG.png", masks / "mole 1.jpg.png"]
    assert sorted(masks.iterdir()) == written
    assert [p.name for p in masks.parent.iterdir()] == ["masks"]  # no temporary folder left behind
    for path, (h, w) in zip(written, [(250, 180), (300, 400)]):
        mask = Image.open(path)
        assert mask.mode == "L" and mask.size == (w, h)
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
    assert np.asarray(Image.open(written[0])).any() and not np.asarray(Image.open(written[1])).any()

    crops = tmp_path / "out" / "masked"
    empty = crop_images(
        user_folder,
        names,
        masks,
        crops,
        24,
        tmp_path / "m.npy",
        tmp_path / "m.csv",
        margin=0.0,
        background="zero",
        threads=2,
        progress=False,
    )
    assert empty == ["mole 1.jpg"]  # whole image used
    assert sorted(p.name for p in crops.iterdir()) == ["Büro 2.JPG.png", "mole 1.jpg.png"]
    lesion = np.asarray(Image.open(crops / "Büro 2.JPG.png"))
    assert lesion.shape[0] < 250 and lesion.shape[1] < 180 and lesion.shape[2] == 3
    assert np.asarray(Image.open(crops / "mole 1.jpg.png")).shape == (300, 400, 3)
    assert np.load(tmp_path / "m.npy").shape == (2, 24, 24, 3)
    assert pd.read_csv(tmp_path / "m.csv")["image"].tolist() == names


def test_a_turned_photo_is_used_as_stored_and_its_outputs_keep_its_orientation_tag(make_jpeg, tmp_path):
    """Orientation 6: mask and crop on the stored grid, each PNG tagged 6 so a viewer turns it like the photo."""
    folder = tmp_path / "phone"
    folder.mkdir()
    truth = write_rotated_lesion(folder / "turned.jpg", orientation=6) > 0
    shutil.move(make_jpeg("plain.jpg", 90, 70, seed=3), folder / "plain.jpg")
    index, _ = cache_images(list_images(folder, KEY), 32, tmp_path / "i.npy", tmp_path / "i.csv", progress=False)
    assert index["image"].tolist() == ["plain.jpg", "turned.jpg"]
    assert [tuple(r) for r in index[["height", "width", "orientation"]].to_numpy()] == [
        (90, 70, 1),
        (*ROTATED_LESION_SIZE, 6),
    ]
    cache = load_cache(tmp_path / "i.npy", tmp_path / "i.csv")

    def finds_the_dark_lesion(batch):  # both images come in one batch; the first, the plain photo, has none
        prob = dark_is_lesion(batch)
        prob[0] = 0.01
        return prob

    masks = tmp_path / "out" / "masks"
    masks.parent.mkdir()
    write_masks(
        segmenter([MapModel(finds_the_dark_lesion)], 32),
        cache.images,
        cache.index,
        masks,
        names=[output_name(n) for n in cache.ids],
    )
    with Image.open(masks / "turned.jpg.png") as mask:
        assert mask.size == ROTATED_LESION_SIZE[::-1] and mask.getexif().get(0x0112) == 6
        lesion = np.asarray(mask) > 128
    assert (lesion & truth).sum() / (lesion | truth).sum() > 0.8  # lines up with the stored pixels
    with Image.open(masks / "plain.jpg.png") as mask:
        assert mask.size == (70, 90) and mask.getexif().get(0x0112) is None

    crops = tmp_path / "out" / "masked"
    empty = crop_images(
        folder,
        ["plain.jpg", "turned.jpg"],
        masks,
        crops,
        24,
        tmp_path / "m.npy",
        tmp_path / "m.csv",
        margin=0.0,
        background="zero",
        progress=False,
    )
    assert empty == ["plain.jpg"]
    with Image.open(crops / "turned.jpg.png") as crop:
        assert crop.getexif().get(0x0112) == 6
        pixels = np.asarray(crop)
    rows, cols = ROTATED_LESION_BOX
    assert abs(pixels.shape[0] - (rows.stop - rows.start)) <= 3 and abs(pixels.shape[1] - (cols.stop - cols.start)) <= 3
    assert pixels.mean() < 100  # the dark lesion, cut from the stored grid
    with Image.open(crops / "plain.jpg.png") as crop:
        assert crop.size == (70, 90) and crop.getexif().get(0x0112) is None


def test_predictions_table_has_the_class_columns_and_the_most_probable_class():
    prob = np.array([[0.1, 0.5, 0.1, 0.1, 0.1, 0.05, 0.05], [0.05, 0.05, 0.1, 0.1, 0.1, 0.1, 0.5]])
    table = predictions_table(["x y.jpg", "z.PNG"], prob)
    assert list(table.columns) == PREDICTION_COLUMNS == ["file", *isic.CLASSES, "predicted_class"]
    assert table["predicted_class"].tolist() == ["NV", "VASC"]
    with pytest.raises(ValueError, match="2×7"):
        predictions_table(["a.jpg", "b.jpg"], prob[:, :6])


def test_atomic_dir_leaves_no_folder_when_the_block_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "out") as tmp:
            (tmp / "half.png").write_bytes(b"x")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
