"""Running one workflow job: log to the job's log file, time it, turn bad input into one clear line."""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator, Mapping

from . import resources as job_resources
from .diskspace import describe, out_of_space
from .errors import InputError

log = logging.getLogger("lesionflow")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@contextmanager
def job(
    name: str,
    log_path: str | Path | None = None,
    threads: int | None = None,
    outputs: Iterable[str | Path] = (),
    resources: Mapping[str, object] | None = None,
) -> Iterator[logging.Logger]:
    """Context for a job script.

    Logging (and the stdout and stderr of libraries such as Keras and tqdm) goes to ``log_path``; the first line
    records the start time, the last a one-line summary: the elapsed time and what the job wrote
    (``outputs``, e.g. ``snakemake.output``; a folder is counted in files). An :class:`InputError`, or a
    write that failed for lack of space (:mod:`lesionflow.diskspace`), ends the process with exit status 1
    and one line as the last line of the log and of stderr. With ``resources`` (``snakemake.resources``) the
    log says which attempt this is and what it asked for, and warns when a network job's memory is too
    small to start.
    """
    stream = sys.stderr
    console = os.fdopen(os.dup(2), "w", buffering=1)  # where Snakemake shows the job's stderr
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "a", buffering=1)
        for fd in (1, 2):  # Keras progress goes to stdout; TensorFlow and tqdm write to stderr
            os.dup2(stream.fileno(), fd)
        sys.stdout = sys.stderr = stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    if threads:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    start = time.perf_counter()
    log.info("job %s started at %s", name, _now())
    if resources is not None:  # e.g. snakemake.resources: which attempt, and what it asked the scheduler for
        log.info("%s", job_resources.describe(resources))
        if warning := job_resources.too_little_memory(resources):
            log.warning("%s", warning)
            print(f"WARNING: {name}: {warning}", file=console, flush=True)
    try:
        yield log
    except InputError as exc:
        _fail(name, str(exc), console)
    except Exception as exc:
        if not out_of_space(exc):
            raise
        outputs = [Path(out) for out in outputs]
        # Without running finalisers: HDF5 objects left open by the failed write can crash the interpreter's
        # shutdown (a segmentation fault instead of this line). Temporary files are gone already: every
        # ``atomic_path`` block the error passed through removed its own.
        _fail(name, describe(exc, fallback=outputs[0].parent if outputs else Path.cwd()), console, at_once=True)
    log.info("job %s finished at %s in %.1f s%s", name, _now(), time.perf_counter() - start, _wrote(outputs))


def _fail(name: str, message: str, console, at_once: bool = False) -> None:
    """End the job with exit status 1: the message as the last line of the log (if the log can still be
    written; on a full disk it may not) and as one ``ERROR:`` line where Snakemake shows the job's stderr;
    ``at_once`` skips the interpreter's clean-up."""
    try:
        log.error("job %s failed: %s", name, message)
    except OSError:
        pass
    print(f"ERROR: {message}", file=console, flush=True)
    if at_once:
        os._exit(1)
    sys.exit(1)


def _wrote(outputs: Iterable[str | Path]) -> str:
    """``: wrote a (1.2 MB), b/ (35 files)`` for the outputs that exist, or nothing."""
    parts = []
    for out in map(Path, outputs):
        if out.is_dir():
            parts.append(f"{out}/ ({sum(1 for p in out.iterdir() if p.is_file())} files)")
        elif out.is_file():
            parts.append(f"{out} ({out.stat().st_size / 1e6:.1f} MB)")
    return f": wrote {', '.join(parts)}" if parts else ""
