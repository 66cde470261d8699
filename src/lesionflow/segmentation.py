"""The segmentation stage: train one U-Net per fold, evaluate on held-out folds, predict full-size masks."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import Sequence

import keras
import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import gaussian_filter
from tqdm import tqdm

from . import isic
from .augment import DIHEDRAL, Augmentation, inverse_transform, make_dataset, transform
from .cache import Cache
from .losses import SEGMENTATION_LOSSES
from .models import build_unet
from .postprocess import postprocess_mask
from .training import Schedule, fit

log = logging.getLogger(__name__)

_EPS = 1e-6


def train_fold(cache: Cache, folds: np.ndarray, fold: int, settings: dict, work_dir: str | Path,
               model_out: str | Path, history_out: str | Path, data_key: str = "") -> pd.DataFrame:
    """Train the U-Net of ``fold`` on the other folds of ``cache`` (images + masks).

    ``data_key`` (a fingerprint of the input files) keeps a killed job from resuming on other data.
    """
    train_idx = np.flatnonzero(folds != fold)
    val_idx = np.flatnonzero(folds == fold)
    log.info("fold %d: %d training, %d validation images", fold, len(train_idx), len(val_idx))
    seed = settings["seed"] + fold
    aug = Augmentation.from_config(settings.get("augmentation"))
    common = dict(images=cache.images, targets=cache.masks, batch_size=settings["batch_size"], seed=seed,
                  target_is_mask=True)
    train = partial(make_dataset, indices=train_idx, training=True, augmentation=aug, **common)  # train(epoch=e)
    val = make_dataset(indices=val_idx, training=False, **common)
    model = build_unet(settings["encoder"], settings["image_size"], settings.get("encoder_weights"),
                       settings.get("decoder_filters", (256, 128, 64, 32, 16)))
    model.compile(optimizer=keras.optimizers.Adam(settings["learning_rate"]),
                  loss=SEGMENTATION_LOSSES[settings.get("loss", "bce")](),
                  metrics=[keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5, name="jaccard")],
                  jit_compile=settings.get("speed", {}).get("xla", False))
    return fit(model, train, val, Schedule.from_settings(settings), work_dir, model_out, history_out,
               key=data_key)


def predict_logits(model: keras.Model, images: np.ndarray, tta: bool, batch_size: int = 32) -> np.ndarray:
    """Per-pixel logits (N×S×S) of one model, averaged over the 8 dihedral transforms when ``tta``."""
    transforms = DIHEDRAL if tta else DIHEDRAL[:1]
    total = np.zeros(images.shape[:3], dtype=np.float32)
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], dtype=np.float32)
        for k, flip in transforms:
            prob = model.predict_on_batch(np.ascontiguousarray(transform(batch, k, flip)))[..., 0]
            prob = np.clip(inverse_transform(prob, k, flip), _EPS, 1 - _EPS)
            total[start:start + len(batch)] += np.log(prob / (1 - prob))
    return total / len(transforms)


def ensemble_probabilities(models: Sequence[keras.Model], images: np.ndarray, tta: bool) -> np.ndarray:
    """Fold models averaged in logit space, then the sigmoid: N×S×S probabilities."""
    logits = sum(predict_logits(m, images, tta) for m in models) / len(models)
    return 1.0 / (1.0 + np.exp(-logits))


def full_size_mask(prob: np.ndarray, size: tuple[int, int], sigma: float, threshold: float,
                   largest_component: bool, fill_holes: bool = False) -> np.ndarray:
    """Smooth the S×S probability map, resize it to (H, W) bilinearly, threshold, keep the largest lesion."""
    if sigma > 0:
        prob = gaussian_filter(prob.astype(np.float32), sigma)
    h, w = size
    full = np.asarray(Image.fromarray(prob.astype(np.float32), mode="F").resize((w, h), Image.Resampling.BILINEAR))
    return postprocess_mask(full, sigma=0.0, threshold=threshold, largest_component=largest_component,
                            fill_holes=fill_holes)


def write_masks(cache: Cache, prob: np.ndarray, out_dir: str | Path, postprocess: dict) -> list[Path]:
    """Write one full-size 0/255 ``ISIC_<id>_segmentation.png`` per image (the ISIC Task 1 format)."""
    from .imageio import write_png

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rows = cache.index.itertuples(index=False)
    for p, row in tqdm(zip(prob, rows), total=len(prob), desc="masks", unit="img", mininterval=2):
        mask = full_size_mask(p, (row.height, row.width), **postprocess)
        path = out / isic.mask_name(row.image)
        write_png(path, mask.astype(np.uint8) * 255)
        written.append(path)
    return written


def evaluate_folds(cache: Cache, folds: np.ndarray, models: Sequence[keras.Model], mask_paths: Sequence[Path],
                   postprocess: dict, tta: bool) -> pd.DataFrame:
    """Score each fold's model on its held-out images at full size, as the official scorer does.

    Returns one row per image: ``image, fold`` and the per-image metrics of
    :func:`lesionflow.metrics.segmentation_scores`.
    """
    from .imageio import read_mask
    from .metrics import segmentation_scores

    rows = []
    for fold, model in enumerate(models):
        held_out = np.flatnonzero(folds == fold)
        prob = ensemble_probabilities([model], cache.images[held_out], tta)
        for p, i in tqdm(zip(prob, held_out), total=len(held_out), desc=f"fold {fold}", unit="img", mininterval=2):
            image_id, h, w = cache.index.iloc[i][["image", "height", "width"]]
            truth = read_mask(mask_paths[i], (h, w))
            pred = full_size_mask(p, (h, w), **postprocess)
            rows.append({"image": image_id, "fold": fold, **segmentation_scores(truth, pred)})
    return pd.DataFrame(rows)


def summarise_folds(per_image: pd.DataFrame) -> dict:
    """Per-fold and overall means of the per-image metrics (the metrics JSON)."""
    from .metrics import summarise_segmentation

    per_fold = {f"fold_{k}": summarise_segmentation(group) for k, group in per_image.groupby("fold")}
    folds = list(per_fold.values())
    mean = {key: float(np.mean([f[key] for f in folds])) for key in folds[0]}
    return {"folds": per_fold, "mean": mean, "n_images": int(len(per_image))}
