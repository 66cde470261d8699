"""Test-time augmentation: the 8 symmetries of the square and their inverses, on NumPy arrays."""

from __future__ import annotations

import numpy as np

#: The 8 symmetries of the square, as (k rotations by 90°, flip left-right) — test-time augmentation.
DIHEDRAL: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))


def transform(batch: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Apply a dihedral transform to N×H×W(×C) arrays (rotate k·90° after an optional left-right flip)."""
    out = batch[:, :, ::-1] if flip else batch
    return np.rot90(out, k, axes=(1, 2))


def inverse_transform(batch: np.ndarray, k: int, flip: bool) -> np.ndarray:
    """Undo :func:`transform` on N×H×W(×C) arrays."""
    out = np.rot90(batch, -k, axes=(1, 2))
    return out[:, :, ::-1] if flip else out
