"""A catalogue of bad inputs: each one stops real Snakemake with one clear line and leaves nothing behind.

The small demo data set is drawn once; every case copies it, breaks one thing and runs Snakemake on a copy
of the checkout with ``demo.generate: false``, targeting a check (or a cache), so no network trains.
Each case asserts a non-zero exit, exactly one ``ERROR:`` line naming the file (and row) or config key and
the problem, and that the failed job left no output, not even a temporary file.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from lesionflow.demo import generate_demo
from lesionflow.isic import FOLDERS, GROUPINGS_CSV, LABEL_CSV
from lesionflow.layout import demo_spec

from support.workflow import REPO, TEST_CONFIG, copy_checkout, snakemake

pytestmark = pytest.mark.workflow

DATA = "data/bad"
SEG_IMAGES, SEG_MASKS = FOLDERS["seg_train_images"], FOLDERS["seg_train_masks"]
TRAIN_IMAGES, TEST_IMAGES = FOLDERS["train_images"], FOLDERS["test_images"]
TRAIN_CSV = f"{FOLDERS['train_labels']}/{LABEL_CSV['train']}"
GROUPINGS = f"{FOLDERS['train_labels']}/{GROUPINGS_CSV}"
TEST_CSV = f"{FOLDERS['test_labels']}/{LABEL_CSV['test']}"


@pytest.fixture(scope="module")
def good_data(tmp_path_factory) -> Path:
    """The demo data of the test config, drawn once for the module (a few seconds)."""
    config = yaml.safe_load((REPO / TEST_CONFIG).read_text())
    data = tmp_path_factory.mktemp("good") / "data"
    generate_demo(data, demo_spec(config["demo"]))
    return data


# ------------------------------------------------------------------ ways to break a data set


def first(data: Path, folder: str, pattern: str = "ISIC_*") -> Path:
    return sorted((data / folder).glob(pattern))[0]


def truncate_jpeg(data: Path) -> Path:
    path = first(data, TEST_IMAGES)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def text_as_jpeg(data: Path) -> Path:
    path = first(data, TRAIN_IMAGES)
    path.write_text("image,MEL\nthis is a CSV someone saved under an image's name\n")
    return path


def empty_jpeg(data: Path) -> Path:
    path = first(data, SEG_IMAGES)
    path.write_bytes(b"")
    return path


def _mask(data: Path) -> tuple[Path, np.ndarray]:
    path = first(data, SEG_MASKS)
    return path, np.asarray(Image.open(path))


def mask_16bit(data: Path) -> Path:
    path, arr = _mask(data)
    Image.fromarray(arr.astype(np.uint16) * 257).save(path)
    return path


def mask_palette(data: Path) -> Path:
    path, arr = _mask(data)
    Image.fromarray(arr).convert("P").save(path)
    return path


def mask_rgb(data: Path) -> Path:
    path, arr = _mask(data)
    Image.fromarray(arr).convert("RGB").save(path)
    return path


def mask_other_size(data: Path) -> Path:
    path, arr = _mask(data)
    Image.fromarray(arr).resize((arr.shape[1] // 2, arr.shape[0] // 2), Image.Resampling.NEAREST).save(path)
    return path


def mask_not_binary(data: Path) -> Path:
    path, arr = _mask(data)
    arr = arr.copy()
    arr[: arr.shape[0] // 2] //= 2  # e.g. a mask saved with anti-aliased edges or scaled to 0..127
    Image.fromarray(arr).save(path)
    return path


def held_out_mask_other_size(data: Path) -> Path:
    path = first(data, FOLDERS["test_masks"])
    arr = np.asarray(Image.open(path))
    Image.fromarray(arr[::2, ::2]).save(path)
    return path


def mask_missing(data: Path) -> Path:
    path = first(data, SEG_MASKS)
    path.unlink()
    return path


def edit_csv(relative: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    def apply(data: Path) -> Path:
        path = data / relative
        edit(pd.read_csv(path, dtype=str)).to_csv(path, index=False)
        return path

    return apply


def two_labels(table: pd.DataFrame) -> pd.DataFrame:
    table.loc[3, ["MEL", "NV"]] = "1.0"  # row 5 of the file (header + 0-based index 3)
    return table


def row_with_id(image_id: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(table: pd.DataFrame) -> pd.DataFrame:
        table.loc[2, "image"] = image_id  # row 4 of the file
        return table

    return edit


def image_without_label(data: Path) -> Path:
    return edit_csv(TRAIN_CSV, lambda t: t.drop(index=4))(data)


def label_without_image(data: Path) -> Path:
    first(data, TRAIN_IMAGES).unlink()  # the image ISIC_0024306 was lost; its label (row 2) remains
    return data / TRAIN_CSV


def empty_csv(data: Path) -> Path:
    (data / TRAIN_CSV).write_bytes(b"")
    return data / TRAIN_CSV


def empty_folder(data: Path) -> Path:
    folder = data / TEST_IMAGES
    for path in folder.iterdir():
        path.unlink()
    return folder


def missing_folder(data: Path) -> Path:
    shutil.rmtree(data / TEST_IMAGES)
    return data / TEST_IMAGES


def missing_data_dir(data: Path) -> Path:
    shutil.rmtree(data)
    return data


# ------------------------------------------------------------------ the catalogue


@dataclass(frozen=True)
class Case:
    """One bad input: how to break the data (or config), what to build, and what the one line must say."""

    name: str
    target: str
    phrases: tuple[str, ...]
    breaks: Callable[[Path], Path] | None = None  # returns the file the message must name
    config: dict = field(default_factory=dict)  # merged over the case's config
    row: int | None = None  # the row of the file the message must name


CASES = [
    # images: decoded by the set's check before anything is cached
    Case("truncated-jpeg", "results/cache/test/images.npy", ("image data is corrupt or truncated",), truncate_jpeg),
    Case("text-file-named-jpg", "results/checks/train.json", ("not a readable image",), text_as_jpeg),
    Case("empty-jpg", "results/checks/seg_train.json", ("not a readable image",), empty_jpeg),
    # masks: the ISIC format is an 8-bit single-channel 0/255 PNG of the image's size
    Case(
        "16-bit-mask",
        "results/checks/seg_train.json",
        ("mask must be an 8-bit single-channel image, got a 16-bit image (mode 'I;16')",),
        mask_16bit,
    ),
    Case(
        "palette-mask",
        "results/checks/seg_train.json",
        ("mask must be an 8-bit single-channel image, got a palette (indexed-colour) image (mode 'P')",),
        mask_palette,
    ),
    Case(
        "rgb-mask",
        "results/checks/seg_train.json",
        ("mask must be an 8-bit single-channel image, got an RGB colour image (mode 'RGB')",),
        mask_rgb,
    ),
    Case(
        "mask-of-another-size",
        "results/cache/seg_train/images.npy",
        ("mask is", "but its image is", "(width×height)"),
        mask_other_size,
    ),
    Case(
        "non-binary-mask",
        "results/checks/seg_train.json",
        ("mask is not binary: values other than 0 and 255 found",),
        mask_not_binary,
    ),
    Case(
        "missing-mask",
        "results/checks/seg_train.json",  # found while planning
        ("mask of image ISIC_", "does not exist", "(images without a mask: 1 of 24)"),
        mask_missing,
    ),
    # training labels: checked before segmentation training and the classifier's folds
    Case(
        "label-csv-missing-a-class-column",
        "results/checks/labels.json",
        ("missing column(s) VASC", "expected image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"),
        edit_csv(TRAIN_CSV, lambda t: t.drop(columns="VASC")),
    ),
    Case(
        "label-csv-extra-column",
        "results/checks/labels.json",
        ("unexpected column(s) SCC",),
        edit_csv(TRAIN_CSV, lambda t: t.assign(SCC="0.0")),
    ),
    Case(
        "row-with-two-labels",
        "results/checks/labels.json",
        ("row 5 (ISIC_", "is not one-hot: MEL=1, NV=1"),
        edit_csv(TRAIN_CSV, two_labels),
    ),
    Case(
        "label-for-missing-image",
        "results/checks/labels.json",
        ("label for image ISIC_0024306 which does not exist", "(not among the 36 images; 1 such row)"),
        label_without_image,
        row=2,
    ),
    Case(
        "image-without-label",
        "results/checks/labels.json",
        ("image ISIC_0024310 has no label (1 such image)",),
        image_without_label,
    ),
    Case(
        "image-listed-twice",
        "results/checks/labels.json",
        ("is listed more than once (rows 3 and 4)",),
        edit_csv(TRAIN_CSV, row_with_id("ISIC_0024307")),
        row=4,
    ),
    Case(
        "path-in-label-csv",
        "results/checks/labels.json",
        ("'../../etc/passwd' is not an ISIC image id (ISIC_ followed by 7 digits)",),
        edit_csv(TRAIN_CSV, row_with_id("../../etc/passwd")),
        row=4,
    ),
    Case("empty-label-csv", "results/checks/labels.json", ("not a readable CSV", "EmptyDataError"), empty_csv),
    Case(
        "groupings-without-lesion-id",
        "results/checks/labels.json",
        ("missing column 'lesion_id'",),
        edit_csv(GROUPINGS, lambda t: t.drop(columns="lesion_id")),
    ),
    Case(
        "groupings-row-for-missing-image",
        "results/checks/labels.json",
        ("lesion_id for image ISIC_0099999 which does not exist",),
        edit_csv(GROUPINGS, row_with_id("ISIC_0099999")),
        row=4,
    ),
    Case(
        "path-in-groupings",
        "results/checks/labels.json",
        ("'/etc/passwd' is not an ISIC image id",),
        edit_csv(GROUPINGS, row_with_id("/etc/passwd")),
        row=4,
    ),
    Case(
        "empty-lesion-id",
        "results/checks/labels.json",
        ("has an empty lesion_id",),
        edit_csv(GROUPINGS, lambda t: t.assign(lesion_id=t["lesion_id"].where(t.index != 2, ""))),
        row=4,
    ),
    # the ground truth of the test set: checked on its own, as only scoring reads it
    Case(
        "test-label-csv-two-labels",
        "results/checks/test_ground_truth.json",
        ("row 5 (ISIC_", "is not one-hot"),
        edit_csv(TEST_CSV, two_labels),
    ),
    Case(
        "test-mask-of-another-size",
        "results/checks/test_ground_truth.json",
        ("mask is 300×225 but its image is 600×450 (width×height)",),
        held_out_mask_other_size,
    ),
    # the layout: found while planning, before any job
    Case(
        "empty-image-folder", "results/checks/test.json", ("image folder holds no ISIC_<id>.jpg images",), empty_folder
    ),
    Case(
        "missing-image-folder",
        "results/checks/test.json",
        ("image folder does not exist", "config key data_dir"),
        missing_folder,
    ),
    Case(
        "data-dir-does-not-exist",
        "results/checks/test.json",
        ("data_dir does not exist (config key data_dir)",),
        missing_data_dir,
    ),
    # config values: checked when the workflow is parsed, naming the key's path
    Case(
        "one-fold",
        "results/checks/test.json",
        ("config key segmentation.folds: 1 is less than the minimum of 2",),
        config={"segmentation": {"folds": 1}},
    ),
    Case(
        "image-size-zero",
        "results/checks/test.json",
        ("config key segmentation.image_size: 0 is less than the minimum of 32",),
        config={"segmentation": {"image_size": 0}},
    ),
    Case(
        "unknown-encoder",
        "results/checks/test.json",
        ("config key classification.model.encoder: 'resnet9000' is not one of",),
        config={"classification": {"model": {"encoder": "resnet9000"}}},
    ),
    Case(
        "negative-learning-rate",
        "results/checks/test.json",
        ("config key segmentation.training.learning_rate: -0.001 is less than or equal to the minimum of 0",),
        config={"segmentation": {"training": {"learning_rate": -0.001}}},
    ),
    Case(
        "misspelt-key",
        "results/checks/test.json",
        ("config key segmentation: unknown key(s) 'fold' (known keys: image_size, folds,",),
        config={"segmentation": {"fold": 3}},
    ),
]


def run_case(case: Case, good_data: Path, tmp_path: Path):
    """Copy the checkout and the data, break one thing, run Snakemake; return (process, file to name)."""
    workdir = copy_checkout(tmp_path / "checkout")
    data = workdir / DATA
    shutil.copytree(good_data, data)
    named = case.breaks(data).relative_to(workdir) if case.breaks else None
    config = {"data_dir": DATA, "demo": {"generate": False}, **case.config}
    (workdir / "case.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(
        workdir,
        "--configfile",
        TEST_CONFIG,
        "case.yaml",
        "--cores",
        "1",
        case.target,
        config=None,
        check=False,
        timeout=300,
    )
    return workdir, proc, named


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_fails_with_one_clear_line(case, good_data, tmp_path):
    workdir, proc, named = run_case(case, good_data, tmp_path)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1, output[-3000:]
    line = errors[0]
    for phrase in case.phrases:
        assert phrase in line, line
    if named is not None:
        where = f"{named}, row {case.row}:" if case.row else f"{named}:"
        assert line.startswith(f"ERROR: {where}"), line
    assert "Traceback" not in output, output[-3000:]
    results = workdir / "results"
    left = (
        [
            p.relative_to(workdir)
            for p in results.rglob("*")
            if p.is_file() and "logs" not in p.parts and "benchmarks" not in p.parts
        ]
        if results.exists()
        else []
    )
    assert left == [], left  # neither the check's JSON, nor a cache, nor a temporary file


def test_good_data_passes_every_check_and_records_what_it_checked(good_data, tmp_path):
    workdir = copy_checkout(tmp_path / "checkout")
    shutil.copytree(good_data, workdir / DATA)
    (workdir / "case.yaml").write_text(yaml.safe_dump({"data_dir": DATA, "demo": {"generate": False}}))
    targets = [
        f"results/checks/{name}.json"
        for name in ("seg_train", "train", "validation", "test", "labels", "test_ground_truth")
    ]
    snakemake(workdir, "--configfile", TEST_CONFIG, "case.yaml", "--cores", "2", *targets, config=None)
    checks = {Path(t).stem: json.loads((workdir / t).read_text()) for t in targets}
    assert checks["seg_train"]["images"] == checks["seg_train"]["masks"] == 24
    assert (checks["train"]["images"], checks["validation"]["images"], checks["test"]["images"]) == (37, 7, 14)
    assert checks["train"]["masks"] == checks["test"]["masks"] == 0  # the caches of Task 3 sets read no masks
    truth = checks["test_ground_truth"]
    assert truth["masks"] == 14 and truth["labels"].endswith(LABEL_CSV["test"])
    assert sum(truth["classes"].values()) == 14
    assert checks["labels"]["images"] == 37 and sum(checks["labels"]["classes"].values()) == 37
    assert checks["labels"]["lesions"] == 23 and checks["labels"]["warnings"] == []


def test_bad_training_labels_stop_the_whole_workflow_before_segmentation_training(good_data, tmp_path):
    """The default target: the labels check fails in seconds and no network is trained or even started."""
    workdir = copy_checkout(tmp_path / "checkout")
    shutil.copytree(good_data, workdir / DATA)
    broken = edit_csv(TRAIN_CSV, two_labels)(workdir / DATA).relative_to(workdir)
    (workdir / "case.yaml").write_text(yaml.safe_dump({"data_dir": DATA, "demo": {"generate": False}}))
    proc = snakemake(
        workdir,
        "--configfile",
        TEST_CONFIG,
        "case.yaml",
        "--cores",
        "2",
        "--resources",
        "gpu=1",
        config=None,
        check=False,
        timeout=600,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    errors = [line for line in output.splitlines() if line.startswith("ERROR: ")]
    assert errors == [line for line in errors if line.startswith(f"ERROR: {broken}: row 5 (ISIC_")] and errors
    assert "Error in rule check_labels" in output
    assert not list(workdir.glob("results/segmentation/fold_*"))
    assert not list(workdir.glob("results/logs/segmentation/train_*"))  # no training job ever started
    assert not (workdir / "results/checks/labels.json").exists()


def test_a_config_file_cannot_run_code_through_yaml_tags(tmp_path):
    workdir = copy_checkout(tmp_path / "checkout")
    marker = tmp_path / "pwned"
    (workdir / "case.yaml").write_text(f"data_dir: !!python/object/apply:os.system ['touch {marker}']\n")
    proc = snakemake(
        workdir, "--configfile", TEST_CONFIG, "case.yaml", "-n", "--cores", "1", config=None, check=False, timeout=120
    )
    assert proc.returncode != 0
    assert "not valid JSON or YAML" in proc.stdout + proc.stderr
    assert not marker.exists()
