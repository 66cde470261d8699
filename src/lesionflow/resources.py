"""What a job asks its scheduler for, growing with each retry, so that a retry after a time-limit or
out-of-memory kill can succeed.

The rules' ``mem_mb`` and ``runtime`` are functions of Snakemake's ``attempt`` (1 for the first run, 2 for
the first retry, …): the configured amount times ``retry.mem_factor`` or ``retry.runtime_factor`` per retry,
never more than ``retry.max_mem_mb`` or ``retry.max_runtime``. The job's log says which attempt it is and
what was asked for (:func:`describe`); a network job given less memory than TensorFlow needs to start says so
at once (:func:`too_little_memory`).
"""

from __future__ import annotations

import math
from typing import Mapping

#: Memory a network job needs before it reads anything: TensorFlow and Keras loaded, a small model built.
NETWORK_JOB_MIN_MEM_MB = 1500


def grown(base: int, attempt: int, factor: float, maximum: int) -> int:
    """``base`` on the first attempt, ``factor`` times more on each retry, at most ``maximum`` (and never
    less than ``base``)."""
    return max(int(base), min(int(maximum), math.ceil(base * factor ** (max(1, int(attempt)) - 1))))


def _as_dict(resources: Mapping[str, object]) -> dict[str, object]:
    """A plain dict of ``snakemake.resources`` (a named list with ``items()``) or of a mapping."""
    return dict(resources.items())


def describe(resources: Mapping[str, object]) -> str:
    """``attempt 2: asked for 6000 MB of memory, 60 min, 1 GPU`` from a job's ``snakemake.resources``."""
    resources = _as_dict(resources)
    asked = []
    if resources.get("mem_mb") is not None:
        asked.append(f"{resources['mem_mb']} MB of memory")
    if resources.get("runtime") is not None:
        asked.append(f"{resources['runtime']} min")
    if resources.get("gpu"):
        asked.append(f"{resources['gpu']} GPU")
    return f"attempt {resources.get('attempt', 1)}: asked for {', '.join(asked) or 'no resources'}"


def too_little_memory(resources: Mapping[str, object]) -> str | None:
    """The warning for a network job (one that asks for a GPU) whose ``mem_mb`` is below what TensorFlow
    needs to start; None when it is enough or unknown."""
    resources = _as_dict(resources)
    mem_mb = resources.get("mem_mb")
    if resources.get("gpu") and isinstance(mem_mb, (int, float)) and mem_mb < NETWORK_JOB_MIN_MEM_MB:
        return (
            f"mem_mb={int(mem_mb)} is less than a network job needs to start TensorFlow (about "
            f"{NETWORK_JOB_MIN_MEM_MB} MB): expect it to be killed for lack of memory; raise "
            "<stage>.resources.mem_mb in the config"
        )
    return None
