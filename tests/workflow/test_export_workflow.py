"""Exported ensembles of the session's demo run: the SavedModels give the workflow's predictions without this
package; the model cards describe the run."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from lesionflow import isic
from lesionflow.predictor import Predictor

from support.exports import run_export

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
