"""Files in folders (empty files by name, the files below a folder) and small tmpfs disks that fill up."""

from __future__ import annotations

import subprocess
from pathlib import Path


def touch(folder: Path, *names: str) -> None:
    """Empty files ``names`` in ``folder`` (made if missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(b"")


def files_below(root: Path) -> list[str]:
    """The files below ``root``, as sorted paths relative to it."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


class SmallDisk:
    """A tmpfs of a given size at ``path``, grown or shrunk with :meth:`resize`, unmounted at the end.

    Mounting needs root (the tests run as root, as CI does); use the ``small_disk`` fixture of conftest.py.
    """

    def __init__(self, path: Path, kilobytes: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(path)], check=True)

    def resize(self, kilobytes: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={kilobytes}k", str(self.path)], check=True)

    def unmount(self) -> None:
        subprocess.run(["umount", "-l", str(self.path)], check=True)
