"""The SLURM test harness itself: a tiny workflow through tests/slurm/profile on the real
single-node cluster of tests/slurm/start_slurm.sh, plus checks of the profiles' files."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

try:
    from support.slurm import REPO, TEST_PROFILE, USER_PROFILE, slurm_cluster  # noqa: F401
except ImportError:  # tests/ made a package
    from tests.support.slurm import REPO, TEST_PROFILE, USER_PROFILE, slurm_cluster  # noqa: F401

DEFAULT_PROFILE = REPO / "profiles" / "default"
ENV_PATTERN = "SLURM_JOB_ID|SLURM_JOB_GPUS|SLURM_STEP_GPUS|CUDA_VISIBLE_DEVICES"

# 2 CPU jobs and 2 GPU jobs (rules cpu and gpu) plus the local rule all. Each job records
# the SLURM/GPU variables it sees and when its command started and ended.
# The GPU jobs have the longer time limit: on one node, a job queued behind the waiting
# GPU job starts only when backfill sees it end before the GPU is free (by time limits).
SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input:
            expand("out/cpu_{i}.txt", i=[1, 2]),
            expand("out/gpu_{i}.txt", i=[1, 2]),

    rule cpu:
        output: "out/cpu_{i}.txt"
        threads: 1
        shell:
            "echo start=$(date +%s.%N) > {output}; (env | grep -E '@PATTERN@' || true) >> {output}; "
            "sleep 5; echo end=$(date +%s.%N) >> {output}"

    rule gpu:
        output: "out/gpu_{i}.txt"
        threads: 1
        resources: gpu=1, runtime=60
        shell:
            "echo start=$(date +%s.%N) > {output}; (env | grep -E '@PATTERN@' || true) >> {output}; "
            "sleep 4; echo end=$(date +%s.%N) >> {output}"
    """
).replace("@PATTERN@", ENV_PATTERN)


def _record(path: Path) -> dict:
    """start/end (float seconds) and the environment lines a job wrote."""
    rec = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        rec[key] = value
    rec["start"] = float(rec["start"])
    rec["end"] = float(rec["end"])
    return rec


def _overlap(a: dict, b: dict) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


@pytest.mark.slurm
def test_jobs_run_as_slurm_jobs_and_gpu_jobs_queue_for_the_gpu(slurm_cluster, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    # targets first: --set-resources and friends would swallow them
    run = slurm_cluster.run_snakemake(["all", "--workflow-profile", "none"], cwd=tmp_path, timeout=240)
    assert run.run_id, f"no 'SLURM run ID' in the output:\n{run.output[-3000:]}"

    jobs = slurm_cluster.jobs(run_id=run.run_id)
    by_output = {f"{j.rule}_{j.wildcards}": j for j in jobs}
    assert sorted(by_output) == ["cpu_1", "cpu_2", "gpu_1", "gpu_2"], jobs
    assert all(j.state == "COMPLETED" and j.exit_code == "0:0" for j in jobs), jobs
    assert all(j.partition == slurm_cluster.partition for j in jobs), jobs

    records = {name: _record(tmp_path / "out" / f"{name}.txt") for name in by_output}
    for name, rec in records.items():
        job = by_output[name]
        # the command ran inside exactly this SLURM job
        assert rec.get("SLURM_JOB_ID") == str(job.job_id), (name, rec, job)
        if name.startswith("gpu"):
            assert job.gpus == 1, (name, job.fields.get("JOB_GRES"))
            assert rec.get("CUDA_VISIBLE_DEVICES") == "0", (name, rec)
        else:
            assert job.gpus == 0, (name, job.fields.get("JOB_GRES"))
            assert "CUDA_VISIBLE_DEVICES" not in rec, (name, rec)
            assert "SLURM_JOB_GPUS" not in rec and "SLURM_STEP_GPUS" not in rec, (name, rec)

    # one GPU: the GPU jobs ran one after the other ...
    assert not _overlap(records["gpu_1"], records["gpu_2"]), records
    # ... although the node had room for more than one job at a time
    assert _overlap(records["cpu_1"], records["cpu_2"]), records


# ---------------------------------------------------------------------- the profiles


def _profile(path: Path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


def test_test_profile_mirrors_the_user_slurm_profile():
    user, test = _profile(USER_PROFILE), _profile(TEST_PROFILE)
    assert user["executor"] == test["executor"] == "slurm"
    missing = set(user) - set(test)
    assert not missing, f"{TEST_PROFILE}/config.yaml lacks keys of profiles/slurm: {missing}"
    assert test["slurm-status-command"] == "squeue"  # no slurmdbd on the test cluster
    assert set(user["default-resources"]) >= {"slurm_partition", "slurm_account", "runtime", "mem_mb"}


def test_default_profile_limits_gpu_jobs_only_locally():
    # profiles/default is the implicit workflow profile of every run, also on SLURM: a plain
    # global gpu=1 would let only one GPU job at a time run on the whole cluster
    prof = _profile(DEFAULT_PROFILE)
    assert prof["resources"]["gpu"] == 1
    assert prof["set-resource-scopes"]["gpu"] == "local"


@pytest.mark.parametrize("profile", [DEFAULT_PROFILE, USER_PROFILE, TEST_PROFILE], ids=lambda p: p.name)
def test_profiles_parse(profile, tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "--profile",
            str(profile),
            "--workflow-profile",
            "none",
            "--dry-run",
            "all",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    # the GPU rule keeps its gpu=1 through the profile
    assert re.search(r"resources: .*\bgpu=1\b", res.stdout + res.stderr), res.stdout + res.stderr
