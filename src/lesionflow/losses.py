"""Loss registries for the two networks (names as used in the config)."""

from __future__ import annotations

from typing import Callable

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="lesionflow")
def soft_dice_loss(y_true, y_pred, smooth: float = 1.0):
    """1 − soft Dice per image, averaged over the batch."""
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape)))
    inter = ops.sum(y_true * y_pred, axis=axes)
    total = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes)
    return 1.0 - (2.0 * inter + smooth) / (total + smooth)


@keras.saving.register_keras_serializable(package="lesionflow")
def soft_jaccard_loss(y_true, y_pred, smooth: float = 1.0):
    """1 − soft Jaccard per image, averaged over the batch."""
    y_true = ops.cast(y_true, y_pred.dtype)
    axes = tuple(range(1, len(y_pred.shape)))
    inter = ops.sum(y_true * y_pred, axis=axes)
    union = ops.sum(y_true, axis=axes) + ops.sum(y_pred, axis=axes) - inter
    return 1.0 - (inter + smooth) / (union + smooth)


def _bce(y_true, y_pred):
    return ops.mean(keras.losses.binary_crossentropy(y_true, y_pred), axis=(1, 2))


@keras.saving.register_keras_serializable(package="lesionflow")
def bce_dice_loss(y_true, y_pred):
    return _bce(y_true, y_pred) + soft_dice_loss(y_true, y_pred)


@keras.saving.register_keras_serializable(package="lesionflow")
def bce_jaccard_loss(y_true, y_pred):
    return _bce(y_true, y_pred) + soft_jaccard_loss(y_true, y_pred)


#: Segmentation losses (config ``segmentation.training.loss``).
SEGMENTATION_LOSSES: dict[str, Callable[[], object]] = {
    "bce": lambda: keras.losses.BinaryCrossentropy(),
    "bce_dice": lambda: bce_dice_loss,
    "bce_jaccard": lambda: bce_jaccard_loss,
}

#: Classification losses (config ``classification.training.loss``); called with ``alpha`` and ``gamma``
#: (``focal_alpha``, ``focal_gamma``), which only the focal loss uses.
CLASSIFICATION_LOSSES: dict[str, Callable[..., object]] = {
    "focal": lambda *, alpha, gamma: keras.losses.CategoricalFocalCrossentropy(alpha=alpha, gamma=gamma),
    "crossentropy": lambda *, alpha, gamma: keras.losses.CategoricalCrossentropy(),
}
