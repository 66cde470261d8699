"""Training batches: shuffled and augmented afresh every epoch, each epoch a pure function of (seed, epoch)."""

from __future__ import annotations

import numpy as np

from lesionflow.augment import Augmentation, make_dataset

N, SIZE, BATCH = 12, 8, 5


def _images_and_masks() -> tuple[np.ndarray, np.ndarray]:
    """Random images whose red channel is 200 × the mask, so that a transform of one shows in the other."""
    rng = np.random.default_rng(1)
    masks = (rng.random((N, SIZE, SIZE)) > 0.5).astype(np.uint8)
    images = rng.integers(0, 256, (N, SIZE, SIZE, 3), dtype=np.uint8)
    images[..., 0] = masks * 200
    return images, masks


DEFAULT_AUGMENTATION = Augmentation(flip=True, rotate90=True, shift=0.1, rotation_range=0.0, fill="reflect")


def _epoch(
    epoch: int, seed: int = 3, augmentation: Augmentation | None = DEFAULT_AUGMENTATION, targets: str = "masks"
) -> tuple[np.ndarray, np.ndarray]:
    """All images and targets of one training epoch, in the order they come."""
    images, masks = _images_and_masks()
    labels = np.eye(N, dtype=np.float32)  # one-hot of the image's own index: shows the order
    ds = make_dataset(
        images=images,
        indices=np.arange(N),
        targets=masks if targets == "masks" else labels,
        batch_size=BATCH,
        training=True,
        seed=seed,
        augmentation=augmentation,
        target_is_mask=targets == "masks",
        epoch=epoch,
    )
    batches = list(ds.as_numpy_iterator())
    assert [len(x) for x, _ in batches] == [5, 5, 2]  # one epoch; the last batch is the remainder
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def test_each_epoch_has_its_own_order():
    orders = [_epoch(epoch, augmentation=None, targets="labels")[1].argmax(axis=1) for epoch in range(3)]
    for order in orders:
        assert sorted(order) == list(range(N))  # every image once
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[1], orders[2])
    assert not np.array_equal(orders[0], np.arange(N))


def test_each_epoch_draws_fresh_transforms_and_the_mask_follows_its_image():
    unaugmented, _ = _images_and_masks()
    transformed = []
    for epoch in range(2):
        images, labels = _epoch(epoch, targets="labels")
        transformed.append(images[labels.argmax(axis=1).argsort()])  # back in image order
        images, masks = _epoch(epoch)
        np.testing.assert_array_equal(images[..., 0], masks[..., 0] * 200)
    first, second = transformed
    changed = [not np.array_equal(a, b) for a, b in zip(first, unaugmented.astype(np.float32))]
    redrawn = [not np.array_equal(a, b) for a, b in zip(first, second)]
    assert sum(changed) >= N - 2 and sum(redrawn) >= N - 2, (changed, redrawn)


def test_the_same_seed_and_epoch_give_the_same_batches_another_seed_others():
    for epoch in (0, 4):
        first, again = _epoch(epoch), _epoch(epoch)
        np.testing.assert_array_equal(first[0], again[0])
        np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(_epoch(0)[0], _epoch(0, seed=4)[0])


def test_validation_batches_keep_their_order_and_pixels():
    images, masks = _images_and_masks()
    ds = make_dataset(
        images=images,
        indices=[3, 1, 2],
        targets=masks,
        batch_size=2,
        training=False,
        seed=3,
        augmentation=Augmentation(flip=True, rotate90=True, shift=0.1, rotation_range=0.0, fill="reflect"),
        target_is_mask=True,
    )
    got = np.concatenate([x for x, _ in ds.as_numpy_iterator()])
    np.testing.assert_array_equal(got, images[[3, 1, 2]].astype(np.float32))


def _one_epoch(images: np.ndarray, masks: np.ndarray, augmentation: Augmentation) -> tuple[np.ndarray, np.ndarray]:
    ds = make_dataset(
        images=images,
        indices=np.arange(len(images)),
        targets=masks,
        batch_size=len(images),
        training=True,
        seed=0,
        augmentation=augmentation,
        target_is_mask=True,
    )
    x, y = next(ds.as_numpy_iterator())
    return x, y[..., 0]


def test_rotation_by_any_angle_turns_image_and_mask_together_and_fills_the_corners():
    size = 32
    yy, xx = np.mgrid[0:size, 0:size]
    bar = (np.abs(yy - size // 2) < 3) & (np.abs(xx - size // 2) < 12)  # a horizontal bar
    images = np.zeros((6, size, size, 3), np.uint8)
    images[..., 1] = 120  # a flat channel: whatever the fill, the corners keep its value
    images[..., 0] = bar * 200
    masks = np.repeat(bar[None].astype(np.uint8), 6, axis=0)
    rotate = Augmentation(flip=False, rotate90=False, shift=0.0, rotation_range=180.0, fill="nearest")
    x, y = _one_epoch(images, masks, rotate)
    dihedral = {np.rot90(m, k).tobytes() for k in range(4) for m in (bar, bar[:, ::-1])}
    assert sum(y[i].astype(bool).tobytes() not in dihedral for i in range(6)) >= 5  # angles between right angles
    assert set(np.unique(y).tolist()) <= {0.0, 1.0}  # masks stay binary
    for image, mask in zip(x, y):
        lesion = image[..., 0] > 100
        assert (lesion & (mask > 0)).sum() / (lesion | (mask > 0)).sum() > 0.85  # the mask follows its image
        assert abs(mask.sum() - bar.sum()) < 0.2 * bar.sum()  # turned, not cut
    np.testing.assert_allclose(x[..., 1], 120, atol=1e-3)  # no black corners with fill: nearest


def test_fill_nearest_repeats_the_edge_where_reflect_mirrors_the_image():
    size = 16
    ramp = np.tile(np.linspace(0, 240, size).astype(np.uint8)[None, :], (size, 1))  # brighter to the right
    images = np.repeat(np.stack([ramp] * 3, axis=-1)[None], 8, axis=0)
    masks = np.zeros((8, size, size), np.uint8)
    shifts = {}
    for fill in ("reflect", "nearest"):
        shift = Augmentation(flip=False, rotate90=False, shift=0.25, rotation_range=0.0, fill=fill)
        shifts[fill] = _one_epoch(images, masks, shift)[0][..., 0]
    # pixels moved in from beyond an edge repeat it (the ramp stays monotonic) or mirror the image (it turns)
    steps = {fill: np.diff(shifted, axis=2) for fill, shifted in shifts.items()}
    assert (steps["nearest"] >= -1e-3).all()
    assert (steps["reflect"] < -1).any(axis=(1, 2)).sum() >= 4
