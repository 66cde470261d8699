"""A full disk or an exceeded quota, said in one line: where, how much is free there, and what the job needed.

Jobs that know what they will write check the free space first (:func:`require_free`) and stop before doing
any work; a write that fails anyway for lack of space (another job filled the disk meanwhile) is recognised
by :func:`out_of_space` and reported by :func:`describe` instead of a traceback.
"""

from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.format import open_memmap

from .errors import InputError

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
#: How libraries that do not set ``errno`` (HDF5 through h5py, for one) say it.
_NO_SPACE_WORDS = ("No space left on device", "Disk quota exceeded", "errno = 28", "errno = 122")


def out_of_space(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a full disk or an exceeded quota."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _NO_SPACE:
            return True
        if any(words in str(exc) for words in _NO_SPACE_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(path: str | Path) -> int:
    """Free bytes (for this user) on the file system that holds ``path`` or, if it does not exist yet, the
    nearest folder above it that does."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def size_text(n_bytes: float) -> str:
    """Bytes for people: ``512 kB``, ``3.2 MB``, ``1.5 GB`` (powers of 1000, as ``df -H``)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n_bytes) >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{int(n_bytes)} bytes"


def require_free(path: str | Path, needed: int, what: str) -> None:
    """Stop with one line, before anything is written, when ``path``'s file system has less than ``needed``
    bytes free; ``what`` names what needs them (e.g. ``the cache of 10015 images at 224²``)."""
    free = free_bytes(path)
    if free < needed:
        raise InputError(
            f"not enough free space: {size_text(free)} free there, but {what} needs about "
            f"{size_text(needed)}; make room (or ask for a larger quota) and run again. Nothing was "
            "written",
            path,
        )


def describe(exc: BaseException, fallback: str | Path, needed: int | None = None) -> str:
    """The one line for a write that failed for lack of space: the path being written (``fallback`` when the
    error does not name one), the free space there, and what the job needed if it is known."""
    path = getattr(exc, "filename", None) or fallback
    need = f"; this job needs about {size_text(needed)} there" if needed else ""
    return (
        f"{path}: no space left (disk full or quota exceeded): {size_text(free_bytes(path))} free there{need}; "
        "make room and run again (what was half-written was removed, nothing has a final name)"
    )


def reserved_memmap(path: str | Path, shape: tuple[int, ...], dtype: Any, what: str) -> np.memmap:
    """A new ``.npy`` file mapped for writing (``numpy.lib.format.open_memmap(mode="w+")``) whose blocks are
    reserved on disk before it is returned: a full disk or quota is then one line here, not a crash of the
    whole process (SIGBUS) when a page of a sparse file is written later. ``what`` names the contents for
    that line. Where the file system cannot reserve blocks, the free space is checked instead."""
    path = Path(path)
    dtype = np.dtype(dtype)
    require_free(path.parent, needed=128 + math.prod(shape) * dtype.itemsize, what=what)
    array = open_memmap(path, mode="w+", dtype=dtype, shape=shape)
    try:
        with open(path, "r+b") as fh:
            os.posix_fallocate(fh.fileno(), 0, os.fstat(fh.fileno()).st_size)
    except OSError as exc:
        if out_of_space(exc):
            del array
            needed = path.stat().st_size
            path.unlink()
            raise InputError(
                f"not enough free space: {size_text(free_bytes(path))} free there, but {what} "
                f"needs about {size_text(needed)}; make room (or ask for a larger quota) and run again",
                path,
            ) from None
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
            raise
    return array
