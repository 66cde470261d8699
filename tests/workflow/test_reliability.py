"""The workflow survives a killed training job, makes the same result twice, and records each model's provenance.

* A training job (and its Snakemake) is SIGKILLed mid-epoch, as a failing node would be; the rerun with
  ``--rerun-incomplete`` resumes from the last finished epoch and ends with exactly the configured epochs,
  and on the CPU with the weights and history of a run never killed.
* The same config twice gives byte-identical data, caches, fold assignments and masks, and on the CPU
  identical model weights.
* ``provenance.json`` next to every model names its settings, the SHA-256 of its input files, the package
  versions and the device.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import psutil
import pytest
import tensorflow as tf
import yaml
from snakemake.utils import validate

import lesionflow
from lesionflow.models import load_model

from support.workflow import TEST_CONFIG, copy_run, planned_jobs, snakemake

pytestmark = pytest.mark.workflow

#: More, smaller batches than the test config, so that an epoch lasts long enough to be killed inside.
EPOCHS = 6
OVERRIDES = "reliability.yaml"
CONFIGS = ("--configfile", TEST_CONFIG, OVERRIDES)
STAGES = {"segmentation": "train_segmentation", "classification": "train_classifier"}


def merged_config(workdir: Path, *files: str) -> dict:
    """config/config.yaml with ``files`` merged over it, key by key, as Snakemake merges config files, and
    the schema's defaults filled in, as the workflow's validation fills them."""

    def merge(into: dict, new: dict) -> dict:
        for key, value in new.items():
            into[key] = merge(dict(into.get(key) or {}), value) if isinstance(value, dict) else value
        return into

    config = yaml.safe_load((workdir / "config/config.yaml").read_text())
    for name in files:
        merge(config, yaml.safe_load((workdir / name).read_text()))
    validate(config, str(workdir / "workflow/schemas/config.schema.yaml"))
    return config


def history_rows(path: Path) -> int:
    """Epochs recorded in a history CSV (written atomically, so never half a row); 0 if it is not there."""
    try:
        return path.read_text().count("\n") - 1
    except FileNotFoundError:
        return 0


def incomplete_markers(workdir: Path) -> set[str]:
    """The outputs Snakemake has marked incomplete (started, never finished): its ``.snakemake/incomplete``."""
    root = workdir / ".snakemake/incomplete"
    found = set()
    for path in root.rglob("*"):
        if path.is_file() and path.name != "migration_underway":
            key = "".join(part.lstrip("@") for part in path.relative_to(root).parts)
            found.add(base64.urlsafe_b64decode(key).decode())
    return found


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def job_processes(root: int, script: str) -> list[psutil.Process]:
    """The Python processes under ``root`` that run the job script ``script`` (e.g. train_segmentation)."""
    found = []
    for child in psutil.Process(root).children(recursive=True):
        try:
            if "python" in child.name() and script in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            pass
    return found


def kill_mid_epoch(
    workdir: Path,
    stage: str,
    after_epochs: int = 2,
    timeout: float = 900,
    node_lost: bool = True,
    extra: tuple[str, ...] = (),
) -> dict:
    """Run Snakemake (with ``extra`` options) for fold 0 of ``stage``; once ``after_epochs`` epochs are in the
    history, SIGKILL the training job 40 % into the next epoch, and, when ``node_lost``, Snakemake's whole
    process group with it; otherwise let Snakemake go on (and retry the job) to its end. Return timings and
    Snakemake's exit status."""
    target = f"results/{stage}/fold_0/model.keras"
    history = workdir / f"results/{stage}/fold_0/work/history.csv"
    cmd = [sys.executable, "-m", "snakemake", *CONFIGS, "--resources", "gpu=1", "--cores", "2", *extra, target]
    with open(workdir / "killed_run.txt", "w") as out:
        proc = subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    start, seen = time.monotonic(), {}
    try:
        while (rows := history_rows(history)) < after_epochs:
            if rows:
                seen.setdefault(rows, time.monotonic())
            if proc.poll() is not None:
                raise AssertionError(
                    f"Snakemake ended ({proc.returncode}) before {after_epochs} epochs:\n"
                    + (workdir / "killed_run.txt").read_text()[-4000:]
                )
            if time.monotonic() - start > timeout:
                raise AssertionError(f"no {after_epochs} epochs in {timeout} s")
            time.sleep(0.05)
        seen.setdefault(rows, time.monotonic())
        epoch_s = seen[rows] - seen.get(rows - 1, seen[rows] - 1.0)
        time.sleep(0.4 * epoch_s)
        jobs = job_processes(proc.pid, STAGES[stage])
        assert len(jobs) == 1, f"expected one {STAGES[stage]} Python process, found {jobs}"
        os.kill(jobs[0].pid, signal.SIGKILL)
        if not node_lost:
            proc.wait(timeout=timeout)
    finally:
        if node_lost or proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and whatever else it started: a node gone
        proc.wait()
    _, alive = psutil.wait_procs(jobs, timeout=30)
    assert not alive, f"{alive} survived SIGKILL"
    return {
        "epochs_before_kill": rows,
        "epoch_s": round(epoch_s, 2),
        "s_to_kill": round(time.monotonic() - start, 1),
        "returncode": proc.returncode,
    }


@pytest.mark.parametrize("stage", list(STAGES))
def test_a_training_job_killed_mid_epoch_resumes_on_rerun(demo_run, tmp_path, stage):
    workdir = copy_run(demo_run, tmp_path / "run")
    # more epochs of smaller batches for this stage's fold 0: new params, so Snakemake retrains it
    (workdir / OVERRIDES).write_text(yaml.safe_dump({stage: {"training": {"epochs": EPOCHS, "batch_size": 2}}}))
    fold = workdir / f"results/{stage}/fold_0"
    target = f"results/{stage}/fold_0/model.keras"
    job_log = workdir / f"results/logs/{stage}/train_fold_0.log"

    figures = kill_mid_epoch(workdir, stage)
    done = figures["epochs_before_kill"]

    # Nothing half-written is taken as done: no output of the job exists, Snakemake holds them incomplete
    # and plans that one job again; the work folder holds the epochs finished before the kill.
    for name in ("model.keras", "history.csv", "provenance.json"):
        assert not (fold / name).exists(), name
    assert {target, f"results/{stage}/fold_0/history.csv"} <= incomplete_markers(workdir)
    assert [str(j) for j in planned_jobs(workdir, *CONFIGS, "--rerun-incomplete", target, config=None)] == [
        f"{STAGES[stage]} fold=0"
    ]
    assert json.loads((fold / "work/state.json").read_text())["epoch"] == done
    assert pd.read_csv(fold / "work/history.csv")["epoch"].tolist() == list(range(done))
    # killed inside epoch done+1: its header was printed, its summary line never was
    log = job_log.read_text()
    headers = [int(n) for n in re.findall(rf"^Epoch (\d+)/{EPOCHS}$", log, re.M)]
    summaries = re.findall(r"^\d+/\d+ - .*val_loss", log, re.M)
    assert headers[-1] == done + 1 and len(summaries) == done, (headers, len(summaries))

    # The killed Snakemake left its lock, as after a lost node: unlock, then rerun.
    locked = snakemake(workdir, *CONFIGS, "--rerun-incomplete", "--cores", "2", target, config=None, check=False)
    assert locked.returncode != 0 and "LockException" in locked.stdout + locked.stderr
    snakemake(workdir, *CONFIGS, "--unlock", target, config=None)
    start = time.monotonic()
    snakemake(workdir, *CONFIGS, "--rerun-incomplete", "--resources", "gpu=1", "--cores", "2", target, config=None)
    figures["rerun_s"] = round(time.monotonic() - start, 1)

    log = job_log.read_text()
    assert f"resuming from the backup in results/{stage}/fold_0/work after epoch {done} of {EPOCHS}" in log
    resumed = log[log.index("resuming from the backup") :]
    assert [int(n) for n in re.findall(rf"^Epoch (\d+)/{EPOCHS}$", resumed, re.M)] == list(range(done + 1, EPOCHS + 1))
    history = pd.read_csv(fold / "history.csv")
    assert history["epoch"].tolist() == list(range(EPOCHS))  # each epoch once, none missing
    assert history["val_loss"].notna().all()
    assert not (fold / "work").exists()
    assert not incomplete_markers(workdir)
    size = merged_config(workdir, TEST_CONFIG, OVERRIDES)[stage]["image_size"]
    model = load_model(fold / "model.keras", size)
    assert model.predict(np.zeros((1, size, size, 3), np.float32), verbose=0).shape[0] == 1
    record = json.loads((fold / "provenance.json").read_text())
    assert record["epochs_run"] == EPOCHS and record["settings"]["training"]["epochs"] == EPOCHS
    assert (
        "nothing to be done" in snakemake(workdir, *CONFIGS, "-n", "--cores", "2", target, config=None).stdout.lower()
    )

    # The same job never killed: on the CPU, the same history and the same weights.
    start = time.monotonic()
    reference = copy_run(demo_run, tmp_path / "reference")
    (reference / OVERRIDES).write_text((workdir / OVERRIDES).read_text())
    snakemake(reference, *CONFIGS, "--resources", "gpu=1", "--cores", "2", target, config=None)
    figures["uninterrupted_s"] = round(time.monotonic() - start, 1)
    if not tf.config.list_physical_devices("GPU"):  # cuDNN may differ in the last bits
        same_files(workdir, reference, f"results/{stage}/fold_0/history.csv")
        same_weights(fold / "model.keras", reference / target)
    print(f"\n{stage} interruption figures: {figures}")


def test_a_killed_training_job_is_retried_with_more_run_time_and_resumes(demo_run, tmp_path):
    """As after SLURM's time limit: the job dies, Snakemake retries it (``--retries``) asking for more."""
    stage = "classification"
    workdir = copy_run(demo_run, tmp_path / "run")
    (workdir / OVERRIDES).write_text(
        yaml.safe_dump(
            {stage: {"training": {"epochs": EPOCHS, "batch_size": 2}, "resources": {"mem_mb": 3000, "runtime": 20}}}
        )
    )
    figures = kill_mid_epoch(workdir, stage, node_lost=False, extra=("--retries", "1"))
    assert figures["returncode"] == 0, (workdir / "killed_run.txt").read_text()[-4000:]
    # Snakemake's plan of each attempt, and the retried job's own log (Snakemake clears it before a retry)
    planned = re.findall(
        r"resources: .*?runtime=(\d+), attempt=(\d+), mem_mb=(\d+)", (workdir / "killed_run.txt").read_text()
    )
    assert sorted({(a, m, r) for r, a, m in planned}) == [("1", "3000", "20"), ("2", "4500", "40")]
    log = (workdir / f"results/logs/{stage}/train_fold_0.log").read_text()
    attempts = re.findall(r"attempt (\d+): asked for (\d+) MB of memory, (\d+) min, 1 GPU", log)
    assert attempts == [("2", "4500", "40")]  # retry factors 1.5 and 2 (schema defaults)
    done = figures["epochs_before_kill"]
    assert f"resuming from the backup in results/{stage}/fold_0/work after epoch {done} of {EPOCHS}" in log
    assert pd.read_csv(workdir / f"results/{stage}/fold_0/history.csv")["epoch"].tolist() == list(range(EPOCHS))


def fresh_copy(run: Path, dest: Path) -> Path:
    """The code of ``run`` without its data, results and Snakemake metadata: a second run from scratch."""
    copy_run(run, dest)
    for name in ("results", ".snakemake", merged_config(dest, TEST_CONFIG)["data_dir"]):
        shutil.rmtree(dest / name)
    return dest


def same_files(a: Path, b: Path, rel: str) -> list[str]:
    """Relative paths of the files under (or at) ``rel`` in ``a``, after checking each is byte-identical in ``b``."""
    root = a / rel
    files = sorted(p.relative_to(a) for p in ([root] if root.is_file() else root.rglob("*")) if p.is_file())
    assert files, f"nothing at {root}"
    for path in files:
        assert (b / path).read_bytes() == (a / path).read_bytes(), f"{path} differs between the two runs"
    return [str(p) for p in files]


def same_weights(a: Path, b: Path) -> int:
    first, second = (keras.saving.load_model(p, compile=False).get_weights() for p in (a, b))
    assert len(first) == len(second)
    for i, (x, y) in enumerate(zip(first, second)):
        np.testing.assert_array_equal(x, y, err_msg=f"weight array {i} of {a.name} differs between the two runs")
    return len(first)


def test_the_same_config_twice_gives_identical_data_caches_folds_and_weights(demo_run, tmp_path):
    start = time.monotonic()
    again = fresh_copy(demo_run, tmp_path / "again")
    snakemake(again, "--resources", "gpu=1", "--cores", "2", "results/segmentation/fold_0/model.keras")
    data_dir = merged_config(again, TEST_CONFIG)["data_dir"]
    compared = [
        *same_files(demo_run, again, data_dir),
        *same_files(demo_run, again, "results/cache/seg_train"),
        *same_files(demo_run, again, "results/segmentation/folds.csv"),
        *same_files(demo_run, again, "results/segmentation/fold_0/history.csv"),
    ]
    assert {
        "results/cache/seg_train/images.npy",
        "results/cache/seg_train/masks.npy",
        "results/cache/seg_train/index.csv",
    } <= set(compared)
    arrays = same_weights(
        demo_run / "results/segmentation/fold_0/model.keras", again / "results/segmentation/fold_0/model.keras"
    )
    seg_s = time.monotonic() - start

    # The classification chain again on the same segmentation models: masks, crops, their cache, the
    # lesion-grouped folds and one classifier fold.
    start = time.monotonic()
    cls = copy_run(demo_run, tmp_path / "cls")
    snakemake(
        cls,
        "--forcerun",
        "predict_masks",
        "mask_images",
        "classification_folds",
        "train_classifier",
        "--resources",
        "gpu=1",
        "--cores",
        "2",
        "results/classification/fold_0/model.keras",
    )
    for rel in ("results/cache/masked_train/images.npy", "results/classification/fold_0/model.keras"):
        assert (cls / rel).stat().st_mtime > (demo_run / rel).stat().st_mtime, f"{rel} was not made again"
    compared += [
        *same_files(demo_run, cls, "results/masks/train"),
        *same_files(demo_run, cls, "results/masked/train"),
        *same_files(demo_run, cls, "results/cache/masked_train"),
        *same_files(demo_run, cls, "results/classification/folds.csv"),
        *same_files(demo_run, cls, "results/classification/fold_0/history.csv"),
    ]
    arrays += same_weights(
        demo_run / "results/classification/fold_0/model.keras", cls / "results/classification/fold_0/model.keras"
    )
    print(
        f"\ndeterminism: {len(compared)} files byte-identical, {arrays} weight arrays equal; "
        f"segmentation from scratch {seg_s:.0f} s, classification chain {time.monotonic() - start:.0f} s"
    )


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_model_records_settings_data_versions_and_device(demo_run, stage):
    config = merged_config(demo_run, TEST_CONFIG)
    section = config[stage]
    for fold in range(section["folds"]):
        record = json.loads((demo_run / f"results/{stage}/fold_{fold}/provenance.json").read_text())
        settings = record["settings"]
        # the config values the model was trained with
        assert settings["seed"] == config["seed"] and settings["image_size"] == section["image_size"]
        for part in ("model", "training"):  # recorded as the config holds them
            for key, value in section[part].items():
                assert settings[part][key] == value, (stage, fold, part, key)
        assert record["fold"] == fold and record["epochs_run"] == section["training"]["epochs"]
        # the input data: every file's SHA-256, and one over all of them in order
        inputs = record["inputs"]
        assert f"results/{stage}/folds.csv" in inputs and any(p.endswith("images.npy") for p in inputs)
        assert record["input_sha256"] == {p: sha256(demo_run / p) for p in inputs}
        joined = b"".join((demo_run / p).read_bytes() for p in inputs)
        assert record["data_sha256"] == hashlib.sha256(joined).hexdigest()
        # the software and the device
        versions = record["versions"]
        assert versions["tensorflow"] == tf.__version__ and versions["keras"] == keras.__version__
        assert versions["numpy"] == np.__version__ and versions["lesionflow"] == lesionflow.__version__
        expected = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
        assert record["device"].startswith(expected) and "deterministic ops" in record["device"], record["device"]
