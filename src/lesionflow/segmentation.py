"""The segmentation stage: train one U-Net per fold; summarise its held-out scores (prediction: :mod:`.predictor`)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from .augment import make_dataset
from .cache import Cache
from .losses import SEGMENTATION_LOSSES
from .models import build_unet
from .settings import SegmentationTraining
from .training import fit

log = logging.getLogger(__name__)


def train_fold(
    cache: Cache,
    folds: np.ndarray,
    fold: int,
    settings: SegmentationTraining,
    work_dir: str | Path,
    model_out: str | Path,
    history_out: str | Path,
    data_key: str = "",
) -> pd.DataFrame:
    """Train the U-Net of ``fold`` on the other folds of ``cache`` (images + masks).

    ``data_key`` (a fingerprint of the input files) keeps a killed job from resuming on other data.
    """
    train_idx = np.flatnonzero(folds != fold)
    val_idx = np.flatnonzero(folds == fold)
    log.info("fold %d: %d training, %d validation images", fold, len(train_idx), len(val_idx))
    common = dict(
        images=cache.images,
        targets=cache.masks,
        batch_size=settings.batch_size,
        seed=settings.seed + fold,
        target_is_mask=True,
    )
    train = partial(
        make_dataset, indices=train_idx, training=True, augmentation=settings.augmentation, **common
    )  # train(epoch=e)
    val = make_dataset(indices=val_idx, training=False, **common)
    model = build_unet(
        settings.model.encoder,
        settings.image_size,
        weights=settings.model.encoder_weights,
        decoder_filters=settings.model.decoder_filters,
        decoder=settings.model.decoder,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(settings.schedule.learning_rate),
        loss=SEGMENTATION_LOSSES[settings.loss](),
        metrics=[keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="jaccard")],
        jit_compile=settings.speed.xla,
    )
    return fit(
        model,
        train,
        val,
        settings.schedule,
        work_dir,
        model_out,
        history_out,
        key=data_key,
        tensorboard_dir=Path(model_out).parent / "tensorboard",
    )


def summarise_folds(per_image: pd.DataFrame) -> dict:
    """Per-fold and overall means of the per-image metrics (the metrics JSON)."""
    from .metrics import summarise_segmentation

    per_fold = {f"fold_{k}": summarise_segmentation(group) for k, group in per_image.groupby("fold")}
    folds = list(per_fold.values())
    mean = {key: float(np.mean([f[key] for f in folds])) for key in folds[0]}
    return {"folds": per_fold, "mean": mean, "n_images": int(len(per_image))}
