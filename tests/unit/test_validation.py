"""Input checks (lesionflow.validation), the plan-time layout checks, and the safety of what the package loads."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from lesionflow.cache import load_cache
from lesionflow.config import load_schema
from lesionflow.errors import InputError
from lesionflow.isic import CLASSES, FOLDERS
from lesionflow.layout import DataLayout
from lesionflow.validation import check_ground_truth, check_images, check_training_labels, checked_files, ids_of

from support import ROOT
from support.datasets import IDS, write_groupings, write_labels, write_set
from support.images import textured_rgb, write_rotated_lesion

# ------------------------------------------------------------------ one image set


def test_good_set_is_summarised(tmp_path):
    images, masks = write_set(tmp_path / "img", masks=tmp_path / "msk")
    summary = check_images(images, masks, threads=2)
    assert summary["images"] == summary["masks"] == 7
    assert summary["smallest_image_hw"] == summary["largest_image_hw"] == [60, 80]
    assert summary["warnings"] == [] and len(summary["checked"]) == 3
    truth = check_ground_truth(images, masks, write_labels(tmp_path / "gt.csv"), threads=2)
    assert truth["masks"] == 7 and truth["classes"] == {c: 1 for c in CLASSES}
    assert "every image decodes (JPEG at 1/8 scale)" not in truth["checked"]  # sizes come from the headers


def test_the_check_records_the_files_that_the_jobs_after_it_read(tmp_path):
    """The caches, masking and the gallery read the ids and paths from the check's JSON, not their inputs."""
    images, masks = write_set(tmp_path / "img", masks=tmp_path / "msk")
    summary = check_images(images, masks)
    check_json = tmp_path / "seg_train.json"
    check_json.write_text(json.dumps(summary))
    assert checked_files(check_json) == (IDS, images, masks)
    without_masks = tmp_path / "train.json"
    without_masks.write_text(json.dumps(check_images(images)))
    assert checked_files(without_masks) == (IDS, images, None)
    Image.fromarray(textured_rgb(60, 80, seed=99)).save(images[3], quality=90)  # a changed image
    assert check_images(images, masks)["fingerprint"] != summary["fingerprint"]


def test_every_bad_image_is_found_and_the_first_is_named(tmp_path, caplog):
    images, _ = write_set(tmp_path / "img")
    raw = images[2].read_bytes()
    images[2].write_bytes(raw[: len(raw) // 2])
    images[5].write_text("not an image")
    with caplog.at_level(logging.ERROR), pytest.raises(InputError) as exc:
        check_images(images, threads=3)
    message = str(exc.value)
    assert message.startswith(f"{images[2]}: image data is corrupt or truncated")
    assert "(and 1 more bad files; all are listed in the job's log)" in message
    assert f"{images[5]}: not a readable image" in caplog.text


def test_masks_are_checked_against_the_stored_grid_of_their_image(tmp_path):
    """An EXIF-rotated image's mask has the stored size, as the official masks are drawn on the stored grid."""
    folder, masks = tmp_path / "img", tmp_path / "msk"
    folder.mkdir()
    masks.mkdir()
    image = folder / f"{IDS[0]}.jpg"
    mask = masks / f"{IDS[0]}_segmentation.png"
    Image.fromarray(write_rotated_lesion(image, orientation=6)).save(mask)  # stored 120×200 (H×W), shown 200×120
    assert check_images([image], [mask])["largest_image_hw"] == [120, 200]
    assert check_ground_truth([image], [mask])["largest_image_hw"] == [120, 200]
    Image.fromarray(np.zeros((200, 120), np.uint8)).save(mask)  # drawn on the turned (displayed) grid
    with pytest.raises(InputError, match=re.escape(f"{mask}: mask is 120×200 but its image is 200×120 (width×height)")):
        check_images([image], [mask])
    with pytest.raises(InputError, match="mask is 120×200 but its image is 200×120"):
        check_ground_truth([image], [mask])


def test_an_image_without_its_mask_in_the_list_is_named(tmp_path):
    images, masks = write_set(tmp_path / "img", masks=tmp_path / "msk")
    with pytest.raises(InputError, match=f"{images[3]}: image {IDS[3]} has no mask {IDS[3]}_segmentation.png"):
        check_images(images, masks[:3] + masks[4:])


def test_labels_of_a_set_must_match_its_images(tmp_path):
    images, _ = write_set(tmp_path / "img")
    labels = write_labels(tmp_path / "gt.csv", IDS[:-1])
    with pytest.raises(InputError, match=f"gt.csv: image {IDS[-1]} has no label"):
        check_ground_truth(images, labels_csv=labels)


def test_files_that_are_not_isic_images_are_ignored_with_a_warning(tmp_path):
    images, masks = write_set(tmp_path / "img", masks=tmp_path / "msk")
    (tmp_path / "img" / "ISIC_123.jpg").write_bytes(images[0].read_bytes())  # 3 digits: not an id
    (tmp_path / "img" / "LICENSE.txt").write_text("CC-BY-NC")  # shipped with the ISIC archives: no warning
    Image.fromarray(np.zeros((60, 80), np.uint8)).save(tmp_path / "msk" / "ISIC_0009999_segmentation.png")
    warnings = check_images(images, masks)["warnings"]
    assert len(warnings) == 2
    assert "ignored 1 mask file(s) with no image: ISIC_0009999_segmentation.png" in warnings[0]
    assert "ignored 1 image file(s) whose name is not ISIC_<7 digits>.jpg: ISIC_123.jpg" in warnings[1]


@pytest.mark.parametrize("name", ["ISIC_12.jpg", "ISIC_0000001.png", "..%2FISIC_0000001.jpg"])
def test_only_isic_image_names_are_accepted(tmp_path, name):
    with pytest.raises(InputError, match="not an ISIC image id|not an .jpg image"):
        ids_of([tmp_path / name])


# ------------------------------------------------------------------ training labels and groupings


def test_training_labels_and_groupings_agree(tmp_path):
    labels = write_labels(tmp_path / "gt.csv")
    groupings = write_groupings(tmp_path / "groups.csv", [(i, f"HAM_{k // 2:07d}") for k, i in enumerate(IDS)])
    summary = check_training_labels(labels, groupings, IDS)
    assert summary["images"] == 7 and summary["lesions"] == 4 and summary["warnings"] == []


def test_an_image_missing_from_the_groupings_is_its_own_lesion_with_a_warning(tmp_path):
    labels = write_labels(tmp_path / "gt.csv")
    groupings = write_groupings(tmp_path / "groups.csv", [(i, "HAM_0000001") for i in IDS[:5]])
    summary = check_training_labels(labels, groupings, IDS)
    assert summary["lesions"] == 3
    assert summary["warnings"] == [
        f"{groupings}: 2 image(s) have no lesion_id and count as their own lesion ({IDS[5]}, {IDS[6]})"
    ]


@pytest.mark.parametrize(
    "rows,message",
    [
        (
            [(IDS[0], "HAM_1"), ("ISIC_0999999", "HAM_2")],
            r"groups.csv, row 3: lesion_id for image ISIC_0999999 which does not exist "
            r"\(not among the 7 training images",
        ),
        ([(IDS[0], "HAM_1"), (IDS[0], "HAM_2")], r"groups.csv, row 3: image ISIC_0000001 is listed more than once"),
        ([(IDS[0], "HAM_1"), (IDS[1], "")], r"groups.csv, row 3: image ISIC_0000002 has an empty lesion_id"),
        ([("../" + IDS[0], "HAM_1")], r"groups.csv, row 2: '../ISIC_0000001' is not an ISIC image id"),
    ],
)
def test_bad_groupings_name_the_row(tmp_path, rows, message):
    labels = write_labels(tmp_path / "gt.csv")
    with pytest.raises(InputError, match=message):
        check_training_labels(labels, write_groupings(tmp_path / "groups.csv", rows), IDS)


def test_a_label_for_a_missing_image_names_its_row(tmp_path):
    labels = write_labels(tmp_path / "gt.csv")
    groupings = write_groupings(tmp_path / "groups.csv", [(i, "HAM_1") for i in IDS[:6]])
    with pytest.raises(
        InputError,
        match=r"gt.csv, row 8: label for image ISIC_0000007 which does not exist "
        r"\(not among the 6 images; 1 such row\)",
    ):
        check_training_labels(labels, groupings, IDS[:6])


# ------------------------------------------------------------------ the layout, as planning sees it


def test_layout_names_the_first_missing_mask_and_counts_them(tmp_path):
    images, masks = write_set(tmp_path / FOLDERS["seg_train_images"], masks=tmp_path / FOLDERS["seg_train_masks"])
    masks[1].unlink()
    masks[4].unlink()
    layout = DataLayout(tmp_path)
    with pytest.raises(
        InputError,
        match=re.escape(f"{masks[1]}: mask of image {IDS[1]} does not exist (images without a mask: 2 of 7)"),
    ):
        layout.mask_paths("seg_train")
    for mask in masks[2:4] + masks[5:]:
        mask.unlink()
    masks[0].unlink()
    (tmp_path / FOLDERS["seg_train_masks"]).rmdir()
    with pytest.raises(InputError, match="mask folder does not exist"):
        layout.mask_paths("seg_train")


def test_layout_names_data_dir_and_folders(tmp_path):
    with pytest.raises(InputError, match="data_dir does not exist \\(config key data_dir\\)"):
        DataLayout(tmp_path / "nowhere").image_ids("test")
    with pytest.raises(InputError, match=f"{FOLDERS['test_images']}: image folder does not exist"):
        DataLayout(tmp_path).image_ids("test")
    (tmp_path / FOLDERS["test_images"]).mkdir()
    (tmp_path / FOLDERS["test_images"] / "LICENSE.txt").write_text("CC-BY-NC")
    with pytest.raises(InputError, match="image folder holds no ISIC_<id>.jpg images"):
        DataLayout(tmp_path).image_ids("test")


# ------------------------------------------------------------------ safety of what is loaded


class _Payload:
    """Would create a file if it were ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_cache_arrays_are_loaded_without_pickle(tmp_path):
    marker = tmp_path / "unpickled"
    images = tmp_path / "images.npy"
    np.save(images, np.array([_Payload(marker)], dtype=object), allow_pickle=True)
    pd.DataFrame({"image": [IDS[0]], "height": [1], "width": [1]}).to_csv(tmp_path / "index.csv", index=False)
    with pytest.raises(ValueError, match="allow_pickle=False|Python objects"):
        load_cache(images, tmp_path / "index.csv")
    assert not marker.exists()


def test_yaml_is_read_safely(tmp_path):
    marker = tmp_path / "constructed"
    path = tmp_path / "schema.yaml"
    path.write_text(f"a: !!python/object/apply:pathlib.Path.touch [!!python/object/apply:pathlib.Path ['{marker}']]\n")
    with pytest.raises(yaml.YAMLError):
        load_schema(path)
    assert not marker.exists()


def test_models_are_loaded_in_safe_mode(tmp_path):
    """A saved model with a Lambda layer (arbitrary code) is refused, not run."""
    import keras

    from lesionflow.models import load_model

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    path = tmp_path / "model.keras"
    model.save(path)
    with pytest.raises(InputError, match=f"{path}: cannot load model.*(Lambda|unsafe|safe_mode)"):
        load_model(path)


_UNSAFE = re.compile(
    r"yaml\.(load|unsafe_load|full_load)\(|allow_pickle\s*=\s*True|import pickle|"
    r"safe_mode\s*=\s*False|pd\.read_pickle|\beval\(|\bexec\("
)


def test_no_unsafe_loading_in_the_workflow_or_the_package():
    sources = [
        *(ROOT / "src").rglob("*.py"),
        *(ROOT / "workflow").rglob("*.py"),
        *(ROOT / "workflow").rglob("*.smk"),
        ROOT / "Snakefile",
    ]
    found = [
        f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
        for p in sources
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if _UNSAFE.search(line)
    ]
    assert found == []
