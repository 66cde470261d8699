"""One GPU per network job: claim a device with an OS lock before TensorFlow starts, and hold it until exit.

Snakemake's ``--resources gpu=N`` only caps how many GPU jobs run at once; it assigns no device. Each network
job therefore claims one device itself: among ``CUDA_VISIBLE_DEVICES`` when it is set (by SLURM or the
user), else among the config's ``gpus`` list, else among the GPUs the NVIDIA driver lists. The claim is an
exclusive ``flock`` on one file per device in a per-user folder, so it is shared by every run of the
workflow on the machine and released by the operating system when the job ends, however it ends (also on
SIGKILL). The job then sets ``CUDA_VISIBLE_DEVICES`` to its device, so TensorFlow sees that one GPU only.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from .errors import InputError

log = logging.getLogger(__name__)

#: Overrides the folder of the device locks (tests; sites whose /tmp is not shared by the user's runs).
LOCK_DIR_ENV = "LESIONFLOW_GPU_LOCK_DIR"

#: Open lock files of this process: closing them (at exit, by the OS) releases the claims.
_held: list = []


@dataclass(frozen=True)
class Claim:
    """The device a job holds (``None``: there was no GPU to claim) and where the candidates came from."""

    device: str | None
    source: str
    candidates: list[str] = field(default_factory=list)
    lock_path: Path | None = None

    def describe(self) -> str:
        listed = f"{self.source}={','.join(self.candidates)}" if self.candidates else self.source
        if self.device is None:
            return f"no GPU to claim ({listed})"
        return f"GPU {self.device} of {listed} (lock {self.lock_path})"


def lock_dir() -> Path:
    """Per-user folder of the device locks, created private; inside a SLURM job, a subfolder of that job.

    Under SLURM the job's ``CUDA_VISIBLE_DEVICES`` names the devices SLURM gave it (often ``0`` in every job
    of a node), so device names are only unique within one SLURM job.
    """
    base = Path(os.environ.get(LOCK_DIR_ENV) or f"/tmp/lesionflow-gpu-locks-{os.getuid()}")
    folder = base / f"slurm-{os.environ['SLURM_JOB_ID']}" if os.environ.get("SLURM_JOB_ID") else base
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    if base.stat().st_uid != os.getuid():
        raise InputError(f"GPU lock folder {base} belongs to another user; set {LOCK_DIR_ENV} to a folder of yours")
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def visible_devices(value: str) -> list[str]:
    """The devices a ``CUDA_VISIBLE_DEVICES`` value names, as CUDA reads it (up to the first negative one)."""
    devices = []
    for token in (t.strip() for t in value.split(",")):
        if not token or token.startswith("-"):
            break
        devices.append(token)
    return devices


def driver_gpus() -> list[str]:
    """Indices of the GPUs the NVIDIA driver lists: NVML (``nvidia-ml-py``) when importable, else
    ``nvidia-smi -L``; none without a driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return [str(i) for i in range(pynvml.nvmlDeviceGetCount())]
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no nvidia-ml-py, or no driver: NVMLError
        pass
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return re.findall(r"^GPU (\d+):", listing, re.M)


def candidates(configured: str | Sequence[str | int]) -> tuple[list[str], str]:
    """The devices a job may claim and where they came from: ``CUDA_VISIBLE_DEVICES`` when set, else the
    config's ``gpus`` list, else (``gpus: auto``) the GPUs the driver lists."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        if configured != "auto":
            log.info("config gpus %s not used: CUDA_VISIBLE_DEVICES=%s is set", list(configured), visible)
        return visible_devices(visible), "CUDA_VISIBLE_DEVICES"
    if configured != "auto":
        return [str(d) for d in configured], "config gpus"
    return driver_gpus(), "GPUs listed by the driver"


def _lock_name(device: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", device) + ".lock"


def _try_lock(path: Path, holder: str):
    """The open file of ``path`` locked by this process, or None when another process holds it."""
    fh = open(path, "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        return None
    fh.seek(0)
    fh.truncate()
    fh.write(holder + "\n")
    fh.flush()
    return fh


def _holder(path: Path) -> str:
    """Who holds a device, as its holder wrote it."""
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def claim(job: str, configured: str | Sequence[str | int], wait_minutes: float, poll_seconds: float = 2.0) -> Claim:
    """Claim one free device for this process and set ``CUDA_VISIBLE_DEVICES`` to it.

    With no device to claim, nothing changes (TensorFlow then sees no GPU and the job runs on the CPU). When
    every device is held, wait up to ``wait_minutes`` (one log line says for what), then raise
    :class:`InputError` with one line naming the devices and who holds them. A second call in the same
    process returns the first claim.
    """
    if _held:
        return _held[0][1]
    devices, source = candidates(configured)
    if not devices:
        return Claim(None, source)
    folder = lock_dir()
    holder = f"pid {os.getpid()}: {job} in {os.getcwd()}"
    deadline = time.monotonic() + wait_minutes * 60
    waiting_logged = False
    while True:
        for device in devices:
            path = folder / _lock_name(device)
            fh = _try_lock(path, holder)
            if fh is not None:
                found = Claim(device, source, devices, path)
                _held.append((fh, found))
                if source != "CUDA_VISIBLE_DEVICES":  # indices as nvidia-smi numbers them, not fastest first
                    os.environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
                os.environ["CUDA_VISIBLE_DEVICES"] = device
                log.info("claimed %s", found.describe())
                return found
        held = "; ".join(f"GPU {d} by {_holder(folder / _lock_name(d))}" for d in devices)
        if time.monotonic() >= deadline:
            raise InputError(
                f"{job}: no free GPU among {source}={','.join(devices)} after waiting {wait_minutes:g} min "
                f"(held: {held}); run at most as many GPU jobs as there are GPUs (--resources gpu=N) "
                f"or raise gpu_wait_minutes"
            )
        if not waiting_logged:
            log.warning(
                "waiting up to %g min for a free GPU among %s=%s (held: %s)",
                wait_minutes,
                source,
                ",".join(devices),
                held,
            )
            waiting_logged = True
        time.sleep(poll_seconds)
