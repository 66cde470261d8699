"""Provenance of a trained model: the settings, a fingerprint of its data, package versions, device."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

PACKAGES = (
    "lesionflow",
    "tensorflow",
    "tensorflow-cpu",
    "keras",
    "numpy",
    "scikit-image",
    "scikit-learn",
    "pandas",
    "pillow",
    "snakemake",
)


def fingerprint(paths: Iterable[str | Path], chunk: int = 1 << 20) -> str:
    """SHA-256 over the contents of ``paths`` (in the order given)."""
    return fingerprints(paths, chunk)[1]


def fingerprints(paths: Iterable[str | Path], chunk: int = 1 << 20) -> tuple[dict[str, str], str]:
    """SHA-256 of each of ``paths`` and over all of them in the order given, reading each file once."""
    total = hashlib.sha256()
    each = {}
    for path in paths:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
                total.update(block)
        each[str(path)] = digest.hexdigest()
    return each, total.hexdigest()


#: Modules whose own ``__version__`` is recorded: the code that actually ran, whichever distribution
#: provided it (``tensorflow`` comes as tensorflow, tensorflow-cpu or tensorflow[and-cuda]).
MODULES = ("lesionflow", "tensorflow", "keras", "numpy")


def versions() -> dict[str, str]:
    """Python, platform, the installed distributions of :data:`PACKAGES`, and the imported :data:`MODULES`."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    for name in MODULES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "__version__", None):
            found[name] = str(module.__version__)
    return {"python": sys.version.split()[0], "platform": platform.platform(), **found}


def gpu_environment() -> dict[str, Any]:
    """The GPU the job held: ``CUDA_VISIBLE_DEVICES`` as it ran (None when unset) and the GPUs TensorFlow
    listed (when TensorFlow was imported), so a record shows whether the device it names was really used."""
    found: dict[str, Any] = {"cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        found["tensorflow_gpus"] = [gpu.name for gpu in tf.config.list_physical_devices("GPU")]
    return found


def record(
    settings: dict[str, Any],
    inputs: Iterable[str | Path],
    device: str,
    hashes: tuple[dict[str, str], str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance of an output: ``settings``, the SHA-256 of every input file and of all of them
    together (``data_sha256``, in the order given), package versions, the ``device`` used and the GPU
    environment it ran in (:func:`gpu_environment`).

    ``hashes``: :func:`fingerprints` of ``inputs`` when the caller has them already (files are read once).
    """
    inputs = [str(p) for p in inputs]
    each, total = hashes if hashes is not None else fingerprints(inputs)
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "inputs": inputs,
        "input_sha256": each,
        "data_sha256": total,
        "versions": versions(),
        "device": device,
        **gpu_environment(),
        **extra,
    }


def write_json(path: str | Path, data: Any) -> None:
    """Write JSON atomically (temporary file, then rename)."""
    from .imageio import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
