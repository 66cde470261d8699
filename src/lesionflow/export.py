"""Exported ensembles: a stage's whole fold ensemble as one TensorFlow SavedModel, with a model card.

The SavedModel's ``serve`` signature takes ``uint8`` images ``N×S×S×3`` (RGB, the contents of the stage's
resize cache) and returns what :class:`lesionflow.predictor.Predictor` computes from them: for
segmentation the N×S×S lesion probability before post-processing (fold models averaged in logit space over
the test-time transforms), for classification the N×7 class probabilities in the submission's column
order. It loads with plain TensorFlow (``tf.saved_model.load(path).serve(x)``), without this package.
With ``export.onnx: true`` the same computation is also written as ``model.onnx`` (input ``images``),
checked with ``onnxruntime`` against the engine.

Beside it, ``model_card.json`` and ``MODEL_CARD.md`` say what the ensemble was trained on, with which
settings, how well it did on held-out folds and on the Task 3 sets with ground truth, its input contract,
the post-processing the workflow applies after it, and its intended use and limits.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from . import isic
from .imageio import atomic_path
from .predictor import EnsembleSpec, Predictor

log = logging.getLogger(__name__)

#: The signature name of every export.
SIGNATURE = "serve"
_EPS = 1e-6
_TINY = 1e-30


def ensemble_function(predictor: Predictor):
    """The ensemble as one TensorFlow function of a uint8 batch (the computation :class:`Predictor` does)."""
    import tensorflow as tf

    spec = predictor.spec
    transforms = predictor.transforms
    segmentation = spec.stage == "segmentation"
    logits = segmentation or spec.combination.ensemble == "logits"

    def serve(images):
        x = tf.cast(images, tf.float32)
        total = None
        for model in predictor.models:
            for k, flip in transforms:
                moved = tf.image.rot90(tf.reverse(x, axis=[2]) if flip else x, k)
                out = tf.cast(model(moved, training=False), tf.float32)
                if segmentation:
                    back = tf.image.rot90(out, -k % 4)
                    back = tf.reverse(back, axis=[2]) if flip else back
                    prob = tf.clip_by_value(back[..., 0], _EPS, 1 - _EPS)
                    out = tf.math.log(prob / (1 - prob))
                elif logits:
                    out = tf.math.log(tf.maximum(out, _TINY))
                total = out if total is None else total + out
        mean = total / (len(predictor.models) * len(transforms))
        if segmentation:
            return tf.math.sigmoid(mean)
        if logits:
            mean = tf.exp(mean - tf.reduce_max(mean, axis=1, keepdims=True))
        prob = mean / tf.reduce_sum(mean, axis=1, keepdims=True)
        if spec.combination.min_probability > 0:
            prob = tf.where(prob < spec.combination.min_probability, tf.zeros_like(prob), prob)
            prob = prob / tf.reduce_sum(prob, axis=1, keepdims=True)
        return prob

    return serve


def write_saved_model(predictor: Predictor, folder: str | Path) -> None:
    """Write the ensemble as a SavedModel into ``folder`` (which must not exist)."""
    import keras
    import tensorflow as tf

    size = predictor.spec.image_size
    archive = keras.export.ExportArchive()
    for model in predictor.models:
        archive.track(model)
    archive.add_endpoint(
        name=SIGNATURE,
        fn=ensemble_function(predictor),
        input_signature=[tf.TensorSpec(shape=(None, size, size, 3), dtype=tf.uint8, name="images")],
    )
    archive.write_out(str(folder), verbose=False)


def export_saved_model(predictor: Predictor, folder: str | Path) -> list[Path]:
    """Export into ``folder`` (other files there, such as the model card, stay): written to a staging
    folder first, then moved into place file by file with ``saved_model.pb`` last, so that a killed export
    never leaves a folder that loads. Returns the files written."""
    folder = Path(folder)
    staging = folder.parent / f".{folder.name}.export{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_saved_model(predictor, staging)
        files = sorted(
            (p for p in staging.rglob("*") if p.is_file()), key=lambda p: (p.name == "saved_model.pb", str(p))
        )
        written = []
        for path in files:
            target = folder / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported the %s ensemble to %s", predictor.spec.stage, folder)
    return written


def write_onnx(predictor: Predictor, path: str | Path, check_images: int = 8, tolerance: float = 1e-4) -> float:
    """The same ensemble function as ONNX (``tf2onnx``), written atomically to ``path``; returns the largest
    difference from the engine's own predictions on ``check_images`` random images, computed with
    ``onnxruntime``. Raises ``RuntimeError`` (and writes nothing) when it exceeds ``tolerance``."""
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    size = predictor.spec.image_size
    signature = [tf.TensorSpec(shape=(None, size, size, 3), dtype=tf.uint8, name="images")]
    # tf2onnx's transpose optimizer logs a traceback on Keras' bias-free convolutions and skips itself; the
    # graph stays correct (checked below), so only its errors that stop the conversion are shown.
    tf2onnx_log = logging.getLogger("tf2onnx")
    level = tf2onnx_log.level
    tf2onnx_log.setLevel(logging.CRITICAL)
    try:
        with atomic_path(path) as tmp:
            tf2onnx.convert.from_function(
                tf.function(ensemble_function(predictor)), input_signature=signature, output_path=str(tmp)
            )
            session = onnxruntime.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
            images = np.random.default_rng(0).integers(0, 256, (check_images, size, size, 3), dtype=np.uint8)
            got = session.run(None, {session.get_inputs()[0].name: images})[0]
            difference = float(np.abs(got - predictor.predict(images)).max())
            if not difference <= tolerance:
                raise RuntimeError(f"the ONNX export differs from the ensemble by {difference:.3g} (> {tolerance})")
    finally:
        tf2onnx_log.setLevel(level)
    log.info(
        "ONNX export of the %s ensemble: largest difference %.3g on %d images",
        predictor.spec.stage,
        difference,
        check_images,
    )
    return difference


def write_model_card(card: Mapping[str, Any], json_path: str | Path, markdown_path: str | Path) -> None:
    """``model_card.json`` and ``MODEL_CARD.md``, each written atomically."""
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(card, indent=2, default=str) + "\n")
    with atomic_path(markdown_path) as tmp:
        tmp.write_text(model_card_markdown(card))


# ------------------------------------------------------------------------------------ the model card

INTENDED_USE = (
    "Research on dermoscopic images of skin lesions, in the ISIC 2018 challenge's formats. Not a medical "
    "device: not for diagnosis, screening or any clinical decision."
)
LIMITS = [
    "Dermoscopy only: clinical (non-dermoscopic) photographs, histology and other image types are outside "
    "what it was trained on.",
    "Trained on the images listed under training_data only; populations, devices and skin types that set "
    "does not represent may get worse results, and the held-out figures do not say how it does on them.",
    "The classifier knows only the seven ISIC 2018 Task 3 classes; any other diagnosis is mapped to one of them.",
]


def input_contract(spec: EnsembleSpec) -> dict[str, Any]:
    """How an image must be prepared before the export sees it."""
    resize = (
        "the whole image, on its stored pixel grid (EXIF orientation ignored), resized to S×S with Pillow "
        "(JPEG draft decoding to at least 2S, then an antialiased bilinear reduction)"
    )
    contract = {
        "dtype": "uint8",
        "shape": ["N", spec.image_size, spec.image_size, 3],
        "colour_order": "RGB",
        "value_range": [0, 255],
        "signature": SIGNATURE,
    }
    if spec.stage == "segmentation":
        contract["preparation"] = resize
        contract["output"] = "N×S×S lesion probability (before post-processing)"
    else:
        contract["preparation"] = (
            "the lesion crop: the bounding box of the largest component of the predicted full-size mask, "
            "widened by the masking margin, pixels outside the mask set to 0 (masking.background: zero), "
            "resized to S×S with Pillow's LANCZOS filter"
        )
        contract["output"] = f"N×{len(isic.CLASSES)} class probabilities, columns {list(isic.CLASSES)}"
    return contract


def model_card(
    spec: EnsembleSpec,
    provenance: Sequence[Mapping[str, Any]],
    held_out: Mapping[str, Any],
    task3_scores: Mapping[str, Mapping[str, Any]],
    class_counts: Mapping[str, int] | None,
    image_count: int,
    masking: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The model card's fields, from the run's own records.

    ``provenance``: each fold's ``provenance.json``; ``held_out``: the stage's metrics JSON; ``task3_scores``:
    set name → its metrics JSON (sets with ground truth); ``class_counts``: training images per class
    (classification); ``masking``: the config's masking section (classification).
    """
    first = provenance[0]
    card: dict[str, Any] = {
        "name": f"lesionflow {spec.stage} ensemble",
        "stage": spec.stage,
        "format": "TensorFlow SavedModel",
        "signature": SIGNATURE,
        "folds": list(spec.folds),
        "encoder": spec.encoder,
        "test_time_augmentation": spec.tta,
        "input": input_contract(spec),
        "training_data": {
            "images": image_count,
            "data_sha256_per_fold": {f"fold_{f}": p.get("data_sha256") for f, p in zip(spec.folds, provenance)},
            "inputs": first.get("inputs"),
        },
        "settings": first.get("settings"),
        "held_out_folds": held_out,
        "task3_scores": dict(task3_scores),
        "versions": first.get("versions"),
        "trained_on_device": sorted({str(p.get("device")) for p in provenance}),
        "intended_use": INTENDED_USE,
        "limits": LIMITS,
    }
    if class_counts is not None:
        card["training_data"]["images_per_class"] = dict(class_counts)
        card["classes"] = list(isic.CLASSES)
    if spec.postprocess is not None:
        card["postprocess"] = {
            **spec.postprocess.to_dict(),
            "order": "smooth at S×S (sigma), resize bilinearly to the image's full size, threshold, keep the "
            "largest 8-connected component, fill its holes",
        }
    if masking is not None:
        card["masking"] = dict(masking)
    return card


def _headline(metrics: Mapping[str, Any], stage: str) -> list[str]:
    keys = (
        ("threshold_jaccard", "jaccard", "dice")
        if stage == "segmentation"
        else ("balanced_accuracy", "accuracy", "macro_auc")
    )
    mean = metrics.get("mean", metrics)
    return [f"{key} {mean[key]:.4f}" for key in keys if isinstance(mean.get(key), (int, float))]


def model_card_markdown(card: Mapping[str, Any]) -> str:
    """A short human-readable model card."""
    contract = card["input"]
    lines = [
        f"# {card['name']}",
        "",
        f"A TensorFlow SavedModel of {len(card['folds'])} fold models ({card['encoder']} encoder), test-time "
        f"augmentation {'on' if card['test_time_augmentation'] else 'off'}. Load it with "
        f"`tf.saved_model.load(path).serve(x)`.",
        "",
        "## Input and output",
        "",
        f"- input: `{contract['dtype']}` images of shape {contract['shape']}, {contract['colour_order']}, "
        f"values {contract['value_range'][0]}–{contract['value_range'][1]}",
        f"- preparation: {contract['preparation']}",
        f"- output: {contract['output']}",
    ]
    if "postprocess" in card:
        post = card["postprocess"]
        lines.append(
            f"- the workflow's post-processing after it: {post['order']} (sigma {post['sigma']}, threshold "
            f"{post['threshold']})"
        )
    lines += ["", "## Training data", "", f"- {card['training_data']['images']} images"]
    if "images_per_class" in card["training_data"]:
        counts = ", ".join(f"{k} {v}" for k, v in card["training_data"]["images_per_class"].items())
        lines.append(f"- per class: {counts}")
    lines += ["", "## Results", ""]
    held = _headline(card["held_out_folds"], card["stage"])
    lines.append(f"- held-out folds (mean): {', '.join(held) if held else 'none recorded'}")
    for name, scores in card["task3_scores"].items():
        lines.append(f"- Task 3 {name} set: {', '.join(_headline(scores, card['stage']))}")
    lines += ["", "## Intended use", "", card["intended_use"], "", "## Limits", ""]
    lines += [f"- {limit}" for limit in card["limits"]]
    lines += ["", f"Versions: {', '.join(f'{k} {v}' for k, v in card['versions'].items())}.", ""]
    return "\n".join(lines)


def class_counts(onehot: np.ndarray) -> dict[str, int]:
    """Training images per class from a one-hot ground truth (N×7)."""
    counts = np.asarray(onehot).argmax(axis=1)
    return {name: int((counts == i).sum()) for i, name in enumerate(isic.CLASSES)}
