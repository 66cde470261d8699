"""Provenance of a trained model: the settings, a fingerprint of its data, package versions, device."""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

PACKAGES = ("lesionflow", "tensorflow", "tensorflow-cpu", "keras", "numpy", "scikit-image", "scikit-learn",
            "pandas", "pillow", "snakemake")


def fingerprint(paths: Iterable[str | Path], chunk: int = 1 << 20) -> str:
    """SHA-256 over the contents of ``paths`` (in the order given)."""
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return {"python": sys.version.split()[0], "platform": platform.platform(), **found}


def record(settings: dict[str, Any], inputs: Iterable[str | Path], device: str, **extra: Any) -> dict[str, Any]:
    inputs = [str(p) for p in inputs]
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": settings,
        "inputs": inputs,
        "data_sha256": fingerprint(inputs),
        "versions": versions(),
        "device": device,
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
