"""The classification stage: one classifier per lesion-grouped fold, held-out scores, submission CSVs.

Prediction is :mod:`.predictor`'s."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd
from sklearn.utils.class_weight import compute_class_weight

from . import isic
from .augment import make_dataset
from .cache import Cache
from .losses import CLASSIFICATION_LOSSES
from .models import build_classifier
from .settings import ClassificationTraining
from .training import fit

log = logging.getLogger(__name__)


def class_weights(labels: np.ndarray, scheme: str) -> dict[int, float]:
    """Per-class loss weights: ``ones``, ``balanced`` (scikit-learn) or its square root ``balanced-sqrt``.

    Classes absent from ``labels`` get weight 1.
    """
    weights = np.ones(len(isic.CLASSES))
    present = np.unique(labels)
    if scheme != "ones":
        balanced = compute_class_weight("balanced", classes=present, y=labels)
        weights[present] = np.sqrt(balanced) if scheme == "balanced-sqrt" else balanced
    return {i: float(w) for i, w in enumerate(weights)}


def train_fold(
    cache: Cache,
    truth: pd.DataFrame,
    folds: np.ndarray,
    fold: int,
    settings: ClassificationTraining,
    work_dir: str | Path,
    model_out: str | Path,
    history_out: str | Path,
    data_key: str = "",
) -> pd.DataFrame:
    """Train the classifier of ``fold`` on the masked-image cache (rows aligned with ``truth``).

    ``data_key`` (a fingerprint of the input files) keeps a killed job from resuming on other data.
    """
    onehot = truth.to_numpy(dtype=np.float32)
    labels = onehot.argmax(axis=1)
    train_idx = np.flatnonzero(folds != fold)
    val_idx = np.flatnonzero(folds == fold)
    log.info(
        "fold %d: %d training, %d validation images; training classes %s",
        fold,
        len(train_idx),
        len(val_idx),
        dict(zip(isic.CLASSES, np.bincount(labels[train_idx], minlength=len(isic.CLASSES)).tolist())),
    )
    common = dict(images=cache.images, targets=onehot, batch_size=settings.batch_size, seed=settings.seed + fold)
    train = partial(
        make_dataset, indices=train_idx, training=True, augmentation=settings.augmentation, **common
    )  # train(epoch=e)
    val = make_dataset(indices=val_idx, training=False, **common)
    model = build_classifier(
        settings.model.encoder,
        settings.image_size,
        n_classes=len(isic.CLASSES),
        weights=settings.model.encoder_weights,
        dense_layers=settings.model.dense_layers,
        l2=settings.model.l2,
        dropout=settings.model.dropout,
    )
    loss = CLASSIFICATION_LOSSES[settings.loss](alpha=settings.focal_alpha, gamma=settings.focal_gamma)
    model.compile(
        optimizer=keras.optimizers.Adam(settings.schedule.learning_rate),
        loss=loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=settings.speed.xla,
    )
    weights = class_weights(labels[train_idx], settings.class_weights)
    log.info("class weights: %s", {isic.CLASSES[k]: round(v, 3) for k, v in weights.items()})
    return fit(
        model,
        train,
        val,
        settings.schedule,
        work_dir,
        model_out,
        history_out,
        class_weight=weights,
        key=data_key,
        tensorboard_dir=Path(model_out).parent / "tensorboard",
    )


def submission(ids: Sequence[str], prob: np.ndarray) -> pd.DataFrame:
    """The ISIC Task 3 submission table: ``image,MEL,NV,BCC,AKIEC,BKL,DF,VASC``."""
    table = pd.DataFrame(prob, columns=list(isic.CLASSES))
    table.insert(0, "image", list(ids))
    return table


def summarise_folds(truth: pd.DataFrame, predictions: pd.DataFrame) -> dict:
    """Official metrics per held-out fold, their mean, and over all folds together (the metrics JSON)."""
    from .metrics import classification_scores

    prob = predictions.set_index("image")[list(isic.CLASSES)]
    per_fold = {}
    for fold, rows in predictions.groupby("fold"):
        ids = rows["image"].tolist()
        per_fold[f"fold_{fold}"] = classification_scores(truth.loc[ids], prob.loc[ids], official_exclusions=False)
    keys = ("balanced_accuracy", "accuracy", "macro_auc", "mean_average_precision")
    mean = {k: float(np.mean([f[k] for f in per_fold.values() if f[k] is not None])) for k in keys}
    mean["per_class_recall"] = {
        c: float(
            np.nanmean(
                [
                    np.nan if f["per_class"][c]["recall"] is None else f["per_class"][c]["recall"]
                    for f in per_fold.values()
                ]
            )
        )
        for c in isic.CLASSES
    }
    mean["per_class_precision"] = {
        c: float(
            np.nanmean(
                [
                    np.nan if f["per_class"][c]["precision"] is None else f["per_class"][c]["precision"]
                    for f in per_fold.values()
                ]
            )
        )
        for c in isic.CLASSES
    }
    overall = classification_scores(truth.loc[prob.index], prob, official_exclusions=False)
    return {"folds": per_fold, "mean": mean, "all_folds": overall}
