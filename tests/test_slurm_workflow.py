"""The workflow through the user's SLURM profile, on a real single-node SLURM with one schedulable GPU."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from workflow_run import copy_checkout

try:
    from slurm_cluster import _run_id, slurm_cluster  # noqa: F401  (the fixture)
except ImportError:  # pragma: no cover - imported as tests.slurm_cluster
    from tests.slurm_cluster import _run_id, slurm_cluster  # noqa: F401

pytestmark = [pytest.mark.slurm, pytest.mark.workflow]

GPU_RULES = {"train_segmentation", "predict_masks"}

# What the user profile leaves to the site: the test cluster's partition (no accounts), short polling.
SITE_OVERRIDES = [
    "--default-resources", "slurm_partition=main", "runtime=20", "mem_mb=500",
    "--slurm-init-seconds-before-status-checks", "2",
    "--latency-wait", "10",
    "--retries", "0",
]


def test_test_set_masks_through_the_user_profile(slurm_cluster, tmp_path):
    workdir = copy_checkout(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "results/masks/test",
           "--configfile", ".test/config.yaml", *SITE_OVERRIDES]
    proc = subprocess.run(cmd, cwd=workdir, env=slurm_cluster.env(), capture_output=True, text=True,
                          timeout=1500, stdin=subprocess.DEVNULL)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{output[-6000:]}\n{slurm_cluster.diagnostics()}"

    jobs = slurm_cluster.jobs(run_id=_run_id(output))
    ran = sorted(job.rule for job in jobs)
    # every job of the plan ran as a SLURM job (the demo generator, 3 input checks, 2 caches, folds,
    # 2 folds, 1 prediction)
    assert ran == sorted(["demo_data", "check_images", "check_images", "check_labels",
                          "cache_segmentation_training", "cache_task3_set", "segmentation_folds",
                          "train_segmentation", "train_segmentation", "predict_masks"]), ran
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
