"""The workflow through the user's SLURM profile, on a real single-node SLURM with one schedulable GPU."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import psutil
import pytest
import yaml

from support.workflow import copy_checkout

try:
    from support.slurm import _run_id, slurm_cluster  # noqa: F401  (the fixture)
except ImportError:  # pragma: no cover - imported as tests.support.slurm
    from tests.support.slurm import _run_id, slurm_cluster  # noqa: F401

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

GPU_RULES = {"train_segmentation", "predict_masks"}

# What the user profile leaves to the site: the test cluster's partition (no accounts), short polling.
SITE_OVERRIDES = [
    "--default-resources",
    "slurm_partition=main",
    "runtime=20",
    "mem_mb=500",
    "--slurm-init-seconds-before-status-checks",
    "2",
    "--latency-wait",
    "10",
    "--retries",
    "0",
]


def test_test_set_masks_through_the_user_profile(slurm_cluster, tmp_path):
    workdir = copy_checkout(tmp_path)
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        "profiles/slurm",
        "results/masks/test",
        "--configfile",
        ".test/config.yaml",
        *SITE_OVERRIDES,
    ]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        env=slurm_cluster.env(),
        capture_output=True,
        text=True,
        timeout=1500,
        stdin=subprocess.DEVNULL,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{output[-6000:]}\n{slurm_cluster.diagnostics()}"

    jobs = slurm_cluster.jobs(run_id=_run_id(output))
    ran = sorted(job.rule for job in jobs)
    # every job of the plan ran as a SLURM job (the demo generator, 3 input checks, 2 caches, folds,
    # 2 folds, the ensemble's description, 1 prediction)
    assert ran == sorted(
        [
            "demo_data",
            "check_images",
            "check_images",
            "check_labels",
            "cache_segmentation_training",
            "cache_task3_set",
            "segmentation_folds",
            "train_segmentation",
            "train_segmentation",
            "describe_ensemble",
            "predict_masks",
        ]
    ), ran
    assert all(job.state == "COMPLETED" for job in jobs), [(j.rule, j.state) for j in jobs]
    for job in jobs:
        assert job.gpus == (1 if job.rule in GPU_RULES else 0), (job.rule, job.gpus)

    gpu_jobs = sorted((j.start, j.end, j.rule) for j in jobs if j.rule in GPU_RULES)
    for (_, end, name), (start, _, nxt) in zip(gpu_jobs, gpu_jobs[1:]):
        assert end <= start, f"{name} overlapped {nxt} on the one GPU"
    # the fold claimed the one device SLURM gave its job, and recorded what TensorFlow listed on it: a GPU
    # where TensorFlow listed one (a real GPU node), else the CPU with the warning (this fake GPU)
    log = (workdir / "results/logs/segmentation/train_fold_0.log").read_text()
    record = json.loads((workdir / "results/segmentation/fold_0/provenance.json").read_text())
    given = record["cuda_visible_devices"]
    assert given is not None and f"claimed GPU {given} of CUDA_VISIBLE_DEVICES={given} (lock" in log, log[:3000]
    if record["tensorflow_gpus"]:
        assert record["device"].startswith("GPU ") and f"using {record['device']}" in log
    else:
        assert record["device"].startswith("CPU") and "no GPU visible to TensorFlow" in log
    masks = list((workdir / "results/masks/test").glob("*_segmentation.png"))
    assert len(masks) == 14


def _training_processes(workdir) -> list[psutil.Process]:
    """The Python processes (started by slurmd, not by us) that run train_segmentation.py in ``workdir``."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline", "cwd"]):
        try:
            command = " ".join(proc.info["cmdline"] or [])
            if (
                "python" in (proc.info["name"] or "")
                and "train_segmentation.py" in command
                and str(workdir) in (proc.info["cwd"] or "")
            ):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def test_a_training_job_killed_under_slurm_is_resubmitted_with_more_time_and_resumes(slurm_cluster, tmp_path):
    """As a node's OOM killer or a time limit would: the SLURM job dies mid-epoch; Snakemake resubmits it
    (``--retries 1``) with twice the run time, and the fold resumes after its last finished epoch."""
    workdir = copy_checkout(tmp_path)
    (workdir / "retry.yaml").write_text(
        yaml.safe_dump(
            {
                "segmentation": {
                    "folds": 2,
                    "training": {"epochs": 6, "batch_size": 2},
                    "resources": {"runtime": 15, "mem_mb": 3000},
                }
            }
        )
    )
    target = "results/segmentation/fold_0/model.keras"
    overrides = [*SITE_OVERRIDES[:-2], "--retries", "1"]
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--profile",
        "profiles/slurm",
        target,
        "--configfile",
        ".test/config.yaml",
        "retry.yaml",
        *overrides,
    ]
    history = workdir / "results/segmentation/fold_0/work/history.csv"
    with open(workdir / "run.txt", "w") as out:
        run = subprocess.Popen(
            cmd, cwd=workdir, env=slurm_cluster.env(), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 1200
        while not (history.exists() and history.read_text().count("\n") - 1 >= 2):
            assert run.poll() is None, (workdir / "run.txt").read_text()[-6000:]
            assert time.monotonic() < deadline, "no two epochs in 20 minutes"
            time.sleep(0.2)
        killed = _training_processes(workdir)
        assert len(killed) == 1, killed
        killed[0].kill()
        run_id, seen = _run_id((workdir / "run.txt").read_text()), {}
        assert run_id, (workdir / "run.txt").read_text()[-3000:]
        while run.poll() is None:  # finished jobs stay listed for 300 s only: note them while they run
            for job in slurm_cluster.jobs(run_id=run_id):
                if job.rule == "train_segmentation":
                    seen[job.job_id] = (job.state, job.fields.get("TimeLimit"))
            assert time.monotonic() < deadline + 1500, "the retry did not finish"
            time.sleep(1)
        assert run.returncode == 0, (workdir / "run.txt").read_text()[-6000:] + slurm_cluster.diagnostics()
    finally:
        if run.poll() is None:
            run.kill()
    for job in slurm_cluster.jobs(run_id=run_id):
        if job.rule == "train_segmentation":
            seen[job.job_id] = (job.state, job.fields.get("TimeLimit"))
    assert [seen[job_id] for job_id in sorted(seen)] == [("FAILED", "00:15:00"), ("COMPLETED", "00:30:00")], seen
    log = (workdir / "results/logs/segmentation/train_fold_0.log").read_text()
    assert "attempt 2: asked for 4500 MB of memory, 30 min, 1 GPU" in log
    assert re.search(r"resuming from the backup in results/segmentation/fold_0/work after epoch [2-5] of 6", log)
    assert (workdir / "results/segmentation/fold_0/history.csv").read_text().count("\n") == 7  # header + 6
