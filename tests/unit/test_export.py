"""Exported ensembles: the SavedModel gives the engine's predictions without this package; the model card."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lesionflow import isic
from lesionflow.export import export_saved_model, model_card_markdown, write_onnx
from lesionflow.predictor import ClassCombination, Predictor

from support import classifier, segmenter

SIZE = 32

# Runs an export in a fresh interpreter in which `import lesionflow` fails, as on a machine without it.
LOAD_AND_RUN = textwrap.dedent("""
    import importlib.abc, sys
    class NoLesionflow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "lesionflow":
                raise ImportError("lesionflow is not installed here")
    sys.meta_path.insert(0, NoLesionflow())
    import numpy as np, tensorflow as tf
    export, images, out = sys.argv[1:4]
    model = tf.saved_model.load(export)
    np.save(out, model.serve(tf.constant(np.load(images))).numpy())
""")


def run_export(export: Path, images: np.ndarray, tmp_path: Path) -> np.ndarray:
    np.save(tmp_path / "x.npy", images)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(export), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "y.npy")


def _tiny_models(kind: str, n: int):
    import keras

    from lesionflow.models import build_classifier, build_unet

    keras.utils.set_random_seed(0)
    if kind == "segmentation":
        return [
            build_unet("mobilenetv3small", SIZE, weights=None, decoder_filters=(8,) * 5, decoder="bilinear")
            for _ in range(n)
        ]
    return [
        build_classifier("mobilenetv3small", SIZE, n_classes=7, weights=None, dense_layers=(8,), l2=0.0, dropout=0.0)
        for _ in range(n)
    ]


@pytest.mark.parametrize(("stage", "tta"), [("segmentation", True), ("classification", False)])
def test_an_export_computes_what_the_engine_computes_with_tta_and_folds(stage, tta, tmp_path):
    if stage == "segmentation":
        predictor: Predictor = segmenter(_tiny_models(stage, 2), SIZE, tta=tta)
    else:  # the original's combination: softmax of the mean logit, small probabilities dropped
        logits = ClassCombination(ensemble="logits", min_probability=0.1)
        predictor = classifier(_tiny_models(stage, 2), SIZE, tta=tta, combination=logits)
    images = np.random.default_rng(1).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "model_card.json").write_text("{}")  # the card beside it stays
    written = export_saved_model(predictor, folder)
    assert (folder / "saved_model.pb") in written and written[-1].name == "saved_model.pb"  # moved in last
    assert (folder / "model_card.json").read_text() == "{}"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    got = run_export(folder, images, tmp_path)
    expected = predictor.predict(images)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_onnx_export_is_checked_with_onnxruntime_and_not_written_when_it_differs(tmp_path):
    import onnxruntime

    predictor = segmenter(_tiny_models("segmentation", 1), SIZE, tta=True)  # converting is slow: one fold
    difference = write_onnx(predictor, tmp_path / "model.onnx")
    assert difference <= 1e-4
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(5).integers(0, 256, (3, SIZE, SIZE, 3), dtype=np.uint8)
    got = session.run(None, {"images": images})[0]
    np.testing.assert_allclose(got, predictor.predict(images), atol=1e-4)

    with pytest.raises(RuntimeError, match="differs from the ensemble"):
        write_onnx(predictor, tmp_path / "strict.onnx", tolerance=-1.0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]  # nothing half-written


def test_model_card_markdown_states_the_contract_and_the_scores():
    card = {
        "name": "lesionflow segmentation ensemble",
        "stage": "segmentation",
        "folds": [0, 1],
        "encoder": "densenet169",
        "test_time_augmentation": True,
        "input": {
            "dtype": "uint8",
            "shape": ["N", 224, 224, 3],
            "colour_order": "RGB",
            "value_range": [0, 255],
            "preparation": "resized",
            "output": "N×S×S lesion probability (before post-processing)",
        },
        "postprocess": {"sigma": 2.0, "threshold": 0.5, "order": "smooth, resize, threshold"},
        "training_data": {"images": 2594},
        "held_out_folds": {"mean": {"threshold_jaccard": 0.75, "jaccard": 0.8, "dice": 0.88}},
        "task3_scores": {"test": {"threshold_jaccard": 0.7}},
        "intended_use": "Research.",
        "limits": ["Dermoscopy only."],
        "versions": {"tensorflow": "2.21.0"},
    }
    text = model_card_markdown(card)
    assert "`uint8` images of shape ['N', 224, 224, 3], RGB, values 0–255" in text
    assert "threshold_jaccard 0.7500" in text and "Task 3 test set: threshold_jaccard 0.7000" in text
    assert "sigma 2.0, threshold 0.5" in text and "- Dermoscopy only." in text


# ------------------------------------------------------------------ in the workflow (the session's demo run)


@pytest.mark.workflow
def test_exports_load_without_the_package_and_match_the_workflows_predictions(demo_run, tmp_path):
    seg_images = np.load(demo_run / "results/cache/test/images.npy")
    got = run_export(demo_run / "results/export/segmentation", seg_images, tmp_path)
    expected = Predictor.load(demo_run / "results/segmentation/ensemble.json").predict(seg_images)
    np.testing.assert_allclose(got, expected, atol=1e-4)

    cls_images = np.load(demo_run / "results/cache/masked_test/images.npy")
    got = run_export(demo_run / "results/export/classification", cls_images, tmp_path)
    submission = pd.read_csv(demo_run / "results/predictions/test.csv", dtype={"image": str})
    order = pd.read_csv(demo_run / "results/cache/masked_test/index.csv", dtype={"image": str})["image"]
    np.testing.assert_allclose(got, submission.set_index("image").loc[order, list(isic.CLASSES)].to_numpy(), atol=1e-4)


@pytest.mark.workflow
def test_model_cards_describe_the_run(demo_run):
    for stage in ("segmentation", "classification"):
        folder = demo_run / "results/export" / stage
        card = json.loads((folder / "model_card.json").read_text())
        ensemble = json.loads((demo_run / f"results/{stage}/ensemble.json").read_text())
        folds = pd.read_csv(demo_run / f"results/{stage}/folds.csv", dtype={"image": str})
        provenance = [
            json.loads((demo_run / f"results/{stage}/fold_{k}/provenance.json").read_text()) for k in card["folds"]
        ]
        assert card["folds"] == ensemble["folds"] and card["encoder"] == ensemble["encoder"]
        assert card["training_data"]["images"] == len(folds)
        assert card["training_data"]["data_sha256_per_fold"] == {
            f"fold_{k}": p["data_sha256"] for k, p in zip(card["folds"], provenance)
        }
        assert card["settings"] == provenance[0]["settings"]
        assert card["held_out_folds"] == json.loads((demo_run / f"results/metrics/{stage}.json").read_text())
        assert card["task3_scores"]["test"] == json.loads((demo_run / f"results/metrics/{stage}_test.json").read_text())
        assert card["input"]["shape"] == ["N", ensemble["image_size"], ensemble["image_size"], 3]
        assert "Not a medical device" in card["intended_use"] and card["limits"]
        assert (folder / "MODEL_CARD.md").read_text().startswith(f"# lesionflow {stage} ensemble")
    cls_card = json.loads((demo_run / "results/export/classification/model_card.json").read_text())
    assert cls_card["classes"] == list(isic.CLASSES)
    assert sum(cls_card["training_data"]["images_per_class"].values()) == cls_card["training_data"]["images"]
    seg_card = json.loads((demo_run / "results/export/segmentation/model_card.json").read_text())
    assert (
        seg_card["postprocess"]["threshold"]
        == json.loads((demo_run / "results/segmentation/ensemble.json").read_text())["postprocess"]["threshold"]
    )
