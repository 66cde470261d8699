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
from .augment import Augmentation, make_dataset
from .cache import Cache
from .losses import CLASSIFICATION_LOSSES
from .models import build_classifier
from .training import Schedule, fit

log = logging.getLogger(__name__)


def class_weights(labels: np.ndarray, scheme: str, n_classes: int = len(isic.CLASSES)) -> dict[int, float]:
    """Per-class loss weights: ``ones``, ``balanced`` (scikit-learn) or its square root ``balanced-sqrt``.

    Classes absent from ``labels`` get weight 1.
    """
    weights = np.ones(n_classes)
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
    settings: dict,
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
        dict(zip(isic.CLASSES, np.bincount(labels[train_idx], minlength=7).tolist())),
    )
    seed = settings["seed"] + fold
    aug = Augmentation.from_config(settings.get("augmentation"))
    common = dict(images=cache.images, targets=onehot, batch_size=settings["batch_size"], seed=seed)
    train = partial(make_dataset, indices=train_idx, training=True, augmentation=aug, **common)  # train(epoch=e)
    val = make_dataset(indices=val_idx, training=False, **common)
    model = build_classifier(
        settings["encoder"],
        settings["image_size"],
        len(isic.CLASSES),
        settings.get("encoder_weights"),
        settings.get("dense_layers", (128,)),
        settings.get("l2", 1e-3),
        settings.get("dropout", 0.0),
    )
    loss = CLASSIFICATION_LOSSES[settings.get("loss", "focal")](
        alpha=settings.get("focal_alpha", 0.25), gamma=settings.get("focal_gamma", 2.0)
    )
    model.compile(
        optimizer=keras.optimizers.Adam(settings["learning_rate"]),
        loss=loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=settings.get("speed", {}).get("xla", False),
    )
    weights = class_weights(labels[train_idx], settings.get("class_weights", "balanced"))
    log.info("class weights: %s", {isic.CLASSES[k]: round(v, 3) for k, v in weights.items()})
    return fit(
        model,
        train,
        val,
        Schedule.from_settings(settings),
        work_dir,
        model_out,
        history_out,
        class_weight=weights,
        key=data_key,
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
