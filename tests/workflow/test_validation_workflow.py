"""The check jobs in the workflow (lesionflow.validation's checks as Snakemake plans them): every set is checked
before it is used, and a changed file reruns its checks and the jobs after them."""

from __future__ import annotations

import pytest
import yaml
from PIL import Image

from lesionflow.isic import FOLDERS

from support.datasets import IDS, write_groupings, write_labels, write_set
from support.workflow import copy_checkout, copy_run, planned_jobs, snakemake

# ------------------------------------------------------------------ the check jobs in the workflow


@pytest.mark.workflow
def test_every_set_is_checked_before_it_is_used(tmp_path):
    jobs = planned_jobs(copy_checkout(tmp_path))
    checks = sorted(str(j) for j in jobs if j.rule.startswith("check_"))
    assert checks == [
        "check_ground_truth set=test",  # the test config's demo has no validation ground truth
        "check_images set=seg_train",
        "check_images set=test",
        "check_images set=train",
        "check_images set=validation",
        "check_labels",
    ]


def _rules(jobs) -> set[str]:
    return {j.rule for j in jobs}


@pytest.mark.workflow
def test_changed_test_ground_truth_reruns_its_check_but_no_prediction(demo_run, tmp_path):
    run = copy_run(demo_run, tmp_path / "run")
    csv = run / "data/demo-test" / FOLDERS["test_labels"] / "ISIC2018_Task3_Test_GroundTruth.csv"
    csv.write_text(csv.read_text().replace(".0", ""))  # the same labels, written as integers
    jobs = planned_jobs(run)
    assert "check_ground_truth" in _rules(jobs) and "score_predictions" in _rules(jobs)
    assert not _rules(jobs) & {
        "check_images",
        "check_labels",
        "cache_task3_set",
        "predict_masks",
        "mask_images",
        "predict_classes",
        "train_segmentation",
        "train_classifier",
    }
    assert {j.wildcards["set"] for j in jobs if "set" in j.wildcards} == {"test"}


@pytest.mark.workflow
def test_changed_test_image_reruns_only_test_set_checks_and_jobs(demo_run, tmp_path):
    run = copy_run(demo_run, tmp_path / "run")
    image = sorted((run / "data/demo-test" / FOLDERS["test_images"]).glob("*.jpg"))[0]
    Image.open(image).convert("RGB").save(image, quality=80)  # new content, not just a new time stamp
    jobs = planned_jobs(run)
    assert {"check_images", "check_ground_truth", "cache_task3_set", "predict_masks"} <= _rules(jobs)
    assert not _rules(jobs) & {"check_labels", "train_segmentation", "train_classifier", "classification_folds"}
    assert {j.wildcards["set"] for j in jobs if "set" in j.wildcards} == {"test"}


@pytest.mark.workflow
def test_segmentation_alone_needs_no_task3_training_data(tmp_path):
    """Without Task 3 training labels, `results/masks/test` plans (no labels check); with them, it waits for it."""
    workdir = copy_checkout(tmp_path / "checkout")
    data = workdir / "data/seg-only"
    write_set(data / FOLDERS["seg_train_images"], masks=data / FOLDERS["seg_train_masks"])
    write_set(data / FOLDERS["test_images"], ids=[f"ISIC_{i:07d}" for i in range(100, 103)])
    (workdir / "case.yaml").write_text(yaml.safe_dump({"data_dir": "data/seg-only", "demo": {"generate": False}}))
    args = ("--configfile", ".test/config.yaml", "case.yaml", "--", "results/masks/test")
    jobs = planned_jobs(workdir, *args, config=None)
    assert {"check_images", "train_segmentation", "predict_masks"} <= _rules(jobs)
    assert "check_labels" not in _rules(jobs)
    write_set(data / FOLDERS["train_images"], ids=IDS[:2])
    (data / FOLDERS["train_labels"]).mkdir()
    write_labels(data / FOLDERS["train_labels"] / "ISIC2018_Task3_Training_GroundTruth.csv", IDS[:2])
    write_groupings(
        data / FOLDERS["train_labels"] / "ISIC2018_Task3_Training_LesionGroupings.csv", [(i, "HAM_1") for i in IDS[:2]]
    )
    assert "check_labels" in _rules(planned_jobs(workdir, *args, config=None))


@pytest.mark.workflow
def test_a_change_in_users_data_reruns_only_that_sets_checks(tmp_path):
    """With data the demo generator did not write, a check lists no file as input (planning does not grow with
    the data); its params hold the files' names, sizes and modification times, so adding, removing or
    rewriting an image or mask still reruns that set's check and only it, and a stray file reruns nothing."""
    from lesionflow.demo import MARKER, DemoSpec, generate_demo

    data = tmp_path / "isic2018"
    counts = {"MEL": 2, "NV": 3, "BCC": 2, "AKIEC": 2, "BKL": 2, "DF": 2, "VASC": 2}
    spec = DemoSpec(
        seed=5, seg_train=6, seg_validation=1, seg_test=1, seg_large=0, train_counts=counts, validation=3, test=4
    )
    generate_demo(data, spec)
    (data / MARKER).unlink()  # the user's data, as far as the workflow can tell
    workdir = copy_checkout(tmp_path / "checkout")
    (workdir / "case.yaml").write_text(yaml.safe_dump({"data_dir": str(data), "demo": {"generate": False}}))
    checks = [f"results/checks/{name}.json" for name in ("seg_train", "train", "validation", "test", "labels")]
    checks.append("results/checks/test_ground_truth.json")
    args = ("--configfile", ".test/config.yaml", "case.yaml", "--", *checks)

    def planned() -> list[str]:
        return sorted(str(j) for j in planned_jobs(workdir, *args, config=None))

    snakemake(workdir, "--cores", "2", *args, config=None)
    assert planned() == []
    proc = snakemake(workdir, "-n", "--cores", "2", "--configfile", ".test/config.yaml", "case.yaml", config=None)
    train_images = sorted((data / FOLDERS["train_images"]).glob("*.jpg"))
    assert str(train_images[0]) not in proc.stdout  # no job lists the images one by one

    (data / FOLDERS["train_images"] / "notes.txt").write_text("downloaded by hand\n")
    assert planned() == []  # not an image of the set: nothing to check again

    Image.open(train_images[0]).convert("RGB").save(train_images[0], quality=80)  # rewritten
    assert planned() == ["check_images set=train"]
    snakemake(workdir, "--cores", "2", *args, config=None)

    mask = sorted((data / FOLDERS["seg_train_masks"]).glob("*.png"))[0]
    mask.write_bytes(mask.read_bytes())  # the same bytes, written again: a new modification time
    assert planned() == ["check_images set=seg_train"]
    snakemake(workdir, "--cores", "2", *args, config=None)

    test_images = sorted((data / FOLDERS["test_images"]).glob("*.jpg"))
    test_images[-1].unlink()  # removed, with its mask: the set and its ground truth are checked again
    (data / FOLDERS["test_masks"] / test_images[-1].name.replace(".jpg", "_segmentation.png")).unlink()
    assert planned() == ["check_ground_truth set=test", "check_images set=test"]
