"""The original project's augmentation input pipeline (Keras 2 ``ImageDataGenerator``), as a benchmark baseline.

The original fed image and mask through two ``ImageDataGenerator.flow`` iterators with the same seed,
zipped, so both got the same random transform. Keras 3 removed ``ImageDataGenerator``; ``tf_keras``
(the Keras 2 package) still has it and is used when it is installed (``pip install --no-deps tf_keras``;
it is not a dependency of the project). Otherwise :class:`SyncedFlow` re-implements, with NumPy/SciPy,
what Keras 2 did for the settings used here: per batch ``np.random.seed(seed + batches_seen)``, then per
image a random rotation, width/height shift and flips drawn from the global NumPy generator, and
``scipy.ndimage.affine_transform`` (order 1) per channel of each image, on float32 copies.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
from scipy import ndimage

#: Augmentation settings of the baseline: flips, rotation and 10% width/height shifts.
SETTINGS = dict(
    rotation_range=180,
    width_shift_range=0.1,
    height_shift_range=0.1,
    horizontal_flip=True,
    vertical_flip=True,
    fill_mode="reflect",
)


def keras2_synced(images: np.ndarray, masks: np.ndarray, batch_size: int, seed: int) -> tuple[Iterator, str]:
    """Zipped (image batch, mask batch) iterator the Keras 2 way; also names the implementation used."""
    try:
        from tf_keras.preprocessing.image import ImageDataGenerator
    except Exception:  # tf_keras absent or incompatible: the faithful re-implementation
        return zip(
            SyncedFlow(images, batch_size, seed), SyncedFlow(masks, batch_size, seed)
        ), "NumPy/SciPy re-implementation of ImageDataGenerator (tf_keras not importable)"
    import tf_keras

    image_flow = ImageDataGenerator(**SETTINGS).flow(images, batch_size=batch_size, seed=seed, shuffle=True)
    mask_flow = ImageDataGenerator(**SETTINGS).flow(masks, batch_size=batch_size, seed=seed, shuffle=True)
    return zip(image_flow, mask_flow), f"tf_keras {tf_keras.__version__} ImageDataGenerator ×2"


class SyncedFlow:
    """``ImageDataGenerator(**SETTINGS).flow(x, batch_size, seed=seed)`` of Keras 2, re-implemented."""

    def __init__(self, x: np.ndarray, batch_size: int, seed: int) -> None:
        self.x = np.asarray(x, dtype=np.float32)  # as NumpyArrayIterator stores it
        self.batch_size = batch_size
        self.seed = seed
        self.batches_seen = 0
        self.batch_index = 0
        self.order = np.arange(len(self.x))

    def __iter__(self) -> "SyncedFlow":
        return self

    def __next__(self) -> np.ndarray:
        n = len(self.x)
        np.random.seed(self.seed + self.batches_seen)
        if self.batch_index == 0:
            self.order = np.random.permutation(n)
        start = (self.batch_index * self.batch_size) % n
        if n > start + self.batch_size:
            self.batch_index += 1
        else:
            self.batch_index = 0
        self.batches_seen += 1
        index = self.order[start : start + self.batch_size]
        batch = np.zeros((len(index),) + self.x.shape[1:], dtype=np.float32)
        for i, j in enumerate(index):
            x = self.x[j].astype(np.float32)  # Keras 2 copies each sample with astype
            batch[i] = apply_transform(x, random_transform(x.shape))
        return batch


def random_transform(shape: tuple[int, ...]) -> dict:
    """Keras 2 ``get_random_transform`` for SETTINGS (row axis 0, column axis 1), global NumPy RNG."""
    s = SETTINGS
    theta = np.random.uniform(-s["rotation_range"], s["rotation_range"])
    tx = np.random.uniform(-s["height_shift_range"], s["height_shift_range"]) * shape[0]
    ty = np.random.uniform(-s["width_shift_range"], s["width_shift_range"]) * shape[1]
    flip_h = (np.random.random() < 0.5) * s["horizontal_flip"]
    flip_v = (np.random.random() < 0.5) * s["vertical_flip"]
    return dict(theta=theta, tx=tx, ty=ty, flip_horizontal=flip_h, flip_vertical=flip_v)


def apply_transform(x: np.ndarray, p: dict) -> np.ndarray:
    """Keras 2 ``apply_affine_transform`` (rotation + shift about the centre) then the flips."""
    theta = np.deg2rad(p["theta"])
    rotation = np.array([[np.cos(theta), -np.sin(theta), 0], [np.sin(theta), np.cos(theta), 0], [0, 0, 1]])
    shift = np.array([[1, 0, p["tx"]], [0, 1, p["ty"]], [0, 0, 1]])
    matrix = rotation @ shift
    h, w = x.shape[0], x.shape[1]
    ox, oy = float(h) / 2 - 0.5, float(w) / 2 - 0.5
    offset = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]])
    reset = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]])
    matrix = offset @ matrix @ reset
    matrix[:, [0, 1]] = matrix[:, [1, 0]]  # Keras 2's x/y swap for row-major arrays (M' = PMP)
    matrix[[0, 1]] = matrix[[1, 0]]
    channels = np.rollaxis(x, 2, 0)
    out = np.stack(
        [
            ndimage.affine_transform(c, matrix[:2, :2], matrix[:2, 2], order=1, mode=SETTINGS["fill_mode"], cval=0.0)
            for c in channels
        ],
        axis=0,
    )
    out = np.rollaxis(out, 0, 3)
    if p["flip_horizontal"]:
        out = out[:, ::-1]
    if p["flip_vertical"]:
        out = out[::-1]
    return out
