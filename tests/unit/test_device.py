"""One GPU per network job (lesionflow.gpus), and require_gpu stopping a job before it reads anything.

No GPU is needed: the devices are declared with CUDA_VISIBLE_DEVICES, and each test keeps its locks in a
folder of its own (LESIONFLOW_GPU_LOCK_DIR).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lesionflow import gpus

from support import ROOT, TESTS

# Claims one device as a network job does, says which in a file, and holds it until its stdin closes.
CLAIMER = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from lesionflow import gpus
    from lesionflow.jobs import job

    name, wait_minutes, report = sys.argv[1], float(sys.argv[2]), Path(sys.argv[3])
    with job(name):
        found = gpus.claim(name, configured=json.loads(sys.argv[4]), wait_minutes=wait_minutes, poll_seconds=0.1)
        report.write_text(f"{found.device} {os.environ.get('CUDA_DEVICE_ORDER')}")
        sys.stdin.read()
""")


def claim_env(locks: Path, visible: str | None = "0,1,2") -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env.update({gpus.LOCK_DIR_ENV: str(locks), "PYTHONPATH": str(ROOT / "src")})
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    return env


class Claimer:
    """A process holding one GPU claim."""

    def __init__(
        self,
        tmp_path: Path,
        name: str,
        env: dict[str, str],
        wait_minutes: float = 0,
        cwd: Path | None = None,
        configured: str | list = "auto",
    ):
        self.report = tmp_path / f"{name}.claimed"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLAIMER, name, str(wait_minutes), str(self.report), json.dumps(configured)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd or tmp_path,
        )

    def device(self, timeout: float = 30) -> str:
        """The device it claimed (waits for the claim)."""
        end = time.monotonic() + timeout
        while not (self.report.exists() and self.report.read_text().strip()):  # written, not just created
            assert self.proc.poll() is None, self.proc.stderr.read()
            assert time.monotonic() < end, "no claim"
            time.sleep(0.05)
        return self.report.read_text().split()[0]

    def device_order(self) -> str:
        """CUDA_DEVICE_ORDER after the claim."""
        self.device()
        return self.report.read_text().split()[1]

    def release(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture
def claimers(tmp_path):
    started = []

    def start(name, **kwargs):
        claimer = Claimer(tmp_path, name, kwargs.pop("env", None) or claim_env(tmp_path / "locks"), **kwargs)
        started.append(claimer)
        return claimer

    yield start
    for claimer in started:
        if claimer.proc.poll() is None:
            claimer.proc.kill()
            claimer.proc.wait()


def test_concurrent_claimers_get_distinct_devices_and_a_killed_ones_device_is_free_at_once(claimers, tmp_path):
    first = [claimers(f"fold {i}") for i in range(3)]
    devices = [c.device() for c in first]
    assert sorted(devices) == ["0", "1", "2"]

    first[1].proc.kill()  # SIGKILL: no clean-up runs; the OS drops the lock with the process
    first[1].proc.wait()
    assert claimers("fold 3").device() == devices[1]


def test_a_run_in_another_folder_gets_the_remaining_device(claimers, tmp_path):
    held = {claimers(f"run A fold {i}").device() for i in range(2)}
    elsewhere = tmp_path / "other_run"
    elsewhere.mkdir()
    assert claimers("run B fold 0", cwd=elsewhere).device() not in held


def test_one_claimer_too_many_fails_with_one_line_naming_the_holders(claimers):
    for i in range(3):
        claimers(f"fold {i}").device()
    extra = claimers("predict_masks test", wait_minutes=0)
    _, stderr = extra.proc.communicate(timeout=60)
    assert extra.proc.returncode == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        "ERROR: predict_masks test: no free GPU among CUDA_VISIBLE_DEVICES=0,1,2 after waiting 0 min"
    )
    assert "GPU 0 by pid" in last and "fold 0" in last and "--resources gpu=N" in last


def test_one_claimer_too_many_waits_for_a_free_device(claimers, tmp_path):
    held = [claimers(f"fold {i}") for i in range(3)]
    devices = [c.device() for c in held]
    waiting = claimers("fold 3", wait_minutes=1)
    time.sleep(1.0)
    assert not waiting.report.exists() and waiting.proc.poll() is None
    held[2].release()
    assert waiting.device() == devices[2]
    waiting.release()
    assert "waiting up to 1 min for a free GPU among CUDA_VISIBLE_DEVICES=0,1,2" in waiting.proc.stderr.read()


def test_a_config_list_is_claimed_in_nvidia_smi_order_when_cuda_visible_devices_is_unset(claimers, tmp_path):
    env = claim_env(tmp_path / "locks", visible=None)
    env.pop("CUDA_DEVICE_ORDER", None)
    first = claimers("fold 0", env=env, configured=[5, 7])
    assert first.device() == "5" and first.device_order() == "PCI_BUS_ID"
    assert claimers("fold 1", env=env, configured=[5, 7]).device() == "7"
    # devices from CUDA_VISIBLE_DEVICES keep the order their setter meant
    declared_env = {
        k: v for k, v in claim_env(tmp_path / "other_locks", visible="5").items() if k != "CUDA_DEVICE_ORDER"
    }
    declared = claimers("fold 2", env=declared_env, configured=[5, 7])
    assert declared.device() == "5" and declared.device_order() == "None"


def test_the_config_list_is_used_when_cuda_visible_devices_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpus.candidates(["3", 5]) == (["3", "5"], "config gpus")
    assert gpus.candidates([]) == ([], "config gpus")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    assert gpus.candidates([3]) == (["1", "2"], "CUDA_VISIBLE_DEVICES")


@pytest.mark.parametrize(
    ("value", "devices"),
    [("0,1", ["0", "1"]), ("", []), ("-1", []), ("2,-1,3", ["2"]), ("GPU-8a1b,GPU-9c2d", ["GPU-8a1b", "GPU-9c2d"])],
)
def test_cuda_visible_devices_is_read_as_cuda_reads_it(value, devices):
    assert gpus.visible_devices(value) == devices


def test_no_device_to_claim_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "locks"))
    found = gpus.claim("train_segmentation fold 0", configured="auto", wait_minutes=0)
    assert found.device is None and os.environ["CUDA_VISIBLE_DEVICES"] == ""
    assert not (tmp_path / "locks").exists()


def test_inside_a_slurm_job_locks_are_that_jobs_own(tmp_path, monkeypatch):
    monkeypatch.setenv(gpus.LOCK_DIR_ENV, str(tmp_path / "locks"))
    monkeypatch.setenv("SLURM_JOB_ID", "4711")
    assert gpus.lock_dir() == tmp_path / "locks/slurm-4711"
    assert (tmp_path / "locks").stat().st_mode & 0o777 == 0o700


# ------------------------------------------------------------------ require_gpu


# Runs a workflow script as Snakemake would, with inputs that do not exist: reading any of them would
# end the job with a traceback instead of the one ERROR line.
RUN_SCRIPT = textwrap.dedent("""
    import runpy, sys

    class Namespace(dict):
        # what a script reads from `snakemake`: attributes, items and indices
        def __getattr__(self, name):
            return self[name]
        def __getitem__(self, key):
            return list(self.values())[key] if isinstance(key, int) else super().__getitem__(key)

    out, missing = sys.argv[2], sys.argv[2] + "/missing"
    sys.path.insert(0, sys.argv[3])  # the tests folder
    from support.stubs import demo_config
    from lesionflow.settings import training_params
    config = demo_config()
    snakemake = Namespace(
        input=Namespace(masks=f"{missing}/masks.npy", ensemble=f"{missing}/ensemble.json", folds=f"{missing}/folds.csv",
                        labels=f"{missing}/labels.csv", images=f"{missing}/images.npy",
                        index=f"{missing}/index.csv", models=[f"{missing}/model.keras"]),
        output=Namespace(model=f"{out}/model.keras", history=f"{out}/history.csv",
                         provenance=f"{out}/provenance.json", metrics=f"{out}/metrics.json",
                         predictions=f"{out}/predictions.csv", per_image=f"{out}/per_image.csv"),
        params=Namespace(settings=training_params(config, "segmentation")),
        wildcards=Namespace(fold="0", set="test", name="clinic"),
        log=[f"{out}/job.log"], threads=1, resources=Namespace(mem_mb=16000, runtime=30, gpu=1, attempt=1),
        config=dict(config, gpus="auto", gpu_wait_minutes=0, require_gpu=True))
    runpy.run_path(sys.argv[1], init_globals={"snakemake": snakemake}, run_name="__main__")
""")


@pytest.mark.parametrize(
    ("script", "job_name"),
    [
        ("train_segmentation", "train_segmentation fold 0"),
        ("evaluate_classifier", "evaluate_classifier"),
        ("predict_folder_masks", "predict_folder_masks clinic"),
    ],
)
def test_require_gpu_without_a_gpu_stops_the_job_with_one_line_before_reading(script, job_name, tmp_path):
    # device 99 exists nowhere, so TensorFlow lists no GPU on any machine
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            RUN_SCRIPT,
            str(ROOT / f"workflow/scripts/{script}.py"),
            str(tmp_path),
            str(TESTS),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=claim_env(tmp_path / "locks", visible="99"),
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        f"ERROR: {job_name}: no GPU visible to TensorFlow (CUDA_VISIBLE_DEVICES=99) and require_gpu is true; "
        'check nvidia-smi and that the CUDA build is installed (pip install -e ".[gpu]"), '
        "or set require_gpu: false to run on the CPU"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["job.log", "locks"]  # no output, nothing read
    assert "claimed GPU 99 of CUDA_VISIBLE_DEVICES=99" in (tmp_path / "job.log").read_text()


def test_a_job_that_imported_tensorflow_before_its_claim_stops(tmp_path):
    """CUDA_VISIBLE_DEVICES must be set before TensorFlow starts, so the claim comes first."""
    code = textwrap.dedent("""
        import tensorflow
        from lesionflow import device
        device.configure(job="predict_masks test", threads=1, seed=0,
                         config={"gpus": "auto", "gpu_wait_minutes": 0, "require_gpu": False})
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=claim_env(tmp_path / "locks")
    )
    assert proc.returncode == 1
    assert "RuntimeError: predict_masks test: TensorFlow was imported before the GPU claim" in proc.stderr
    assert not (tmp_path / "locks").exists()
