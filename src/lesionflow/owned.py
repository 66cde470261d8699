"""What the workflow wrote into a folder it shares with the user, so that it only replaces or deletes that.

A folder the workflow writes into but does not own outright (``data_dir`` for the demo generator) gets a
marker file naming every file the workflow wrote there, with its size and SHA-256 (no times, so the same
files give the same marker). The workflow replaces or deletes only files the marker lists (edits to them
included); anything else in the folder is the user's and is never touched. A folder without the marker
that holds any file is the user's as a whole.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import InputError
from .fetch import sha256_file


@dataclass(frozen=True)
class WrittenFile:
    """A file as the workflow wrote it."""

    size: int
    sha256: str

    @classmethod
    def of(cls, path: Path) -> "WrittenFile":
        return cls(size=path.stat().st_size, sha256=sha256_file(path))


@dataclass(frozen=True)
class Manifest:
    """The marker's contents: the files written (paths relative to the folder) and what wrote them."""

    written_by: str
    files: Mapping[str, WrittenFile]
    details: Mapping[str, Any]

    def lists(self, relative: str) -> bool:
        """Whether the workflow wrote ``relative`` (a path relative to the folder)."""
        return relative in self.files


def read_manifest(folder: Path, marker: str) -> Manifest | None:
    """The manifest in ``folder/marker``; None when there is no marker. A marker that does not parse is an
    error: the folder may hold the user's data, and only a readable list says which files are not."""
    path = folder / marker
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        files = {str(rel): WrittenFile(**entry) for rel, entry in raw["files"].items()}
        return Manifest(written_by=str(raw["written_by"]), files=files, details=dict(raw.get("details") or {}))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(
            f"unreadable marker ({type(exc).__name__}: {exc}); it lists the files the workflow "
            "wrote here, so nothing is changed until it is fixed or the folder emptied",
            path,
        ) from None


def write_manifest(folder: Path, marker: str, manifest: Manifest) -> None:
    """Write the marker atomically (a temporary file in ``folder``, then a rename)."""
    from .imageio import atomic_path

    data = {
        "written_by": manifest.written_by,
        "details": dict(manifest.details),
        "files": {rel: asdict(manifest.files[rel]) for rel in sorted(manifest.files)},
    }
    with atomic_path(folder / marker) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def files_in(folder: Path, skip: Callable[[str], bool] = lambda name: False) -> Iterator[str]:
    """Every file below ``folder`` (links too), relative, in no particular order, leaving out top-level
    entries whose name ``skip`` accepts; empty folders hold no files."""
    for root, dirs, names in os.walk(folder):
        relative_root = Path(root).relative_to(folder)
        if relative_root == Path("."):
            dirs[:] = [d for d in dirs if not skip(d)]
            names = [n for n in names if not skip(n)]
        for name in names + [d for d in dirs if (Path(root) / d).is_symlink()]:
            yield (relative_root / name).as_posix()
