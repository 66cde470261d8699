"""The user's data is read-only to the workflow: every path that reads it leaves it byte-identical.

A realistic ISIC 2018 folder that the demo generator did not write (other image ids than the test demo's,
plus files of the user's own) is given as ``data_dir`` to the default config, demo generation on: the whole
DAG runs on it as it is, with a prediction on a folder of the user's photographs, then every output is
deleted with ``--delete-all-output``; after each step a manifest of SHA-256 sums of both folders is
unchanged. Snakemake's own list of the outputs names nothing inside them. In a folder the demo generator
did write, a file of the user's at a name the demo would write stops planning instead of being replaced,
and deleting all outputs deletes only what the generator's marker lists.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from PIL import Image

from lesionflow import demo
from lesionflow.demo import DemoSpec, generate_demo
from lesionflow.isic import FOLDERS, LABEL_CSV
from lesionflow.layout import demo_spec

from support.images import textured_rgb
from support.workflow import REPO, TEST_CONFIG, copy_checkout, snakemake

pytestmark = pytest.mark.workflow

#: Another spec than the test config's: other image ids and counts, so nothing matches a demo by chance.
USERS_SPEC = DemoSpec(
    seed=99,
    seg_train=10,
    seg_validation=1,
    seg_test=1,
    seg_large=0,
    train_counts={"MEL": 3, "NV": 5, "BCC": 3, "AKIEC": 3, "BKL": 3, "DF": 3, "VASC": 3},
    validation=4,
    test=8,
)


def manifest(root: Path) -> dict[str, str]:
    """Every entry below ``root``: SHA-256 and mode of files, link targets, folders; what must not change."""
    entries = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            entries[rel] = f"link to {os.readlink(path)}"
        elif path.is_dir():
            entries[rel] = "folder"
        else:
            entries[rel] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {stat.filemode(path.stat().st_mode)}"
    return entries


@pytest.fixture(scope="module")
def users_data(tmp_path_factory) -> Path:
    """An ISIC-layout folder of the user's: images, masks and CSVs, notes, hidden and read-only files."""
    root = tmp_path_factory.mktemp("users") / "isic2018"
    generate_demo(root, USERS_SPEC)
    (root / demo.MARKER).unlink()  # written by someone else, as far as the workflow can tell
    (root / "README.txt").write_text("ISIC 2018, downloaded by hand\n")
    (root / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "ISIC2018_Task3_Training_Input" / "ATTRIBUTION.txt").write_text("CC-BY-NC\n")
    (root / "ISIC2018_Task3_Training_Input" / "ATTRIBUTION.txt").chmod(0o444)
    (root / "archives").mkdir()
    (root / "archives" / "checksums.sha256").write_text("0" * 64 + "  x.zip\n")
    (root / "latest").symlink_to("ISIC2018_Task3_Test_Input")
    return root


@pytest.fixture(scope="module")
def users_photos(tmp_path_factory) -> Path:
    """A folder of the user's own photographs to predict on (with a file that is not an image)."""
    root = tmp_path_factory.mktemp("photos")
    for i, (h, w) in enumerate([(300, 400), (480, 360)]):
        Image.fromarray(textured_rgb(h, w, seed=i)).save(root / f"mole {i}.JPG", quality=92)
    (root / "notes.docx").write_bytes(b"PK\x03\x04 not an image")
    return root


def output_files(workdir: Path, *config: str) -> list[Path]:
    """Every file Snakemake counts as an output of the DAG (``--summary``), as absolute paths."""
    proc = snakemake(workdir, "--summary", *config)
    rows = [line.split("\t")[0] for line in proc.stdout.splitlines()[1:] if "\t" in line]
    assert rows, proc.stdout
    return [(workdir / row).resolve() for row in rows]


def test_users_folder_is_used_as_it_is_and_stays_byte_identical(users_data, users_photos, tmp_path):
    workdir = copy_checkout(tmp_path / "workflow")
    data_before, photos_before = manifest(users_data), manifest(users_photos)
    config = ("--config", f"data_dir={users_data}", f"predict={{mine: {users_photos}}}")

    # the default config (demo generation on) plans no demo: the folder holds data it did not write
    proc = snakemake(workdir, "-n", "--cores", "2", *config, config=None)
    assert "demo_data" not in proc.stdout
    notes = [line for line in proc.stderr.splitlines() if line.startswith("NOTE: ")]
    assert len(notes) == 1
    assert notes[0].startswith(f"NOTE: {users_data}: holds data that the demo generator did not write (e.g. ")
    assert notes[0].endswith("so it is used as it is and no demo data is generated into it")

    # the whole DAG on the small settings: checks, caches, training, masks, crops, predictions, report (two
    # network jobs at a time, one CPU thread each)
    snakemake(workdir, "--cores", "2", "--resources", "gpu=2", *config)
    assert manifest(users_data) == data_before
    assert manifest(users_photos) == photos_before
    n_test = len(list((users_data / FOLDERS["test_images"]).glob("ISIC_*.jpg")))
    assert len(list((workdir / "results/masks/test").glob("ISIC_*_segmentation.png"))) == n_test == 8
    assert (workdir / "results/predict/mine/predictions.csv").read_text().count("\n") == 3  # header + 2 photos
    assert json.loads((workdir / "results/metrics/segmentation_test.json").read_text())  # scored on its truth

    # nothing of the user's counts as an output, so no Snakemake command deletes or rewrites it
    outputs = output_files(workdir, *config)
    for folder in (users_data.resolve(), users_photos.resolve()):
        assert not [p for p in outputs if p.is_relative_to(folder)]
    snakemake(workdir, "--cores", "2", "--forcerun", "check_images", "--until", "check_images", *config)
    assert manifest(users_data) == data_before
    snakemake(workdir, "--delete-all-output", *config)
    assert not (workdir / "results/masks/test").exists()
    assert manifest(users_data) == data_before
    assert manifest(users_photos) == photos_before


@pytest.fixture
def demo_checkout(tmp_path) -> tuple[Path, Path]:
    """A checkout whose test-config demo data the generator wrote (marker and all), before any run."""
    workdir = copy_checkout(tmp_path / "workflow")
    config = yaml.safe_load((REPO / TEST_CONFIG).read_text())
    data_dir = workdir / config["data_dir"]
    generate_demo(data_dir, demo_spec(config["demo"]))
    return workdir, data_dir


def test_a_users_file_at_a_demo_name_stops_planning_and_stays(demo_checkout):
    workdir, data_dir = demo_checkout
    labels = f"{FOLDERS['train_labels']}/{LABEL_CSV['train']}"
    marker = json.loads((data_dir / demo.MARKER).read_text())
    del marker["files"][labels]  # the CSV there is now the user's, not the generator's
    (data_dir / demo.MARKER).write_text(json.dumps(marker))
    (data_dir / labels).write_text("image,MEL,NV,BCC,AKIEC,BKL,DF,VASC\n")
    before = manifest(data_dir)
    proc = snakemake(workdir, "--cores", "2", "--resources", "gpu=1", check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert proc.returncode != 0
    assert errors == [
        f"ERROR: {Path(data_dir.relative_to(workdir)) / labels}: the demo generator would replace "
        "this file, but it did not write it; nothing was changed. Move the file away, or set "
        "demo.generate: false to use data_dir as it is"
    ]
    assert manifest(data_dir) == before and not (workdir / "results").exists()


def test_deleting_all_outputs_deletes_only_what_the_generator_wrote(demo_checkout):
    workdir, data_dir = demo_checkout
    (data_dir / FOLDERS["test_images"] / "my_annotations.csv").write_text("image,comment\n")
    (data_dir / "papers").mkdir()
    (data_dir / "papers" / "isic2018.pdf").write_bytes(b"%PDF-1.4")
    listed = set(json.loads((data_dir / demo.MARKER).read_text())["files"])
    outputs = output_files(workdir)
    in_data = {str(p.relative_to(data_dir.resolve())) for p in outputs if p.is_relative_to(data_dir.resolve())}
    assert in_data and in_data <= listed  # the demo's own files and nothing else
    users = {k: v for k, v in manifest(data_dir).items() if k not in listed and k != demo.MARKER}
    snakemake(workdir, "--delete-all-output")
    after = manifest(data_dir)
    assert not set(after) & in_data  # the demo's files are gone ...
    assert {k: after[k] for k in users} == users  # ... the user's are as they were
    assert "papers/isic2018.pdf" in users and f"{FOLDERS['test_images']}/my_annotations.csv" in users
