"""Run the real workflow in a copy of this checkout: a session-wide finished run of `.test/config.yaml`.

Fixtures (registered for every test module by ``pytest_plugins`` in conftest.py):

* ``demo_run``: a directory where ``snakemake --configfile .test/config.yaml --cores 8 --resources gpu=1``
  has finished (built once per session, several minutes). Do not modify it; copy it with
  :func:`copy_run` first.

Helpers: :func:`copy_checkout`, :func:`copy_run`, :func:`snakemake` (runs Snakemake, returns the finished
process), :func:`planned_jobs` (the jobs a dry run would run, with their wildcards).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TEST_CONFIG = ".test/config.yaml"
RUN_TIMEOUT_S = 1800


def copy_checkout(dest: Path) -> Path:
    """Copy the checkout's files (tracked, and untracked ones git does not ignore) to ``dest``."""
    listed = (
        subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def copy_run(run: Path, dest: Path) -> Path:
    """Copy a finished run (results, data, Snakemake's metadata), keeping modification times."""
    shutil.copytree(run, dest, symlinks=True, dirs_exist_ok=True)
    return dest


def snakemake(
    workdir: Path,
    *args: str,
    config: str | None = TEST_CONFIG,
    check: bool = True,
    timeout: float = RUN_TIMEOUT_S,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run Snakemake in ``workdir`` (with the test config unless ``config`` is None); return the process."""
    cmd = [sys.executable, "-m", "snakemake", *(["--configfile", config] if config else []), *args]
    proc = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}"
        )
    return proc


@dataclass(frozen=True)
class PlannedJob:
    rule: str
    wildcards: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __str__(self) -> str:
        """``rule k=v ...``; an empty wildcard (the base configuration's ``exp_dir``) is left out."""
        return self.rule + "".join(f" {k}={v}" for k, v in sorted(self.wildcards.items()) if v)


_RULE = re.compile(r"^(?:local)?rule (\w+):$")


def planned_jobs(workdir: Path, *args: str, config: str | None = TEST_CONFIG) -> list[PlannedJob]:
    """The jobs ``snakemake -n`` would run (its rule blocks, with wildcards), for the given extra args.

    Options such as ``--configfile``, ``--config`` and ``--resources`` take every word that follows
    them: put targets after ``"--"``, e.g. ``planned_jobs(run, "--config", "x=1", "--", "results/masks/test")``.
    """
    proc = snakemake(workdir, "-n", "--cores", "2", "--resources", "gpu=1", *args, config=config)
    jobs, rule, wildcards = [], None, {}
    for line in (proc.stdout + "\n").splitlines():
        match = _RULE.match(line.strip()) if not line.startswith(" ") else None
        if match:
            rule, wildcards = match.group(1), {}
        elif rule and line.strip().startswith("wildcards:"):
            wildcards = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", "))
        elif rule and not line.strip():
            jobs.append(PlannedJob(rule, wildcards))
            rule = None
    return [j for j in jobs if j.rule != "all"]


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """A copy of the checkout where the test config has run to the end (`rule all`)."""
    workdir = copy_checkout(tmp_path_factory.mktemp("demo_run"))
    snakemake(workdir, "--cores", "8", "--resources", "gpu=1")  # the README's command
    return workdir
