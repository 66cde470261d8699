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


DEFAULT_AUGMENTATION = Augmentation(flip=True, rotate90=True, shift=0.1)


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
        augmentation=Augmentation(flip=True, rotate90=True, shift=0.1),
        target_is_mask=True,
    )
    got = np.concatenate([x for x, _ in ds.as_numpy_iterator()])
    np.testing.assert_array_equal(got, images[[3, 1, 2]].astype(np.float32))
