"""The whole workflow on the small test config: outputs, GPU scheduling, minimal reruns, single targets."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lesionflow.isic import CLASSES, FOLDERS

from support.workflow import copy_checkout, copy_run, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

DATA = "data/demo-test"
GPU_RULES = {
    "train_segmentation",
    "evaluate_segmentation",
    "predict_masks",
    "train_classifier",
    "evaluate_classifier",
    "predict_classes",
}
CACHE_RULES = {"demo_data", "cache_segmentation_training", "cache_task3_set"}
SEGMENTATION_RULES = {
    "segmentation_folds",
    "train_segmentation",
    "evaluate_segmentation",
    "predict_masks",
    "score_masks",
}
CLASSIFIER_RULES = {
    "classification_folds",
    "train_classifier",
    "evaluate_classifier",
    "predict_classes",
    "score_predictions",
}


def scorer() -> list[str]:
    exe = Path(sys.executable).with_name("isic-challenge-scoring")
    return [str(exe)] if exe.exists() else [shutil.which("isic-challenge-scoring")]


def rules(jobs) -> set[str]:
    return {j.rule for j in jobs}


# ------------------------------------------------------------------ planning a fresh clone


def test_fresh_clone_plans_the_whole_dag_with_the_default_config(tmp_path):
    jobs = planned_jobs(copy_checkout(tmp_path), config=None)
    counts = pd.Series([j.rule for j in jobs]).value_counts().to_dict()
    assert counts["demo_data"] == 1
    assert counts["cache_segmentation_training"] == 1
    assert counts["cache_task3_set"] == 3
    assert counts["train_segmentation"] == 3 and counts["train_classifier"] == 3  # one job per fold
    assert counts["predict_masks"] == 3 and counts["mask_images"] == 3 and counts["predict_classes"] == 3
    assert counts["score_masks"] == 1 and counts["score_predictions"] == 1  # the demo has test ground truth
    # each stage's ensemble: its description, its SavedModel and its model card (no ONNX unless asked for)
    assert counts["describe_ensemble"] == counts["export_ensemble"] == counts["model_card"] == 2
    assert "export_onnx" not in counts


def test_single_target_plans_segmentation_and_the_test_set_only(tmp_path):
    jobs = planned_jobs(copy_checkout(tmp_path), "--", "results/masks/test")
    assert {"train_segmentation", "predict_masks", "cache_task3_set"} <= rules(jobs)
    assert not rules(jobs) & (CLASSIFIER_RULES | {"mask_images", "evaluate_segmentation"})
    # the Task 1 training set (seg_train) and, of the Task 3 sets, only test
    assert {j.wildcards["set"] for j in jobs if "set" in j.wildcards} == {"seg_train", "test"}
    assert sum(j.rule == "train_segmentation" for j in jobs) == 2


# ------------------------------------------------------------------ a finished run


def test_masks_are_official_task1_pngs_at_each_images_size(demo_run):
    for image_set in ("train", "validation", "test"):
        folder = demo_run / DATA / FOLDERS[f"{image_set}_images"]
        images = sorted(folder.glob("ISIC_*.jpg"))
        masks = sorted((demo_run / "results/masks" / image_set).glob("*.png"))
        assert [m.name for m in masks] == [f"{p.stem}_segmentation.png" for p in images]
        for image, mask in zip(images[:5], masks[:5]):
            with Image.open(mask) as m, Image.open(image) as i:
                assert m.mode == "L" and m.size == i.size
                assert set(np.unique(np.asarray(m))) <= {0, 255}


def test_official_scorer_accepts_the_test_masks(demo_run):
    truth = demo_run / DATA / "ISIC2018_Task3_Test_Segmentation_GroundTruth"
    proc = subprocess.run(
        [*scorer(), "-o", "json", "segmentation", str(truth), str(demo_run / "results/masks/test")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    official = json.loads(proc.stdout)
    ours = json.loads((demo_run / "results/metrics/segmentation_test.json").read_text())
    assert ours["threshold_jaccard"] == pytest.approx(official["overall"], abs=1e-9)  # its headline metric
    for key, value in official["macro_average"].items():
        assert ours[key] == pytest.approx(value, abs=1e-9), key


def test_submission_csv_is_accepted_by_the_official_scorer(demo_run):
    submission = demo_run / "results/predictions/test.csv"
    table = pd.read_csv(submission)
    assert list(table.columns) == ["image", *CLASSES]
    np.testing.assert_allclose(table[list(CLASSES)].sum(axis=1), 1.0, atol=1e-5)
    truth = demo_run / DATA / "ISIC2018_Task3_Test_GroundTruth/ISIC2018_Task3_Test_GroundTruth.csv"
    proc = subprocess.run(
        [*scorer(), "-o", "json", "classification", str(truth), str(submission)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    official = json.loads(proc.stdout)
    ours = json.loads((demo_run / "results/metrics/classification_test.json").read_text())
    assert ours["balanced_accuracy"] == pytest.approx(official["overall"], abs=1e-9)  # its headline metric
    for image_set in ("train", "validation"):
        assert len(pd.read_csv(demo_run / f"results/predictions/{image_set}.csv")) > 0


def test_fold_metrics_are_written_per_fold_and_mean(demo_run):
    seg = json.loads((demo_run / "results/metrics/segmentation.json").read_text())
    cls = json.loads((demo_run / "results/metrics/classification.json").read_text())
    for metrics, key in ((seg, "threshold_jaccard"), (cls, "balanced_accuracy")):
        assert len(metrics["folds"]) == 2
        assert metrics["mean"][key] == pytest.approx(np.mean([f[key] for f in metrics["folds"].values()]))


_STAMP = re.compile(r"job (\w+)(.*?) (started|finished) at (\S+)")


def job_intervals(run: Path) -> list[tuple[str, datetime, datetime]]:
    """(job, start, end) of every job, from the first and last lines the job writes to its log."""
    intervals = []
    for log in (run / "results/logs").rglob("*.log"):
        stamps = {}
        for match in _STAMP.finditer(log.read_text(errors="replace")):
            stamps[match.group(3)] = (match.group(1) + match.group(2), datetime.fromisoformat(match.group(4)))
        if "started" in stamps and "finished" in stamps:
            intervals.append((stamps["started"][0], stamps["started"][1], stamps["finished"][1]))
    return intervals


def test_gpu_jobs_never_overlap(demo_run):
    intervals = job_intervals(demo_run)
    gpu = sorted((start, end, name) for name, start, end in intervals if name.split()[0] in GPU_RULES)
    # 2 folds x 2 stages + 2 evaluations + 3 + 3 predictions
    assert len(gpu) == 12, [name for _, _, name in gpu]
    for (_, end, name), (start, _, next_name) in zip(gpu, gpu[1:]):
        assert end <= start, f"{name} (until {end}) overlapped {next_name} (from {start})"
    cpu = [(s, e) for name, s, e in intervals if name.split()[0] not in GPU_RULES]
    assert len(cpu) >= 8  # the CPU jobs were recorded too, so the log format did not silently change


def test_network_jobs_log_the_device_they_used(demo_run):
    log = (demo_run / "results/logs/segmentation/train_fold_0.log").read_text()
    record = json.loads((demo_run / "results/segmentation/fold_0/provenance.json").read_text())
    # the device recorded is the one TensorFlow listed: a GPU where it listed one, else the CPU with a warning
    if record["tensorflow_gpus"]:
        assert record["device"].startswith("GPU ") and f"using {record['device']}" in log
        assert record["cuda_visible_devices"] is not None and f"claimed GPU {record['cuda_visible_devices']}" in log
    else:
        assert record["device"].startswith("CPU")
        assert "no GPU visible to TensorFlow" in log and f"running on the {record['device']}" in log
    assert re.search(r"Epoch 4/4", log)  # Keras progress is in the job's log


def test_concurrent_network_jobs_claim_distinct_gpus(demo_run, tmp_path):
    """--resources gpu=3 with three declared GPUs: the two folds train side by side, each on its own device."""
    run = copy_run(demo_run, tmp_path / "run")
    models = [f"results/segmentation/fold_{fold}/model.keras" for fold in (0, 1)]
    snakemake(
        run,
        "--cores",
        "3",
        "--resources",
        "gpu=3",
        "--forcerun",
        "train_segmentation",
        "--",
        *models,
        env={"CUDA_VISIBLE_DEVICES": "0,1,2", "LESIONFLOW_GPU_LOCK_DIR": str(tmp_path / "locks")},
    )
    records = [json.loads((run / f"results/segmentation/fold_{fold}/provenance.json").read_text()) for fold in (0, 1)]
    devices = [r["cuda_visible_devices"] for r in records]
    assert len(set(devices)) == 2 and set(devices) <= {"0", "1", "2"}, devices
    for fold, device in enumerate(devices):
        log = (run / f"results/logs/segmentation/train_fold_{fold}.log").read_text()
        assert f"claimed GPU {device} of CUDA_VISIBLE_DEVICES=0,1,2" in log
    # each log's last stamps are this run's: the two jobs overlapped, so they needed distinct devices
    (first_start, first_end), (second_start, _) = sorted(
        (start, end) for name, start, end in job_intervals(run) if name.startswith("train_segmentation")
    )
    assert second_start < first_end


# ------------------------------------------------------------------ minimal reruns (dry runs of the finished run)


def planned_with(run: Path, tmp_path: Path, overrides: str) -> list:
    """The plan after changing settings: ``overrides`` (YAML) merged over the test config."""
    extra = tmp_path / "overrides.yaml"
    extra.write_text(textwrap.dedent(overrides))
    return planned_jobs(run, "--configfile", ".test/config.yaml", str(extra), config=None)


def test_up_to_date_run_plans_nothing(demo_run):
    assert planned_jobs(demo_run) == []


def test_threads_and_resources_changes_rerun_nothing(demo_run, tmp_path):
    assert (
        planned_with(
            demo_run,
            tmp_path,
            """
        classification: {resources: {threads: 2, mem_mb: 9000}}
        segmentation: {resources: {threads: 2, runtime: 99}}
        resize: {threads: 1}
    """,
        )
        == []
    )


def test_gpu_settings_rerun_nothing(demo_run, tmp_path):
    assert (
        planned_with(
            demo_run,
            tmp_path,
            """
        gpus: [0, 1]
        require_gpu: true
        gpu_wait_minutes: 5
    """,
        )
        == []
    )


def test_classifier_setting_reruns_only_classification(demo_run, tmp_path):
    jobs = planned_with(demo_run, tmp_path, "classification: {training: {learning_rate: 0.001}}")
    assert sum(j.rule == "train_classifier" for j in jobs) == 2
    assert not rules(jobs) & (CACHE_RULES | SEGMENTATION_RULES | {"mask_images", "classification_folds"})


def test_segmentation_setting_reruns_segmentation_and_after_but_not_caches(demo_run, tmp_path):
    jobs = planned_with(demo_run, tmp_path, "segmentation: {postprocess: {sigma: 2.0}}")
    assert {"evaluate_segmentation", "predict_masks", "mask_images", "train_classifier"} <= rules(jobs)
    assert "train_segmentation" not in rules(jobs)  # post-processing does not retrain
    exported = {j.wildcards["stage"] for j in jobs if j.rule in ("describe_ensemble", "export_ensemble")}
    assert exported >= {"segmentation"}  # the segmentation export carries the post-processing settings
    jobs = planned_with(demo_run, tmp_path, "segmentation: {training: {epochs: 5}}")
    assert sum(j.rule == "train_segmentation" for j in jobs) == 2
    assert not rules(jobs) & CACHE_RULES


def test_changed_test_image_reruns_only_test_set_jobs(demo_run, tmp_path):
    run = copy_run(demo_run, tmp_path / "run")
    image = sorted((run / DATA / "ISIC2018_Task3_Test_Input").glob("*.jpg"))[0]
    with Image.open(image) as im:  # new content: Snakemake skips a newer file whose checksum is unchanged
        im.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(image, quality=90)
    jobs = planned_jobs(run)
    assert {"cache_task3_set", "predict_masks", "mask_images", "predict_classes"} <= rules(jobs)
    assert "model_card" in rules(jobs)  # its Task 3 scores change
    assert not rules(jobs) & {
        "export_ensemble",
        "describe_ensemble",
        "train_segmentation",
        "train_classifier",
        "evaluate_segmentation",
        "evaluate_classifier",
        "cache_segmentation_training",
    }
    assert {j.wildcards["set"] for j in jobs if "set" in j.wildcards} == {"test"}


def test_edited_script_reruns_its_rule_and_what_follows(demo_run, tmp_path):
    run = copy_run(demo_run, tmp_path / "run")
    script = run / "workflow/scripts/predict_classes.py"
    script.write_text(script.read_text() + "\n# edited\n")
    jobs = planned_jobs(run)
    assert sum(j.rule == "predict_classes" for j in jobs) == 3
    assert not rules(jobs) & (CACHE_RULES | SEGMENTATION_RULES | {"train_classifier", "mask_images"})


def test_the_original_preset_plans_the_whole_original_method(demo_run, tmp_path):
    checkout = copy_checkout(tmp_path / "original")
    jobs = planned_jobs(
        checkout, "--configfile", "config/original.yaml", "--config", f"data_dir={demo_run / DATA}", config=None
    )
    assert sum(j.rule == "train_segmentation" for j in jobs) == 5
    assert sum(j.rule == "train_classifier" for j in jobs) == 5
    assert {"evaluate_segmentation", "predict_masks", "mask_images", "evaluate_classifier", "predict_classes"} <= rules(
        jobs
    )
