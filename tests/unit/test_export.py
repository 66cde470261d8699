"""Exported ensembles: the SavedModel gives the engine's predictions without this package; the model card."""

from __future__ import annotations

import numpy as np
import pytest

from lesionflow.export import export_saved_model, model_card_markdown, write_onnx
from lesionflow.predictor import ClassCombination, Predictor

from support.exports import run_export
from support.stubs import classifier, segmenter

SIZE = 32


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
