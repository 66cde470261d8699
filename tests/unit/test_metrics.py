"""lesionflow.metrics against the official isic-challenge-scoring package, run on the same files."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
from isic_challenge_scoring import metrics as official_metrics  # noqa: E402
from isic_challenge_scoring.classification import ClassificationMetric, ClassificationScore  # noqa: E402
from isic_challenge_scoring.load_image import iter_image_pairs  # noqa: E402
from isic_challenge_scoring.segmentation import SegmentationScore  # noqa: E402
from PIL import Image

from lesionflow.errors import InputError
from lesionflow.isic import CLASSES, mask_name
from lesionflow.metrics import (
    OFFICIAL_CATEGORY_METRICS,
    SEGMENTATION_METRICS,
    classification_scores,
    score_mask_folders,
    segmentation_scores,
    summarise_segmentation,
)

TOL = 1e-9
H, W = 24, 32


def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("isic-challenge-scoring")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("isic-challenge-scoring")
    return [found] if found else [sys.executable, "-m", "isic_challenge_scoring"]


def _close(ours: float | None, theirs: float) -> bool:
    if ours is None:
        return math.isnan(theirs)
    return abs(ours - theirs) <= TOL


# ---------------------------------------------------------------------------------------------
# segmentation


def _segmentation_cases() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named (truth, prediction) uint8 pairs covering random and degenerate masks."""
    rng = np.random.default_rng(7)
    zeros = np.zeros((H, W), np.uint8)
    full = np.full((H, W), 255, np.uint8)
    blob = zeros.copy()
    blob[5:15, 8:20] = 255
    shifted = zeros.copy()
    shifted[7:17, 10:22] = 255
    edge = np.full((H, W), 128, np.uint8)  # 128 is background, 129 foreground
    edge[:, :10] = 129
    # Jaccard exactly 13/20 = 0.65 (kept) and 12/20 = 0.6 (thresholded to 0)
    j65_t, j65_p = zeros.copy(), zeros.copy()
    j65_t.flat[:20] = 255
    j65_p.flat[:13] = 255
    j60_p = zeros.copy()
    j60_p.flat[:12] = 255
    cases = {
        "both_empty": (zeros, zeros),
        "both_full": (full, full),
        "truth_empty": (zeros, blob),
        "prediction_empty": (blob, zeros),
        "all_wrong": (blob, 255 - blob),
        "perfect": (blob, blob),
        "shifted": (blob, shifted),
        "threshold_128": (edge, np.where(np.arange(W) < 12, 200, 0).astype(np.uint8)[None].repeat(H, 0)),
        "jaccard_065": (j65_t, j65_p),
        "jaccard_060": (j65_t, j60_p),
        "full_vs_blob": (full, blob),
    }
    for i in range(6):  # random greyscale (not only 0/255) and random binary masks
        truth = rng.integers(0, 256, (H, W), dtype=np.uint8)
        prediction = np.where(rng.random((H, W)) < 0.7, truth, rng.integers(0, 256, (H, W))).astype(np.uint8)
        cases[f"random_{i}"] = (truth, prediction)
    return cases


@pytest.fixture(scope="module")
def mask_folders(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("masks")
    truth_dir, prediction_dir = root / "truth", root / "prediction"
    truth_dir.mkdir()
    prediction_dir.mkdir()
    names = {}
    for number, (name, (truth, prediction)) in enumerate(_segmentation_cases().items()):
        image_id = f"ISIC_{number:07d}"
        names[image_id] = name
        Image.fromarray(truth, mode="L").save(truth_dir / mask_name(image_id))
        Image.fromarray(prediction, mode="L").save(prediction_dir / mask_name(image_id))
    return truth_dir, prediction_dir, names


def test_per_image_segmentation_matches_official(mask_folders):
    truth_dir, prediction_dir, names = mask_folders
    ours = score_mask_folders(truth_dir, prediction_dir)
    assert list(ours.columns) == list(SEGMENTATION_METRICS)
    assert list(ours.index) == sorted(names)
    pairs = list(iter_image_pairs(truth_dir, prediction_dir))
    assert len(pairs) == len(names)
    for pair in pairs:  # the package's own per-image path: one image per score
        theirs = SegmentationScore([pair]).macro_average
        for key in SEGMENTATION_METRICS:
            assert ours.at[pair.image_id, key] == pytest.approx(theirs[key], abs=TOL), (names[pair.image_id], key)


def test_segmentation_edge_case_values(mask_folders):
    truth_dir, prediction_dir, names = mask_folders
    scores = score_mask_folders(truth_dir, prediction_dir).rename(index=names)
    assert scores.loc["both_empty"].tolist() == [1.0] * 6
    assert scores.loc["both_full"].tolist() == [1.0] * 6
    assert scores.at["all_wrong", "jaccard"] == 0.0 and scores.at["all_wrong", "accuracy"] == 0.0
    assert scores.at["truth_empty", "jaccard"] == 0.0 and scores.at["truth_empty", "sensitivity"] == 1.0
    assert scores.at["prediction_empty", "specificity"] == 1.0 and scores.at["prediction_empty", "dice"] == 0.0
    assert scores.at["threshold_128", "jaccard"] == pytest.approx(10 / 12)
    assert scores.at["jaccard_065", "threshold_jaccard"] == 0.65
    assert scores.at["jaccard_060", "jaccard"] == pytest.approx(0.6)
    assert scores.at["jaccard_060", "threshold_jaccard"] == 0.0


def test_summary_matches_official_function_and_cli(mask_folders):
    truth_dir, prediction_dir, names = mask_folders
    summary = summarise_segmentation(score_mask_folders(truth_dir, prediction_dir))
    assert summary["n_images"] == len(names)
    theirs = SegmentationScore.from_dir(truth_dir, prediction_dir).to_dict()["macro_average"]
    cli = subprocess.run(
        [*_cli(), "-o", "json", "segmentation", str(truth_dir), str(prediction_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    from_cli = json.loads(cli.stdout)
    assert set(theirs) == set(SEGMENTATION_METRICS)
    for key in SEGMENTATION_METRICS:
        assert summary[key] == pytest.approx(theirs[key], abs=TOL), key
        assert summary[key] == pytest.approx(from_cli["macro_average"][key], abs=TOL), key
    assert summary["threshold_jaccard"] == pytest.approx(from_cli["overall"], abs=TOL)


def test_segmentation_scores_accepts_bool_and_uint8_alike():
    for truth, prediction in _segmentation_cases().values():
        assert segmentation_scores(truth, prediction) == segmentation_scores(truth > 128, prediction > 128)


def test_segmentation_input_errors(tmp_path):
    with pytest.raises(InputError, match="shape"):
        segmentation_scores(np.zeros((4, 4), np.uint8), np.zeros((4, 5), np.uint8))
    with pytest.raises(InputError, match="dtype"):
        segmentation_scores(np.zeros((4, 4)), np.zeros((4, 4)))
    truth_dir, prediction_dir = tmp_path / "t", tmp_path / "p"
    truth_dir.mkdir()
    prediction_dir.mkdir()
    mask = np.zeros((8, 8), np.uint8)
    for image_id in ("ISIC_0000001", "ISIC_0000002"):
        Image.fromarray(mask).save(truth_dir / mask_name(image_id))
    Image.fromarray(mask).save(prediction_dir / mask_name("ISIC_0000001"))
    with pytest.raises(InputError, match="ISIC_0000002_segmentation.png"):
        score_mask_folders(truth_dir, prediction_dir)
    Image.fromarray(mask).save(prediction_dir / mask_name("ISIC_0000002"))
    Image.fromarray(mask).save(prediction_dir / mask_name("ISIC_0000003"))
    with pytest.raises(InputError, match=r"t/ISIC_0000003_segmentation.png"):
        score_mask_folders(truth_dir, prediction_dir)
    (prediction_dir / mask_name("ISIC_0000003")).unlink()
    Image.fromarray(np.zeros((8, 9), np.uint8)).save(prediction_dir / mask_name("ISIC_0000002"))
    with pytest.raises(InputError, match="ISIC_0000002_segmentation.png.*size"):
        score_mask_folders(truth_dir, prediction_dir)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(prediction_dir / mask_name("ISIC_0000002"))
    with pytest.raises(InputError, match="greyscale"):
        score_mask_folders(truth_dir, prediction_dir)
    Image.fromarray(mask).save(prediction_dir / mask_name("ISIC_0000002"))
    assert len(score_mask_folders(truth_dir, prediction_dir)) == 2
    with pytest.raises(InputError, match="columns"):
        summarise_segmentation(pd.DataFrame({"jaccard": [1.0]}))


# ---------------------------------------------------------------------------------------------
# classification


def _ids(n: int, start: int = 0) -> list[str]:
    return [f"ISIC_{start + i:07d}" for i in range(n)]


def _truth(labels: np.ndarray, ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.eye(len(CLASSES))[labels], index=pd.Index(ids, name="image"), columns=list(CLASSES))


def _random_case(rng: np.random.Generator, n: int = 70) -> tuple[pd.DataFrame, pd.DataFrame]:
    labels = np.concatenate([np.arange(len(CLASSES)), rng.integers(0, len(CLASSES), n - len(CLASSES))])
    ids = _ids(n)
    logits = rng.normal(size=(n, len(CLASSES))) + 1.5 * np.eye(len(CLASSES))[labels]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return _truth(labels, ids), pd.DataFrame(probs, index=pd.Index(ids, name="image"), columns=list(CLASSES))


def _write(
    tmp_path: Path, truth: pd.DataFrame, prediction: pd.DataFrame
) -> tuple[Path, Path, pd.DataFrame, pd.DataFrame]:
    """Write both CSVs (prediction rows shuffled) and read them back as our function will see them.

    The truth is written sorted by image, as the official files are: the official scorer applies its
    ISIC_0035068 zero weight by row position before sorting, so an unsorted truth file misplaces it.
    """
    truth_csv, prediction_csv = tmp_path / "truth.csv", tmp_path / "prediction.csv"
    truth.sort_index().to_csv(truth_csv, index_label="image")
    prediction.sample(frac=1.0, random_state=1).to_csv(prediction_csv, index_label="image")
    return (
        truth_csv,
        prediction_csv,
        pd.read_csv(truth_csv, index_col="image"),
        pd.read_csv(prediction_csv, index_col="image"),
    )


def _compare_with_official(ours: dict, official: dict) -> None:
    assert ours["balanced_accuracy"] == pytest.approx(official["aggregate"]["balanced_accuracy"], abs=TOL)
    for name in CLASSES:
        for key in OFFICIAL_CATEGORY_METRICS:
            assert _close(ours["official_per_category"][name][key], official["per_category"][key][name]), (name, key)
    for key in OFFICIAL_CATEGORY_METRICS:
        assert _close(ours["official_macro_average"][key], official["macro_average"][key]), key
    assert ours["macro_auc"] == pytest.approx(official["macro_average"]["auc"], abs=TOL)
    assert ours["mean_average_precision"] == pytest.approx(official["macro_average"]["ap"], abs=TOL)
    assert ours["macro_auc_sens_80"] == pytest.approx(official["macro_average"]["auc_sens_80"], abs=TOL)


def test_classification_matches_official_function_and_cli(tmp_path):
    truth, prediction = _random_case(np.random.default_rng(3))
    truth_csv, prediction_csv, truth_read, prediction_read = _write(tmp_path, truth, prediction)
    ours = classification_scores(truth_read, prediction_read)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = ClassificationScore.from_file(
            truth_csv, prediction_csv, ClassificationMetric.BALANCED_ACCURACY
        ).to_dict(rocs=False)
    _compare_with_official(ours, official)
    cli = subprocess.run(
        [*_cli(), "-o", "json", "classification", str(truth_csv), str(prediction_csv)],
        capture_output=True,
        text=True,
        check=True,
    )
    _compare_with_official(ours, json.loads(cli.stdout))
    assert 0.0 < ours["balanced_accuracy"] < 1.0 and 0.5 < ours["macro_auc"] < 1.0
    json.dumps(ours, allow_nan=False)


@pytest.mark.parametrize("kind", ["all_wrong", "perfect", "undecided", "official_exclusion"])
def test_classification_edge_cases_match_official(tmp_path, kind):
    rng = np.random.default_rng(11)
    truth, prediction = _random_case(rng, n=35)
    labels = truth.to_numpy().argmax(axis=1)
    if kind == "all_wrong":
        prediction[:] = np.eye(len(CLASSES))[(labels + 1) % len(CLASSES)] * 0.9 + 0.01
    elif kind == "perfect":
        prediction[:] = truth.to_numpy()
    elif kind == "undecided":
        prediction.iloc[:10] = 1.0 / len(CLASSES)  # every class tied
        prediction.iloc[10:14, :2] = 0.45  # MEL and NV tied at the top
        prediction.iloc[10:14, 2:] = 0.02
    elif kind == "official_exclusion":  # the official reader gives this image weight 0
        truth = truth.rename(index={truth.index[0]: "ISIC_0035068"})
        prediction = prediction.rename(index={prediction.index[0]: "ISIC_0035068"})
        prediction.iloc[0] = np.eye(len(CLASSES))[(labels[0] + 1) % len(CLASSES)]
    truth_csv, prediction_csv, truth_read, prediction_read = _write(tmp_path, truth, prediction)
    ours = classification_scores(truth_read, prediction_read)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official = ClassificationScore.from_file(
            truth_csv, prediction_csv, ClassificationMetric.BALANCED_ACCURACY
        ).to_dict(rocs=False)
    _compare_with_official(ours, official)
    if kind == "all_wrong":
        assert ours["balanced_accuracy"] == 0.0 and ours["accuracy"] == 0.0
        assert np.trace(np.array(ours["confusion_matrix"])) == 0
    elif kind == "perfect":
        assert ours["balanced_accuracy"] == 1.0 and ours["macro_auc"] == 1.0
        assert all(ours["per_class"][c]["f1"] == 1.0 for c in CLASSES)
    elif kind == "undecided":
        assert ours["n_undecided"] == 14
        assert np.sum(ours["confusion_matrix"]) == 35 - 14
        assert ours["accuracy"] <= 21 / 35
    elif kind == "official_exclusion":
        assert ours["n_images"] == 34
        kept = classification_scores(truth_read, prediction_read, official_exclusions=False)
        assert kept["n_images"] == 35 and kept["accuracy"] < ours["accuracy"]


def test_absent_class_matches_official_components():
    """The official scorer itself crashes when a class is absent; its metric functions do not."""
    rng = np.random.default_rng(5)
    truth, prediction = _random_case(rng, n=40)
    labels = truth.to_numpy().argmax(axis=1)
    labels[labels == CLASSES.index("DF")] = 0
    truth = _truth(labels, list(truth.index))
    ours = classification_scores(truth, prediction)
    weights = pd.Series(1.0, index=truth.index)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        official_ba = official_metrics.balanced_multiclass_accuracy(truth, prediction, weights)
        official_auc = {c: official_metrics.auc(truth[c], prediction[c], weights) for c in CLASSES}
        official_ap = {c: official_metrics.average_precision(truth[c], prediction[c], weights) for c in CLASSES}
    assert ours["balanced_accuracy"] == pytest.approx(official_ba, abs=TOL)
    assert ours["per_class"]["DF"]["auc"] is None and ours["per_class"]["DF"]["recall"] is None
    assert ours["per_class"]["DF"]["support"] == 0
    for c in CLASSES:
        assert _close(ours["per_class"][c]["auc"], official_auc[c]), c
        assert ours["per_class"][c]["average_precision"] == pytest.approx(official_ap[c], abs=TOL)
    assert ours["macro_auc"] == pytest.approx(np.nanmean(list(official_auc.values())), abs=TOL)
    recalls = [ours["per_class"][c]["recall"] for c in CLASSES if c != "DF"]
    assert ours["balanced_accuracy"] == pytest.approx(np.mean(recalls), abs=TOL)
    json.dumps(ours, allow_nan=False)


def test_argmax_metrics_match_sklearn():
    truth, prediction = _random_case(np.random.default_rng(9), n=90)
    ours = classification_scores(truth, prediction.iloc[::-1])  # row order must not matter
    y_true = truth.to_numpy().argmax(axis=1)
    y_pred = prediction.to_numpy().argmax(axis=1)
    labels = list(range(len(CLASSES)))
    assert ours["accuracy"] == pytest.approx(sklearn.metrics.accuracy_score(y_true, y_pred), abs=TOL)
    assert ours["balanced_accuracy"] == pytest.approx(sklearn.metrics.balanced_accuracy_score(y_true, y_pred), abs=TOL)
    assert ours["confusion_matrix"] == sklearn.metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    precision, recall, f1, support = sklearn.metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=np.nan
    )
    for j, c in enumerate(CLASSES):
        got = ours["per_class"][c]
        assert got["support"] == support[j]
        for key, expected in (("precision", precision[j]), ("recall", recall[j]), ("f1", f1[j])):
            assert _close(got[key], float(expected)), (c, key)
        assert got["auc"] == pytest.approx(sklearn.metrics.roc_auc_score(y_true == j, prediction[c]), abs=TOL)
        negatives = y_true != j
        assert got["specificity"] == pytest.approx(np.mean(y_pred[negatives] != j), abs=TOL)


def test_classification_input_errors():
    truth, prediction = _random_case(np.random.default_rng(1), n=20)
    with pytest.raises(InputError, match="one-hot"):
        classification_scores(truth * 0.5, prediction)
    with pytest.raises(InputError, match="lacks 1 images"):
        classification_scores(truth, prediction.iloc[1:])
    with pytest.raises(InputError, match="other than the classes"):
        classification_scores(truth, prediction.reset_index())
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        classification_scores(truth, prediction * 2)
    with pytest.raises(InputError, match="lacks class columns"):
        classification_scores(truth, prediction.drop(columns="VASC"))
