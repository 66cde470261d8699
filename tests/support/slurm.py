"""A real single-node SLURM cluster for tests: start it once per session, run Snakemake on it.

Usage in a test module (or register it once for all modules in conftest.py with
``pytest_plugins = ["support.slurm"]``)::

    from support.slurm import slurm_cluster  # noqa: F401  (the fixture)

    @pytest.mark.slurm
    def test_workflow_on_slurm(slurm_cluster, tmp_path):
        proc = slurm_cluster.run_snakemake(["--snakefile", SNAKEFILE, "all"], cwd=tmp_path)
        jobs = slurm_cluster.jobs(run_id=proc.run_id)
        assert all(job.state == "COMPLETED" for job in jobs)
        assert all(job.gpus == 1 for job in jobs if job.rule.startswith("train_"))

The fixture runs ``tests/slurm/start_slurm.sh`` (root; it installs Debian's slurm-wlm
packages when missing) and always ``tests/slurm/stop_slurm.sh`` at the end of the session.
It skips the tests only when the packages cannot be installed here (exit status 3 of the
start script: not root, no apt-get, apt-get failed); any other failure to start is an error.

Environment: LESIONFLOW_SLURM_DIR (base dir, default /tmp/lesionflow-slurm),
LESIONFLOW_SLURM_KEEP=1 leaves the cluster running after the session (for debugging).
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import pytest

REPO = Path(__file__).resolve().parents[2]
SLURM_TEST_DIR = REPO / "tests" / "slurm"
START_SCRIPT = SLURM_TEST_DIR / "start_slurm.sh"
STOP_SCRIPT = SLURM_TEST_DIR / "stop_slurm.sh"
TEST_PROFILE = SLURM_TEST_DIR / "profile"
USER_PROFILE = REPO / "profiles" / "slurm"
DEFAULT_BASE_DIR = Path("/tmp/lesionflow-slurm")
PARTITION = "main"
EXIT_CANNOT_INSTALL = 3
START_TIMEOUT_S = 900  # a fresh machine runs apt-get update + install first

# variables of the caller that must not leak into the jobs (sbatch --export=ALL)
_SCRUBBED_PREFIXES = ("SLURM_", "SBATCH_", "SRUN_", "SALLOC_")
_SCRUBBED_VARS = (
    "CUDA_VISIBLE_DEVICES",
    "GPU_DEVICE_ORDINAL",
    "ROCR_VISIBLE_DEVICES",
    "HIP_VISIBLE_DEVICES",
    "SNAKEMAKE_PROFILE",  # a user's default profile would be merged into ours
    "SNAKEMAKE_SLURM_PARTITIONS",
)


class SlurmUnavailable(Exception):
    """The SLURM packages cannot be installed on this machine (tests are skipped)."""


class SlurmStartError(RuntimeError):
    """start_slurm.sh failed for another reason (tests error out)."""


@dataclass(frozen=True)
class SlurmJob:
    """One job as slurmctld knows it (finished jobs stay for MinJobAge=300 s)."""

    job_id: int
    name: str  # Snakemake's run id for jobs submitted by the plugin
    state: str  # PENDING, RUNNING, COMPLETED, FAILED, ...
    comment: str  # the plugin writes rule_<rule>[_wildcards_<values>]
    partition: str
    exit_code: str
    start: datetime | None
    end: datetime | None
    gpus: int  # GPUs allocated to the job (JOB_GRES / TresPerJob)
    fields: dict = field(repr=False, compare=False, default_factory=dict)

    @property
    def rule(self) -> str:
        """The Snakemake rule of the job ('' if not submitted by the plugin)."""
        m = re.match(r"^rule_(.+?)(?:_wildcards_.*)?$", self.comment)
        return m.group(1) if m else ""

    @property
    def wildcards(self) -> str:
        m = re.match(r"^rule_.+?_wildcards_(.*)$", self.comment)
        return m.group(1) if m else ""


@dataclass
class SnakemakeRun:
    """Outcome of SlurmCluster.run_snakemake."""

    args: list[str]
    returncode: int
    output: str  # stdout and stderr together
    run_id: str | None  # "SLURM run ID" = job name of every job of this run


@dataclass(frozen=True)
class SlurmCluster:
    """What a test needs to use the cluster (the value of the ``slurm_cluster`` fixture)."""

    base_dir: Path
    partition: str
    profile: Path  # tests/slurm/profile, absolute
    start_output: str = field(repr=False, default="")

    # ------------------------------------------------------------------ running snakemake
    def env(self, extra: dict | None = None) -> dict:
        """Environment for snakemake: the current Python's bin/ first on PATH (jobs run
        `python -m snakemake` and the rules' commands with it), no SLURM/GPU variables."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES) and k not in _SCRUBBED_VARS}
        bindir = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "/usr/bin:/bin")])
        env["LESIONFLOW_SLURM_DIR"] = str(self.base_dir)
        env.setdefault("PYTHONUNBUFFERED", "1")
        if extra:
            env.update(extra)
        return env

    def snakemake_cmd(self, args: Sequence[str]) -> list[str]:
        """`python -m snakemake --profile <tests/slurm/profile> ARGS` (targets in ARGS go
        before any --set-resources/--resources/--config, which swallow what follows)."""
        return [sys.executable, "-m", "snakemake", "--profile", str(self.profile), *map(str, args)]

    def run_snakemake(
        self,
        args: Sequence[str],
        cwd: Path | str,
        timeout: float = 600,
        check: bool = True,
        env: dict | None = None,
    ) -> SnakemakeRun:
        """Run snakemake through the test profile in `cwd`. On failure (check=True) or
        timeout, raise AssertionError with the output and the tails of the daemon logs; on
        timeout the snakemake process group is killed and the run's jobs are cancelled."""
        cmd = self.snakemake_cmd(args)
        proc = subprocess.Popen(
            cmd,
            cwd=str(cwd),
            env=self.env(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                out, _ = proc.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
            run_id = _run_id(out)
            if run_id:
                _run(["scancel", "--name", run_id], timeout=10)
            raise AssertionError(
                f"snakemake did not finish within {timeout} s: {' '.join(cmd)}\n"
                f"--- output (tail)\n{_tail(out, 80)}\n{self.diagnostics()}"
            ) from None
        run = SnakemakeRun(list(cmd), proc.returncode, out, _run_id(out))
        if check and proc.returncode != 0:
            raise AssertionError(
                f"snakemake failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"--- output (tail)\n{_tail(out, 120)}\n{self.diagnostics()}"
            )
        return run

    # ------------------------------------------------------------------ inspecting jobs
    def jobs(self, run_id: str | None = None) -> list[SlurmJob]:
        """Jobs known to slurmctld (also finished ones, for MinJobAge=300 s), oldest first;
        only those of one Snakemake run with `run_id` (SnakemakeRun.run_id)."""
        return list_jobs(run_id)

    def diagnostics(self, lines: int = 30) -> str:
        """Queue, node state and the tails of the daemon logs, for failure messages."""
        parts = []
        for cmd in (["squeue", "--states=all", "-o", "%i %j %T %r %k"], ["sinfo", "-N", "-l"]):
            parts.append(f"--- {' '.join(cmd)}\n{_run(cmd, timeout=10).stdout}")
        for name in ("slurmctld.log", "slurmd.log"):
            path = self.base_dir / "log" / name
            if path.exists():
                parts.append(f"--- tail {path}\n{_tail(path.read_text(errors='replace'), lines)}")
        return "\n".join(parts)


# ---------------------------------------------------------------------- helpers
def _run(cmd: Sequence[str], timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(cmd),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return subprocess.CompletedProcess(list(cmd), 127, "", str(e))


def _tail(text: str, n: int) -> str:
    return "\n".join(text.splitlines()[-n:])


def _run_id(output: str) -> str | None:
    m = re.search(r"SLURM run ID: (\S+)", output or "")
    return m.group(1) if m else None


def _parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None


def _parse_scontrol_line(line: str) -> dict:
    """`scontrol show job -o` prints Key=Value pairs separated by spaces; a value may
    contain spaces (then the next word has no '='). The first of a repeated key wins."""
    fields: dict[str, str] = {}
    key = None
    for word in line.split(" "):
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_:/]*)=(.*)$", word)
        if m:
            key = m.group(1)
            if key in fields:
                key = None  # e.g. the per-node "Nodes=" of -d: ignore repeats
                continue
            fields[key] = m.group(2)
        elif key is not None and word:
            fields[key] += " " + word
    return fields


def _gpu_count(gres: str) -> int:
    """GPUs in 'gpu:1', 'gres:gpu:2', 'gpu:a100:1(IDX:0)', 'gres/gpu=1', ... (0 if none)."""
    total = 0
    for item in re.split(r",(?![^()]*\))", gres or ""):
        item = re.sub(r"\(.*\)$", "", item.strip())
        m = re.match(r"^(?:gres[:/])?gpu(?::[^:=]+)?[:=](\d+)$", item)
        if m:
            total += int(m.group(1))
    return total


def list_jobs(run_id: str | None = None) -> list[SlurmJob]:
    """All jobs slurmctld still knows (squeue --states=all sees the same), via
    `scontrol show job -d -o`; only the jobs named `run_id` if given."""
    res = _run(["scontrol", "show", "job", "-d", "-o"], timeout=30)
    if res.returncode != 0:
        if "No jobs in the system" in res.stdout + res.stderr:
            return []
        raise RuntimeError(f"scontrol show job failed: {res.stderr or res.stdout}")
    jobs = []
    for line in res.stdout.splitlines():
        if not line.startswith("JobId="):
            continue
        f = _parse_scontrol_line(line.strip())
        alloc = f.get("JOB_GRES", "")
        gpus = _gpu_count(alloc) if alloc not in ("", "(null)") else 0
        job = SlurmJob(
            job_id=int(f["JobId"]),
            name=f.get("JobName", ""),
            state=f.get("JobState", ""),
            comment=f.get("Comment", "").strip() if f.get("Comment") != "(null)" else "",
            partition=f.get("Partition", ""),
            exit_code=f.get("ExitCode", ""),
            start=_parse_time(f.get("StartTime")),
            end=_parse_time(f.get("EndTime")),
            gpus=gpus,
            fields=f,
        )
        if run_id is None or job.name == run_id:
            jobs.append(job)
    return sorted(jobs, key=lambda j: j.job_id)


# the name asked for in the design notes; slurmctld (not sacct: no slurmdbd) answers
sacct_or_squeue_jobs = list_jobs


# ---------------------------------------------------------------------- start / stop
def _script_env(base_dir: Path, partition: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    env["LESIONFLOW_SLURM_DIR"] = str(base_dir)
    env["LESIONFLOW_SLURM_PARTITION"] = partition
    env["PATH"] = env.get("PATH", "") + os.pathsep + "/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"
    return env


def start_cluster(base_dir: Path | str | None = None, partition: str = PARTITION) -> SlurmCluster:
    """Run start_slurm.sh (idempotent). Raises SlurmUnavailable when the packages cannot
    be installed here, SlurmStartError for any other failure."""
    base = Path(base_dir or os.environ.get("LESIONFLOW_SLURM_DIR") or DEFAULT_BASE_DIR)
    if partition != PARTITION:
        raise ValueError(f"the test profile {TEST_PROFILE} targets partition {PARTITION!r}")
    try:
        res = subprocess.run(
            ["bash", str(START_SCRIPT)],
            env=_script_env(base, partition),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=START_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as e:
        out = e.stdout if isinstance(e.stdout, str) else (e.stdout or b"").decode(errors="replace")
        stop_cluster(base)
        raise SlurmStartError(f"start_slurm.sh did not finish in {START_TIMEOUT_S} s:\n{out}") from None
    if res.returncode == EXIT_CANNOT_INSTALL:
        raise SlurmUnavailable(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else "")
    if res.returncode != 0:
        stop_cluster(base)
        raise SlurmStartError(f"start_slurm.sh failed (exit {res.returncode}):\n{res.stdout}")
    return SlurmCluster(base_dir=base, partition=partition, profile=TEST_PROFILE, start_output=res.stdout)


def stop_cluster(base_dir: Path | str | SlurmCluster) -> str:
    """Run stop_slurm.sh for the cluster under `base_dir`; returns its output."""
    base = base_dir.base_dir if isinstance(base_dir, SlurmCluster) else Path(base_dir)
    res = _run(["bash", str(STOP_SCRIPT)], timeout=120, env=_script_env(base, PARTITION))
    if res.returncode != 0:
        sys.stderr.write(f"stop_slurm.sh failed (exit {res.returncode}):\n{res.stdout}{res.stderr}\n")
    return res.stdout + res.stderr


# One cluster per process even when several test modules import the fixture (each import
# registers its own session-scoped fixture definition): reference-counted.
_lock = threading.Lock()
_shared: dict = {"cluster": None, "users": 0}


def _acquire() -> SlurmCluster:
    with _lock:
        if _shared["cluster"] is None:
            cluster = start_cluster()
            _shared["cluster"] = cluster
            atexit.register(_stop_at_exit)
        _shared["users"] += 1
        return _shared["cluster"]


def _release() -> None:
    with _lock:
        _shared["users"] -= 1
        if _shared["users"] > 0 or _shared["cluster"] is None:
            return
        cluster, _shared["cluster"] = _shared["cluster"], None
    if os.environ.get("LESIONFLOW_SLURM_KEEP") == "1":
        return
    stop_cluster(cluster)


def _stop_at_exit() -> None:
    # safety net (e.g. pytest interrupted before fixture teardown)
    cluster = _shared.get("cluster")
    if cluster is not None and os.environ.get("LESIONFLOW_SLURM_KEEP") != "1":
        _shared["cluster"] = None
        stop_cluster(cluster)


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[SlurmCluster]:
    """A running single-node SLURM (partition 'main', one fake GPU); stopped at the end."""
    try:
        cluster = _acquire()
    except SlurmUnavailable as e:
        pytest.skip(f"SLURM cannot be installed on this machine: {e}")
    try:
        yield cluster
    finally:
        _release()
