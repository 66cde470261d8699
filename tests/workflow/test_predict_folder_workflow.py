"""The `predict` rules: predicting on a folder of one's own images with the trained ensembles of the demo run,
config errors naming their key, and rule all planning predictions only for configured sets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lesionflow import isic
from lesionflow.userimages import PREDICTION_COLUMNS, SKIPPED_COLUMNS, output_name

from support.files import touch
from support.workflow import TEST_CONFIG, copy_checkout, copy_run, planned_jobs, snakemake

# ---------------------------------------------------------------------------------------- workflow


def _visible(folder: Path) -> list[str]:
    """File names in an output folder, without Snakemake's hidden timestamp file."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


PREDICT_RULES = {"predict_folder_cache", "predict_folder_masks", "predict_folder_crops", "predict_folder_classes"}
TEST_INPUT = Path("data/demo-test") / isic.FOLDERS["test_images"]


def _predict_config(name: str, folder: Path) -> str:
    return f"predict={{{name}: {json.dumps(str(folder))}}}"  # the folder quoted, as it holds a space


def _odd_folder(run: Path, folder: Path) -> dict[str, str]:
    """Demo Task 3 test images under odd names and formats, plus files to skip and to ignore.

    Returns the readable files that are exact copies of a Task 3 test image (file name -> image id).
    """
    folder.mkdir()
    ids = sorted(p.name.removesuffix(".jpg") for p in (run / TEST_INPUT).iterdir())
    source = {i: run / TEST_INPUT / isic.image_name(i) for i in ids}
    copies = {"mole 1.jpg": ids[0], "Müttermal – rücken 2.JPG": ids[1], "lesion{3}.jpeg": ids[2]}
    for name, image_id in copies.items():
        shutil.copy(source[image_id], folder / name)
    Image.open(source[ids[3]]).save(folder / "mole 1.png")  # same stem as 'mole 1.jpg'
    rgba = Image.open(source[ids[4]]).convert("RGBA")
    rgba.putalpha(200)
    rgba.save(folder / "with alpha.Png")
    data = source[ids[5]].read_bytes()
    (folder / "cut off.jpg").write_bytes(data[: len(data) // 2])
    (folder / "notes.jpg").write_text("not an image\n")
    (folder / "readme.txt").write_text("ignored\n")
    return copies


@pytest.mark.workflow
def test_predict_a_folder_of_odd_images_with_the_trained_ensembles(demo_run, tmp_path):
    run = copy_run(demo_run, tmp_path / "run")
    folder = tmp_path / "my images"
    copies = _odd_folder(run, folder)
    readable = sorted([*copies, "mole 1.png", "with alpha.Png"])
    config = _predict_config("clinic_a", folder)
    target = "results/predict/clinic_a/predictions.csv"

    planned = planned_jobs(run, "--config", config, "--", target)
    assert {j.rule for j in planned} == PREDICT_RULES and len(planned) == 4  # no training, no other set
    assert all(j.wildcards == {"name": "clinic_a"} for j in planned)

    # the documented command (target first: --config takes every word after it), on the test config
    snakemake(
        run,
        target,
        "--cores",
        "2",
        "--resources",
        "gpu=1",
        "--config",
        config,
        "--configfile",
        TEST_CONFIG,
        config=None,
    )
    out = run / "results/predict/clinic_a"

    masks = out / "masks"
    assert _visible(masks) == sorted(output_name(n) for n in readable)
    for name in readable:
        mask = Image.open(masks / output_name(name))
        assert mask.mode == "L" and mask.size == Image.open(folder / name).size
        assert set(np.unique(np.asarray(mask)).tolist()) <= {0, 255}
    # same models, same post-processing as the Task 3 masks: identical for identical files
    for name, image_id in copies.items():
        ours = np.asarray(Image.open(masks / output_name(name)))
        task3 = np.asarray(Image.open(run / "results/masks/test" / isic.mask_name(image_id)))
        assert ours.shape == task3.shape and (ours == task3).mean() > 0.999, name

    table = pd.read_csv(out / "predictions.csv", keep_default_na=False)
    assert list(table.columns) == PREDICTION_COLUMNS
    assert table["file"].tolist() == readable
    prob = table[list(isic.CLASSES)].to_numpy()
    assert ((prob >= 0) & (prob <= 1)).all() and np.allclose(prob.sum(axis=1), 1, atol=1e-6)
    assert table["predicted_class"].tolist() == [isic.CLASSES[k] for k in prob.argmax(axis=1)]
    task3 = pd.read_csv(run / "results/predictions/test.csv").set_index("image")
    for name, image_id in copies.items():
        row = table.set_index("file").loc[name, list(isic.CLASSES)].to_numpy(dtype=float)
        assert np.allclose(row, task3.loc[image_id].to_numpy(dtype=float), atol=1e-4), name

    crops = out / "masked"
    assert _visible(crops) == sorted(output_name(n) for n in readable)
    for name in readable:
        crop = Image.open(crops / output_name(name))
        w, h = Image.open(folder / name).size
        assert crop.mode == "RGB" and crop.size[0] <= w and crop.size[1] <= h

    skipped = pd.read_csv(out / "skipped.csv")
    assert list(skipped.columns) == SKIPPED_COLUMNS
    assert skipped["file"].tolist() == ["cut off.jpg", "notes.jpg"]
    assert "truncated" in skipped["reason"][0] and "not a readable image" in skipped["reason"][1]
    log = (run / "results/logs/predict/clinic_a/cache.log").read_text()
    assert "7 image files, 5 read, 2 skipped" in log and "skipped 'notes.jpg'" in log
    assert not any("readme" in p.name for p in out.rglob("*"))

    # finished: nothing to do; a changed or an added image reruns this set's four jobs and nothing else
    assert planned_jobs(run, "--config", config, "--", target) == []
    Image.open(folder / "mole 1.png").transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "mole 1.png")
    assert {j.rule for j in planned_jobs(run, "--config", config, "--", target)} == PREDICT_RULES
    Image.open(folder / "with alpha.Png").convert("RGB").save(folder / "new one.jpg")
    assert {j.rule for j in planned_jobs(run, "--config", config)} == PREDICT_RULES  # rule all builds it too


@pytest.mark.workflow
def test_predict_config_errors_name_the_key(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    target = "results/predict/clinic_a/predictions.csv"
    missing = tmp_path / "no such folder"
    proc = snakemake(
        checkout, "-n", "--cores", "1", "--config", _predict_config("clinic_a", missing), "--", target, check=False
    )
    assert proc.returncode != 0
    assert f"ERROR: config key predict.clinic_a: image folder {missing} does not exist\n" in proc.stderr
    assert "Traceback" not in proc.stderr  # one line, not a traceback

    touch(tmp_path / "empty", "notes.txt")
    proc = snakemake(
        checkout, "-n", "--cores", "1", "--config", _predict_config("clinic_a", tmp_path / "empty"), check=False
    )  # rule all asks for every configured set
    assert proc.returncode != 0
    assert f"ERROR: config key predict.clinic_a: image folder {tmp_path / 'empty'} holds no" in proc.stderr

    proc = snakemake(checkout, "-n", "--cores", "1", "--config", _predict_config("bad name", tmp_path), check=False)
    assert proc.returncode != 0 and "config key predict: 'bad name' does not match" in proc.stdout + proc.stderr

    # only configured names are targets
    touch(tmp_path / "images", "a.jpg")
    proc = snakemake(
        checkout,
        "-n",
        "--cores",
        "1",
        "--config",
        _predict_config("clinic_a", tmp_path / "images"),
        "--",
        "results/predict/clinic_b/predictions.csv",
        check=False,
    )
    assert proc.returncode != 0 and "No rule to produce results/predict/clinic_b" in proc.stdout + proc.stderr


@pytest.mark.workflow
def test_rule_all_plans_predictions_only_for_configured_sets(tmp_path):
    checkout = copy_checkout(tmp_path / "checkout")
    assert not {j.rule for j in planned_jobs(checkout)} & PREDICT_RULES
    touch(tmp_path / "images", "a.jpg")
    jobs = planned_jobs(checkout, "--config", _predict_config("clinic_a", tmp_path / "images"))
    assert {(j.rule, j.wildcards.get("name")) for j in jobs if j.rule in PREDICT_RULES} == {
        (rule, "clinic_a") for rule in PREDICT_RULES
    }
