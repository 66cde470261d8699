"""``tf.data`` input pipelines with the same random geometric augmentation for an image and its mask.

A training epoch is a pure function of (seed, epoch): its order is a stateless shuffle keyed by both and
each element gets its own augmentation seed from the same key, so every epoch is shuffled and augmented
afresh, the same epoch comes out the same whatever the number of parallel calls, and a training run resumed
at epoch k sees exactly what an uninterrupted one saw there. Flips, 90° rotations (together: the 8
symmetries of the square) and shifts (reflect-pad, then a random crop of the original size).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from .settings import Augmentation


def _augment(x: tf.Tensor, seed: tf.Tensor, aug: Augmentation, size: int) -> tf.Tensor:
    """Apply one random transform to ``x`` (H×W×C; image and mask stacked on channels)."""
    seeds = tf.random.experimental.stateless_split(seed, 4)
    if aug.flip:
        x = tf.image.stateless_random_flip_left_right(x, seeds[0])
        x = tf.image.stateless_random_flip_up_down(x, seeds[1])
    if aug.rotate90:
        k = tf.random.stateless_uniform([], seeds[2], 0, 4, dtype=tf.int32)
        x = tf.image.rot90(x, k)
    if aug.rotation_range > 0 or aug.fill != "reflect":
        return _rotate_and_shift(x, tf.random.experimental.stateless_split(seeds[3], 1)[0], aug, size)
    pad = int(round(aug.shift * size))
    if pad > 0:
        x = tf.pad(x, [[pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        x = tf.image.stateless_random_crop(x, [size, size, tf.shape(x)[-1]], seeds[3])
    return x


def _rotate_and_shift(x: tf.Tensor, seed: tf.Tensor, aug: Augmentation, size: int) -> tf.Tensor:
    """A random rotation by up to ``rotation_range`` degrees either way about the centre and a shift by up to
    ``shift`` of the size, as one bilinear projective transform whose outside is filled by ``fill`` (as Keras'
    ``ImageDataGenerator`` does with ``rotation_range``, ``width/height_shift_range`` and ``fill_mode``)."""
    draws = tf.random.stateless_uniform([3], seed, -1.0, 1.0)
    angle = draws[0] * aug.rotation_range * np.pi / 180.0
    dx, dy = draws[1] * aug.shift * size, draws[2] * aug.shift * size
    cos, sin = tf.cos(angle), tf.sin(angle)
    centre = (size - 1) / 2.0
    # maps each output pixel (x, y) to the input pixel it samples
    transform = tf.stack(
        [
            cos,
            -sin,
            centre - cos * centre + sin * centre - dx,
            sin,
            cos,
            centre - sin * centre - cos * centre - dy,
            0.0,
            0.0,
        ]
    )
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=x[None],
        transforms=tf.cast(transform[None], tf.float32),
        output_shape=tf.constant([size, size]),
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode=aug.fill.upper(),
    )[0]
    return out


def epoch_keys(seed: int, epoch: int | tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The stateless keys of one training epoch: (shuffle key, augmentation key), each an int64 pair.

    ``epoch`` is an int or a scalar integer tensor (as inside ``tf.data.Dataset.flat_map``).
    """
    key = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    shuffle_key, augment_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    return shuffle_key, augment_key


def make_dataset(
    images: np.ndarray,
    indices: Sequence[int],
    targets: np.ndarray,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    augmentation: Augmentation | None = None,
    target_is_mask: bool = False,
    epoch: int | tf.Tensor = 0,
) -> tf.data.Dataset:
    """Batches of (float32 image 0–255, target) read lazily from the (memory-mapped) ``images`` array.

    ``targets`` is indexed like ``images``: masks (N×S×S, 0/1) or one-hot labels (N×C).
    Training batches are those of epoch ``epoch`` (an int, or a scalar tensor inside ``flat_map``): shuffled
    and augmented by keys drawn from (``seed``, ``epoch``) only, so each epoch differs from the others and
    is the same every time it is made. Others keep their order and ignore ``epoch``.
    """
    indices = np.asarray(indices, dtype=np.int64)
    size = images.shape[1]
    target_shape = (size, size, 1) if target_is_mask else targets.shape[1:]

    def load(i):
        def fetch(j):
            j = int(j)
            return images[j], np.asarray(targets[j], dtype=np.float32)

        img, tgt = tf.numpy_function(fetch, [i], (tf.uint8, tf.float32))
        img = tf.cast(tf.reshape(img, (size, size, 3)), tf.float32)
        return img, tf.reshape(tgt, target_shape)

    if not training:
        ds = tf.data.Dataset.from_tensor_slices(indices).map(
            load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)

    shuffle_key, augment_key = epoch_keys(seed, epoch)
    order = tf.random.experimental.stateless_shuffle(tf.constant(indices), seed=shuffle_key)
    element_seeds = tf.random.experimental.stateless_split(augment_key, len(indices))
    channels = 3 + (1 if target_is_mask else 0)

    def load_augmented(i, element_seed):
        img, tgt = load(i)
        if augmentation is None:
            return img, tgt
        if target_is_mask:
            both = _augment(tf.concat([img, tgt], axis=-1), element_seed, augmentation, size)
            both = tf.ensure_shape(both, (size, size, channels))
            return both[..., :3], tf.cast(both[..., 3:] >= 0.5, tf.float32)  # masks stay 0/1
        return tf.ensure_shape(_augment(img, element_seed, augmentation, size), (size, size, 3)), tgt

    ds = tf.data.Dataset.from_tensor_slices((order, element_seeds))
    ds = ds.map(load_augmented, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
