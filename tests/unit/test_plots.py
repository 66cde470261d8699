"""lesionflow.plots: the report's readers, tables and figures, on small real data."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import sklearn.metrics
from matplotlib.contour import ContourSet
from matplotlib.patches import Rectangle
from PIL import Image

from lesionflow import plots, provenance
from lesionflow.errors import InputError
from lesionflow.isic import CLASSES
from lesionflow.metrics import classification_scores, summarise_segmentation

from support.images import textured_rgb

# ----------------------------------------------------------------------------------------------
# data


def _history(epochs: int = 6, metric: str = "jaccard") -> pd.DataFrame:
    val_loss = [0.9, 0.7, 0.5, 0.55, 0.6, 0.58][:epochs]
    return pd.DataFrame(
        {
            "epoch": range(epochs),
            metric: np.linspace(0.3, 0.9, epochs),
            "learning_rate": [1e-3] * 3 + [5e-4] * (epochs - 3),
            "loss": np.linspace(1.0, 0.2, epochs),
            f"val_{metric}": np.linspace(0.2, 0.7, epochs),
            "val_loss": val_loss,
        }
    )


def _segmentation_summary() -> dict:
    rng = np.random.default_rng(1)
    per_image = pd.DataFrame(rng.uniform(0.5, 1.0, size=(12, 6)), columns=list(plots.SEGMENTATION_COLUMNS[:-1]))
    folds = {f"fold_{k}": summarise_segmentation(per_image.iloc[k::3]) for k in range(3)}
    mean = {key: float(np.mean([f[key] for f in folds.values()])) for key in folds["fold_0"]}
    return {"folds": folds, "mean": mean, "n_images": 12}


def _truth_and_prob(n: int = 70, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"ISIC_{i:07d}" for i in range(n)]
    label = np.arange(n) % len(CLASSES)
    truth = pd.DataFrame(np.eye(len(CLASSES))[label], index=ids, columns=list(CLASSES))
    logits = rng.normal(size=(n, len(CLASSES))) + 2.0 * np.eye(len(CLASSES))[label]
    prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return truth, pd.DataFrame(prob, index=ids, columns=list(CLASSES))


def _classification_summary() -> dict:
    truth, prob = _truth_and_prob()
    folds = {
        f"fold_{k}": classification_scores(truth.iloc[k::2], prob.iloc[k::2], official_exclusions=False)
        for k in range(2)
    }
    keys = ("balanced_accuracy", "accuracy", "macro_auc", "mean_average_precision")
    mean = {k: float(np.mean([f[k] for f in folds.values()])) for k in keys}
    return {"folds": folds, "mean": mean, "all_folds": classification_scores(truth, prob, official_exclusions=False)}


def _write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


# ----------------------------------------------------------------------------------------------
# readers


def test_read_history_checks_columns_and_values(tmp_path):
    good = tmp_path / "history.csv"
    _history().to_csv(good, index=False)
    assert plots.read_history(good)["val_loss"].tolist() == _history()["val_loss"].tolist()

    missing = tmp_path / "no_val.csv"
    _history().drop(columns="val_loss").to_csv(missing, index=False)
    with pytest.raises(InputError, match=r"no_val\.csv: missing column\(s\) val_loss"):
        plots.read_history(missing)

    text = tmp_path / "text.csv"
    bad = _history().astype({"loss": object})
    bad.loc[2, "loss"] = "nan?"
    bad.to_csv(text, index=False)
    with pytest.raises(InputError, match=r"text\.csv: row 4: column loss holds a non-numeric value 'nan\?'"):
        plots.read_history(text)

    empty = tmp_path / "empty.csv"
    empty.write_text("epoch,loss,val_loss\n")
    with pytest.raises(InputError, match=r"empty\.csv: training history has no epochs"):
        plots.read_history(empty)
    with pytest.raises(InputError, match=r"absent\.csv: file does not exist"):
        plots.read_history(tmp_path / "absent.csv")


def test_read_metrics_names_the_file_and_the_missing_key(tmp_path):
    summary = _segmentation_summary()
    ok = _write_json(tmp_path / "segmentation.json", summary)
    assert plots.read_metrics(ok, "segmentation", "folds") == json.loads(ok.read_text())

    del summary["folds"]["fold_1"]["dice"]
    bad = _write_json(tmp_path / "bad.json", summary)
    with pytest.raises(InputError, match=r"bad\.json: fold_1 lacks key\(s\) dice"):
        plots.read_metrics(bad, "segmentation", "folds")

    no_pool = _classification_summary()
    del no_pool["all_folds"]
    path = _write_json(tmp_path / "classification.json", no_pool)
    with pytest.raises(InputError, match=r"classification\.json: metrics lacks key\(s\) all_folds"):
        plots.read_metrics(path, "classification", "folds")

    broken = tmp_path / "broken.json"
    broken.write_text("{ not json")
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        plots.read_metrics(broken, "segmentation", "set")


def test_read_per_image_scores_rejects_out_of_range_values(tmp_path):
    path = tmp_path / "scores_test.csv"
    pd.DataFrame({"image": ["ISIC_0000001", "ISIC_0000002"], "jaccard": [0.5, 1.5]}).to_csv(path, index=False)
    with pytest.raises(InputError, match=r"scores_test\.csv: row 3: jaccard '1\.5' is not a number in \[0, 1\]"):
        plots.read_per_image_scores(path)


def test_load_case_keeps_aspect_and_aligns_masks(tmp_path):
    h, w = 300, 600
    image = tmp_path / "ISIC_0000007.jpg"
    Image.fromarray(textured_rgb(h, w)).save(image, quality=90)
    mask = np.zeros((h, w), np.uint8)
    mask[:, : w // 2] = 255  # left half
    predicted = tmp_path / "pred.png"
    truth = tmp_path / "truth.png"
    Image.fromarray(mask).save(predicted)
    Image.fromarray(255 - mask).save(truth)

    case = plots.load_case(image, predicted, truth, jaccard=0.25, max_side=120)
    assert case.image_id == "ISIC_0000007"
    assert case.image.shape == (60, 120, 3)
    assert case.predicted.shape == case.truth.shape == (60, 120)
    assert case.predicted[:, :60].all() and not case.predicted[:, 60:].any()
    assert (case.truth == ~case.predicted).all()

    corrupt = tmp_path / "ISIC_0000008.jpg"
    corrupt.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match=r"ISIC_0000008\.jpg: not a readable image"):
        plots.load_case(corrupt, predicted)


def test_read_probabilities_keeps_ids_as_text(tmp_path):
    path = tmp_path / "test.csv"
    truth, prob = _truth_and_prob(7)
    prob.rename_axis("image").reset_index().to_csv(path, index=False)
    read = plots.read_probabilities(path, CLASSES)
    assert list(read.index) == list(prob.index)
    np.testing.assert_allclose(read.to_numpy(), prob.to_numpy())


# ----------------------------------------------------------------------------------------------
# tables


def test_segmentation_metrics_table_rows_and_values():
    summary = _segmentation_summary()
    test_scores = dict(summary["folds"]["fold_2"], n_images=35)
    table = plots.metrics_table("segmentation", summary, {"test": test_scores})
    assert table["evaluated on"].tolist() == [
        "held-out fold 0",
        "held-out fold 1",
        "held-out fold 2",
        "mean of folds",
        "set test",
    ]
    assert list(table.columns) == ["evaluated on", *plots.SEGMENTATION_COLUMNS]
    assert table.loc[1, "jaccard"] == round(summary["folds"]["fold_1"]["jaccard"], 4)
    assert table.loc[3, "threshold_jaccard"] == round(summary["mean"]["threshold_jaccard"], 4)
    assert pd.isna(table.loc[3, "n_images"]) and table.loc[4, "n_images"] == 35


def test_classification_metrics_table_has_pooled_row_and_sorts_folds_numerically():
    summary = _classification_summary()
    summary["folds"] = {f"fold_{k}": summary["folds"][f"fold_{k % 2}"] for k in (10, 2, 0)}
    table = plots.metrics_table("classification", summary, {})
    assert table["evaluated on"].tolist() == [
        "held-out fold 0",
        "held-out fold 2",
        "held-out fold 10",
        "mean of folds",
        "all folds pooled",
    ]
    pooled = table.set_index("evaluated on").loc["all folds pooled"]
    assert pooled["balanced_accuracy"] == round(summary["all_folds"]["balanced_accuracy"], 4)
    assert pooled["n_images"] == 70


def test_per_class_tables_stack_sources_and_keep_undefined_values_empty():
    truth, prob = _truth_and_prob()
    scores = classification_scores(truth, prob, official_exclusions=False)
    nv_only = prob.copy()
    nv_only[:] = 0.0
    nv_only["NV"] = 1.0  # every image predicted NV: the other classes' precision is 0/0
    degenerate = classification_scores(truth, nv_only, official_exclusions=False)
    table = plots.per_class_tables({"held-out folds": scores, "set test": degenerate}, CLASSES)
    assert table["evaluated on"].tolist() == ["held-out folds"] * 7 + ["set test"] * 7
    assert table["class"].tolist() == list(CLASSES) * 2
    assert table.loc[0, "recall"] == round(scores["per_class"]["MEL"]["recall"], 4)
    assert table.loc[1, "support"] == 10
    assert pd.isna(table.loc[7, "precision"]) and table.loc[8, "precision"] == round(1 / 7, 4)


def test_provenance_table_lines_up_models_field_by_field(tmp_path):
    data = tmp_path / "images.npy"
    data.write_bytes(b"\x00" * 100)
    settings = {"encoder": "densenet169", "decoder_filters": [64, 32], "augmentation": {"flip": True}}
    records = {f"fold {k}": provenance.record(dict(settings, seed=k), [data], "GPU 0: test", fold=k) for k in range(2)}
    table = plots.provenance_table(records)
    assert list(table.columns) == ["fold 0", "fold 1"]
    assert table.loc["settings.encoder"].tolist() == ["densenet169"] * 2
    assert table.loc["settings.decoder_filters", "fold 0"] == "64, 32"
    assert table.loc["settings.augmentation.flip", "fold 1"] == "True"
    assert table.loc["settings.seed"].tolist() == ["0", "1"]
    assert table.loc["data_sha256", "fold 0"] == provenance.fingerprint([data])
    assert table.loc["device", "fold 1"] == "GPU 0: test"
    assert table.index[0].startswith("settings.") and table.index[-1].startswith("versions.")
    assert "versions.numpy" in table.index

    path = _write_json(tmp_path / "provenance.json", {"settings": {}, "versions": {}})
    with pytest.raises(InputError, match=r"provenance\.json: provenance lacks key\(s\) data_sha256, device"):
        plots.read_provenance(path)


def test_table_html_shows_every_value_escaped_with_bold_summary(tmp_path):
    table = pd.DataFrame(
        {
            "evaluated on": ["held-out fold 0", "mean of folds", "<script>"],
            "jaccard": [0.81, 0.8, 0.5],
            "n_images": pd.array([20, None, 3], dtype="Int64"),
        }
    )
    page = plots.table_html(table, "Segmentation scores", bold_rows=["mean of folds"])
    assert "<h3>Segmentation scores</h3>" in page
    assert '<tr class="summary"><th>mean of folds</th><td>0.8</td><td></td></tr>' in page
    assert "<th>&lt;script&gt;</th>" in page and "<script>" not in page
    assert page.count("<tr") == 4

    csv, html = tmp_path / "t.csv", tmp_path / "t.html"
    plots.write_table(table, csv, html, "Segmentation scores")
    assert pd.read_csv(csv)["jaccard"].tolist() == [0.81, 0.8, 0.5]
    assert html.read_text().startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.html"]


# ----------------------------------------------------------------------------------------------
# choices


def test_pick_cases_best_median_worst_without_overlap():
    scores = pd.Series(np.linspace(0, 1, 11), index=[f"ISIC_{i:07d}" for i in range(11)])
    picked = plots.pick_cases(scores, 3)
    assert picked["best"] == ["ISIC_0000010", "ISIC_0000009", "ISIC_0000008"]
    assert picked["worst"] == ["ISIC_0000000", "ISIC_0000001", "ISIC_0000002"]
    assert picked["median"] == ["ISIC_0000006", "ISIC_0000005", "ISIC_0000004"]

    few = plots.pick_cases(scores.iloc[:4], 3)
    assert few["best"] == ["ISIC_0000003", "ISIC_0000002", "ISIC_0000001"]
    assert few["worst"] == ["ISIC_0000000"] and few["median"] == []

    ties = pd.Series([0.5, 0.5, 0.5], index=["ISIC_0000003", "ISIC_0000001", "ISIC_0000002"])
    assert plots.pick_cases(ties, 1) == {
        "best": ["ISIC_0000001"],
        "median": ["ISIC_0000002"],
        "worst": ["ISIC_0000003"],
    }


def test_spread_sample_and_samples_per_class():
    ids = [f"ISIC_{i:07d}" for i in range(10)]
    assert plots.spread_sample(ids[::-1], 3) == ["ISIC_0000000", "ISIC_0000004", "ISIC_0000009"]
    assert plots.spread_sample(ids[:2], 5) == ids[:2]
    truth, _ = _truth_and_prob(16)
    chosen = plots.samples_per_class(truth, 2)
    assert list(chosen) == list(CLASSES)
    assert chosen["MEL"] == ["ISIC_0000000", "ISIC_0000014"] and chosen["VASC"] == ["ISIC_0000006", "ISIC_0000013"]
    assert all(truth.loc[ids_, name].eq(1).all() for name, ids_ in chosen.items())


# ----------------------------------------------------------------------------------------------
# figures


def test_training_curves_show_train_validation_learning_rate_and_kept_epoch():
    fig = plots.training_curves_figure(_history(metric="accuracy"), "Classification model, fold 1")
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "accuracy", "learning rate"]
    loss_ax = fig.axes[0]
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    np.testing.assert_allclose(lines["validation"].get_ydata(), _history()["val_loss"])
    np.testing.assert_allclose(lines["training"].get_xdata(), np.arange(1, 7))
    assert lines["kept (epoch 3)"].get_xdata()[0] == 3  # lowest val_loss is the third epoch
    assert fig.axes[2].get_yscale() == "log"
    assert fig._suptitle.get_text() == "Classification model, fold 1"


def test_training_curves_without_learning_rate_column():
    fig = plots.training_curves_figure(_history().drop(columns="learning_rate"), "t")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "jaccard"]


def test_jaccard_histogram_counts_every_image_and_splits_at_threshold():
    values = {"held-out folds": [0.1, 0.3, 0.7, 0.8, 0.9, 0.95], "set test": [0.66, 0.64]}
    fig = plots.jaccard_histogram_figure(values, 0.65)
    assert [ax.get_title() for ax in fig.axes] == ["held-out folds (6 images)", "set test (2 images)"]
    for ax, scores in zip(fig.axes, values.values()):
        bars = [p for p in ax.patches if isinstance(p, Rectangle)]
        assert sum(b.get_height() for b in bars) == len(scores)
        red = sum(b.get_height() for b in bars if b.get_facecolor()[0] > 0.8 and b.get_facecolor()[2] < 0.3)
        assert red == sum(v < 0.65 for v in scores)
    with pytest.raises(InputError, match="no per-image Jaccard"):
        plots.jaccard_histogram_figure({})


def _case(name: str, with_truth: bool, jaccard: float | None = None) -> plots.Case:
    mask = np.zeros((40, 60), bool)
    mask[10:30, 15:45] = True
    return plots.Case(name, textured_rgb(40, 60), mask, np.roll(mask, 5, axis=1) if with_truth else None, jaccard)


def test_gallery_draws_predicted_and_truth_contours_per_row():
    rows = [
        ("best", [_case("ISIC_0000001", True, 0.93), _case("ISIC_0000002", True, 0.9)]),
        ("worst", [_case("ISIC_0000003", True, 0.1)]),
    ]
    fig = plots.gallery_figure(rows, "Set test")
    axes = np.array(fig.axes).reshape(2, 2)
    assert axes[0, 0].get_title() == "ISIC_0000001  J=0.93"
    assert axes[0, 0].get_ylabel() == "best" and axes[1, 0].get_ylabel() == "worst"
    assert not axes[1, 1].axison  # the short row's empty slot
    contours = [c for c in axes[0, 0].collections if isinstance(c, ContourSet)]
    colours = {tuple(np.round(c.get_edgecolor()[0][:3], 3)) for c in contours}
    assert len(contours) == 2 and len(colours) == 2  # predicted and ground truth, told apart by colour
    sample_only = [c for c in axes[1, 0].collections if isinstance(c, ContourSet)]
    assert len(sample_only) == 2
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["predicted", "ground truth"]

    sample = plots.gallery_figure([("sample", [_case("ISIC_0000004", False)])], "Set validation")
    assert [t.get_text() for t in sample.legends[0].get_texts()] == ["predicted"]
    assert sample.axes[0].get_title() == "ISIC_0000004"
    with pytest.raises(InputError, match="no images"):
        plots.gallery_figure([("best", [])], "empty")


def test_class_samples_label_rows_with_counts():
    samples = {"MEL": [textured_rgb(30, 40)] * 3, "NV": [textured_rgb(30, 30)]}
    fig = plots.class_samples_figure(samples, {"MEL": 18, "NV": 48}, "crops")
    axes = np.array(fig.axes).reshape(2, 3)
    assert axes[0, 0].get_ylabel() == "MEL\n(18 images)" and axes[1, 0].get_ylabel() == "NV\n(48 images)"
    assert len(axes[0, 2].images) == 1 and len(axes[1, 1].images) == 0


def test_confusion_matrix_figure_prints_counts_and_recall():
    confusion = np.zeros((7, 7), int)
    confusion[0, 0], confusion[0, 1], confusion[1, 1] = 3, 1, 5
    fig = plots.confusion_matrix_figure(confusion, CLASSES, "held-out folds")
    counts_ax, recall_ax = fig.axes
    assert counts_ax.get_title() == "held-out folds (counts)"
    texts = [t.get_text() for t in counts_ax.texts]
    assert texts[:2] == ["3", "1"] and texts[8] == "5"
    recall = [t.get_text() for t in recall_ax.texts]
    assert recall[:2] == ["0.75", "0.25"] and recall[8] == "1.00" and recall[14] == "0.00"
    assert [t.get_text() for t in counts_ax.get_yticklabels()][:2] == ["MEL (4)", "NV (5)"]
    with pytest.raises(InputError, match="confusion matrix is"):
        plots.confusion_matrix_figure(confusion[:3], CLASSES)


def test_roc_figure_reports_each_class_auc():
    truth, prob = _truth_and_prob()
    fig = plots.roc_figure(truth.to_numpy(), prob.to_numpy(), CLASSES, "held-out folds")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    for j, name in enumerate(CLASSES):
        auc = sklearn.metrics.roc_auc_score(truth[name], prob[name])
        assert labels[j] == f"{name}: AUC {auc:.3f} (10)"

    only_two = truth.to_numpy().copy()
    only_two[:, 2:] = 0
    only_two[:, 0] = 1 - only_two[:, 1]
    fig = plots.roc_figure(only_two, prob.to_numpy(), CLASSES)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[2] == "BCC: no images"
    with pytest.raises(InputError, match="ROC needs"):
        plots.roc_figure(truth.to_numpy()[:, :3], prob.to_numpy(), CLASSES)


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_save_figure_writes_a_readable_file_atomically(tmp_path, suffix):
    fig = plots.training_curves_figure(_history(), "Segmentation model, fold 0")
    out = tmp_path / f"curves.{suffix}"
    plots.save_figure(fig, out)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    if suffix == "png":
        pixels = _pixels(out)
        assert pixels.shape[1] >= 1000  # readable without zooming: ~13 in at 100 dpi
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50
    else:
        assert out.read_text().lstrip().startswith("<?xml") and "<svg" in out.read_text()
    assert not plt.fignum_exists(fig.number)  # closed once written


def test_save_figure_leaves_nothing_when_writing_fails(tmp_path):
    fig = plots.training_curves_figure(_history(), "t")
    with pytest.raises(ValueError):
        plots.save_figure(fig, tmp_path / "curves.notaformat")
    assert list(tmp_path.iterdir()) == []


def _comparison() -> pd.DataFrame:
    from lesionflow.experiments import comparison_table

    def record(values, key):
        return {"folds": {f"fold_{k}": {key: v} for k, v in enumerate(values)}, "mean": {key: float(np.mean(values))}}

    return comparison_table(
        {
            "base": {
                "segmentation": record([0.7, 0.8], "jaccard"),
                "classification": record([0.5, 0.7], "balanced_accuracy"),
            },
            "ones": {
                "segmentation": record([0.7, 0.8], "jaccard"),
                "classification": record([0.3, 0.4], "balanced_accuracy"),
            },
        }
    )


def test_experiments_figure_has_a_bar_per_experiment_and_fold_and_the_mean():
    fig = plots.experiments_figure(_comparison(), "classification")
    (ax,) = fig.axes
    assert ax.get_title() == "balanced accuracy"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fold 0", "fold 1", "mean"]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert sorted(round(b.get_height(), 6) for b in bars) == sorted([0.5, 0.7, 0.6, 0.3, 0.4, 0.35])
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["base", "ones"]
    plt.close(fig)
    with pytest.raises(InputError, match="lack threshold_jaccard, jaccard"):
        plots.experiments_figure(_comparison().drop(columns="jaccard"), "segmentation")


def test_experiments_table_shows_each_change_what_is_reused_and_mean_scores():
    described = {
        "base": {
            "folder": "results/",
            "changes": [],
            "reads": {"segmentation": "results/", "classification": "results/"},
        },
        "ones": {
            "folder": "results/experiments/ones/",
            "changes": [{"key": "classification.training.class_weights", "base": "balanced", "value": "ones"}],
            "reads": {"segmentation": "results/", "classification": "results/experiments/ones/"},
        },
    }
    table = plots.experiments_table(described, _comparison()).set_index("experiment")
    assert table.loc["ones", "changes"] == "classification.training.class_weights: balanced → ones"
    assert table.loc["ones", "reuses"] == "segmentation from results/"
    assert table.loc["base", "changes"] == "(base)" and table.loc["base", "reuses"] == "nothing"
    assert table.loc["ones", "classification balanced_accuracy"] == pytest.approx(0.35)
    assert table.loc["base", "segmentation jaccard"] == pytest.approx(0.75)
    assert "selected" not in table
    chosen = plots.experiments_table(described, _comparison(), {"selected": "ones", "metric": "jaccard"})
    assert chosen.set_index("experiment")["selected"].to_dict() == {"base": "", "ones": "best held-out jaccard"}
