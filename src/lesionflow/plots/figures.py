"""Matplotlib figures of the report (Agg backend), and the choice of which images they show.

Figures (``*_figure``) are pure functions from data to a :class:`matplotlib.figure.Figure`, written by
:func:`save_figure` (atomically, format from the file's suffix). :func:`pick_cases`, :func:`spread_sample`
and :func:`samples_per_class` choose the images of the galleries.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..errors import InputError  # noqa: E402
from ..imageio import atomic_path  # noqa: E402
from .readers import Case  # noqa: E402

#: Colours of the predicted and the ground-truth contour in the mask gallery.
PREDICTED_COLOUR = "#00e5ff"
TRUTH_COLOUR = "#ffd400"
#: Histories hold these besides ``epoch`` and the metric pairs ``<name>`` / ``val_<name>``.
LEARNING_RATE_COLUMNS = ("learning_rate", "lr")

#: Matplotlib settings of every figure here (applied per figure, not globally).
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


# ----------------------------------------------------------------------------------------------
# choosing what to show


def pick_cases(scores: pd.Series, per_group: int) -> dict[str, list[str]]:
    """The ids of the ``per_group`` best, median and worst images by score (no image in two groups).

    Ties are broken by id, so the choice is reproducible. With fewer than three groups' worth of
    images, the groups share them out best first.
    """
    ranked = scores.sort_index().sort_values(ascending=False, kind="stable")
    ids = list(ranked.index)
    n = len(ids)
    best = ids[:per_group]
    worst = ids[max(len(best), n - per_group) :][::-1]
    middle = ids[len(best) : n - len(worst)]
    start = max(0, len(middle) // 2 - per_group // 2)
    median = middle[start : start + per_group]
    return {"best": best, "median": median, "worst": worst}


def spread_sample(ids: Sequence[str], count: int) -> list[str]:
    """``count`` ids spread evenly over the sorted ``ids`` (all of them if there are fewer)."""
    ordered = sorted(ids)
    if len(ordered) <= count:
        return ordered
    return [ordered[int(i)] for i in np.linspace(0, len(ordered) - 1, count).round().astype(int)]


def samples_per_class(truth: pd.DataFrame, per_class: int) -> dict[str, list[str]]:
    """For each class (column of the one-hot ``truth``, indexed by image), up to ``per_class`` of its image ids."""
    label = truth.columns[truth.to_numpy().argmax(axis=1)]
    return {name: spread_sample(list(truth.index[label == name]), per_class) for name in truth.columns}


# ----------------------------------------------------------------------------------------------
# figures


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> None:
    """Write ``fig`` to ``path`` (PNG or SVG, from the suffix) atomically, then close it."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", dpi=dpi)
    finally:
        plt.close(fig)


def _metric_names(history: pd.DataFrame) -> list[str]:
    """Metrics logged for both training and validation, loss first."""
    names = [c for c in history.columns if f"val_{c}" in history.columns]
    return sorted(names, key=lambda c: (c != "loss", c))


@matplotlib.rc_context(STYLE)
def training_curves_figure(history: pd.DataFrame, title: str) -> Figure:
    """Training and validation loss and metrics per epoch, and the learning rate (log scale).

    One panel per metric logged for both sets (``loss``, ``jaccard``, ``accuracy``, …) plus one for the
    learning rate when it was logged. A dotted line marks the epoch of lowest validation loss: the
    weights that were kept.
    """
    names = _metric_names(history)
    lr = next((c for c in LEARNING_RATE_COLUMNS if c in history.columns), None)
    panels = len(names) + (lr is not None)
    epoch = history["epoch"].to_numpy() + 1
    best = int(epoch[int(np.nanargmin(history["val_loss"].to_numpy()))]) if history["val_loss"].notna().any() else None
    fig, axes = plt.subplots(1, panels, figsize=(4.3 * panels, 3.6), constrained_layout=True, squeeze=False)
    axes = axes[0]
    for ax, name in zip(axes, names):
        ax.plot(epoch, history[name], "o-", ms=3, color="#1f77b4", label="training")
        ax.plot(epoch, history[f"val_{name}"], "s--", ms=3, color="#d62728", label="validation")
        ax.set_title(name.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        if best is not None:
            ax.axvline(best, color="0.4", ls=":", lw=1.2, label=f"kept (epoch {best})")
    axes[0].legend(loc="best")
    if lr is not None:
        ax = axes[-1]
        ax.step(epoch, history[lr], where="post", color="#2ca02c")
        ax.set_yscale("log")
        ax.set_title("learning rate")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3, which="both")
    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    fig.suptitle(title, fontsize=13)
    return fig


@matplotlib.rc_context(STYLE)
def jaccard_histogram_figure(scores: Mapping[str, Sequence[float]], threshold: float = 0.65) -> Figure:
    """Histogram of per-image Jaccard, one panel per evaluated image set, with the mean and the threshold.

    ``scores`` maps a panel's title (``held-out folds``, ``set test``) to its per-image Jaccard values;
    images left of ``threshold`` count 0 in the thresholded Jaccard.
    """
    if not scores:
        raise InputError("no per-image Jaccard scores to plot")
    fig, axes = plt.subplots(1, len(scores), figsize=(5.2 * len(scores), 3.8), constrained_layout=True, squeeze=False)
    bins = np.linspace(0, 1, 21)
    for ax, (name, values) in zip(axes[0], scores.items()):
        values = np.asarray(values, dtype=float)
        below = values < threshold
        ax.hist(values[~below], bins=bins, color="#1f77b4", edgecolor="white", label=f"≥ {threshold}")
        ax.hist(
            values[below],
            bins=bins,
            color="#d62728",
            edgecolor="white",
            label=f"< {threshold} ({int(below.sum())} of {values.size}, count 0)",
        )
        ax.axvline(threshold, color="0.3", ls="--", lw=1)
        if values.size:
            ax.axvline(values.mean(), color="black", lw=1.5, label=f"mean {values.mean():.3f}")
        ax.set_xlim(0, 1)
        ax.set_xlabel("Jaccard index per image")
        ax.set_ylabel("images")
        ax.set_title(f"{name} ({values.size} images)")
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.legend(loc="upper left")
    return fig


@matplotlib.rc_context(STYLE)
def gallery_figure(rows: Sequence[tuple[str, Sequence[Case]]], title: str) -> Figure:
    """Rows of images with the predicted lesion contour (cyan) and the ground-truth contour (yellow) if known.

    ``rows``: (name, cases) pairs, the name (``best``, ``median``, ``worst``, ``sample``) labelling the row.
    """
    groups = [(name, cases) for name, cases in rows if cases]
    if not groups:
        raise InputError("no images for the mask gallery")
    cols = max(len(cases) for _, cases in groups)
    fig, axes = plt.subplots(
        len(groups), cols, figsize=(3.1 * cols, 2.6 * len(groups) + 0.6), constrained_layout=True, squeeze=False
    )
    for row, (name, cases) in zip(axes, groups):
        for col, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            if col >= len(cases):
                ax.set_axis_off()
                continue
            case = cases[col]
            ax.imshow(case.image)
            if case.truth is not None and case.truth.any():
                ax.contour(case.truth, levels=[0.5], colors=TRUTH_COLOUR, linewidths=2)
            if case.predicted.any():
                ax.contour(
                    case.predicted,
                    levels=[0.5],
                    colors=PREDICTED_COLOUR,
                    linewidths=2,
                    linestyles="--" if case.truth is not None else "-",
                )
            label = case.image_id if case.jaccard is None else f"{case.image_id}  J={case.jaccard:.2f}"
            ax.set_title(label, fontsize=10)
            if col == 0:
                ax.set_ylabel(name, fontsize=12, fontweight="bold")
    handles = [plt.Line2D([], [], color=PREDICTED_COLOUR, lw=2, label="predicted")]
    if any(c.truth is not None for _, cases in groups for c in cases):
        handles.append(plt.Line2D([], [], color=TRUTH_COLOUR, lw=2, label="ground truth"))
    fig.legend(handles=handles, loc="outside upper right", ncols=len(handles), frameon=False)
    fig.suptitle(title, fontsize=13)
    return fig


@matplotlib.rc_context(STYLE)
def class_samples_figure(samples: Mapping[str, Sequence[np.ndarray]], counts: Mapping[str, int], title: str) -> Figure:
    """One row per class: a few of its masked lesion crops, the row labelled with the class's image count."""
    if not samples:
        raise InputError("no classes to show")
    cols = max(1, max(len(v) for v in samples.values()))
    fig, axes = plt.subplots(
        len(samples), cols, figsize=(1.7 * cols + 0.8, 1.7 * len(samples) + 0.4), constrained_layout=True, squeeze=False
    )
    for row, (name, images) in zip(axes, samples.items()):
        for col, ax in enumerate(row):
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col < len(images):
                ax.imshow(images[col])
            if col == 0:
                ax.set_ylabel(f"{name}\n({counts.get(name, 0)} images)", fontsize=11, fontweight="bold")
    fig.suptitle(title, fontsize=13)
    return fig


@matplotlib.rc_context(STYLE)
def confusion_matrix_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], title: str = "") -> Figure:
    """Counts and row-normalised (recall) confusion matrices side by side."""
    counts = np.asarray(confusion, dtype=float)
    if counts.shape != (len(classes), len(classes)):
        raise InputError(f"confusion matrix is {counts.shape}, expected {len(classes)}×{len(classes)}")
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), constrained_layout=True)
    for ax, values, name, fmt in ((axes[0], counts, "counts", "{:.0f}"), (axes[1], normalised, "recall", "{:.2f}")):
        ax.imshow(values, cmap="Blues", vmin=0, vmax=None if name == "counts" else 1)
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), [f"{c} ({int(n)})" for c, n in zip(classes, rows[:, 0])])
        ax.set_xlabel("predicted")
        ax.set_ylabel("true (images)")
        ax.set_title(f"{title} ({name})".strip())
        ax.spines[:].set_visible(False)
        top = values.max() or 1
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(
                    j,
                    i,
                    fmt.format(values[i, j]),
                    ha="center",
                    va="center",
                    color="white" if values[i, j] > top / 2 else "black",
                    fontsize=10,
                )
    return fig


@matplotlib.rc_context(STYLE)
def roc_figure(truth: np.ndarray, prob: np.ndarray, classes: Sequence[str], title: str = "") -> Figure:
    """One-vs-rest ROC curve of each class, its AUC in the legend (classes absent from the truth are listed as such).

    ``truth``: N×K one-hot (or class index per image, length N); ``prob``: N×K probabilities.
    """
    import sklearn.metrics

    prob = np.asarray(prob, dtype=float)
    truth = np.asarray(truth)
    if truth.ndim == 1:
        truth = np.eye(len(classes))[truth]
    if prob.shape != truth.shape or prob.shape[1] != len(classes):
        raise InputError(f"ROC needs N×{len(classes)} truth and probabilities; got {truth.shape} and {prob.shape}")
    fig, ax = plt.subplots(figsize=(6.4, 5.6), constrained_layout=True)
    colours = plt.get_cmap("tab10")
    for j, name in enumerate(classes):
        positive = truth[:, j] > 0.5
        if positive.all() or not positive.any():
            ax.plot([], [], color=colours(j), label=f"{name}: no {'negatives' if positive.all() else 'images'}")
            continue
        fpr, tpr, _ = sklearn.metrics.roc_curve(positive, prob[:, j])
        auc = sklearn.metrics.auc(fpr, tpr)
        ax.plot(fpr, tpr, color=colours(j), lw=2, label=f"{name}: AUC {auc:.3f} ({int(positive.sum())})")
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1)
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_aspect("equal")
    ax.set_xlabel("false positive rate (1 − specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", title="class: AUC (images)")
    return fig


#: The metrics the experiments figure shows per stage: the challenge's ranking metric first.
EXPERIMENT_METRICS = {
    "segmentation": ("threshold_jaccard", "jaccard"),
    "classification": ("balanced_accuracy", "accuracy"),
}


@matplotlib.rc_context(STYLE)
def experiments_figure(comparison: pd.DataFrame, stage: str) -> Figure:
    """Each experiment's held-out score per fold and their mean, side by side (the original README's table
    of class-weight schemes per fold, as a plot): one panel per metric of :data:`EXPERIMENT_METRICS`.

    ``comparison`` is ``results/experiments/comparison.csv`` (columns ``experiment``, ``stage``, ``fold``
    and the metrics).
    """
    rows = comparison[comparison["stage"] == stage]
    if rows.empty:
        raise InputError(f"the comparison has no {stage} rows")
    metrics = [m for m in EXPERIMENT_METRICS[stage] if m in rows.columns]
    if not metrics:
        raise InputError(f"the comparison's {stage} rows lack {', '.join(EXPERIMENT_METRICS[stage])}")
    experiments = list(dict.fromkeys(rows["experiment"]))
    folds = sorted({str(f) for f in rows["fold"] if str(f) != "mean"}, key=lambda f: (len(f), f)) + ["mean"]
    width = 0.8 / len(experiments)
    x = np.arange(len(folds))
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(max(5.0, 1.1 * len(folds) * len(experiments) ** 0.5) * len(metrics), 3.8),
        constrained_layout=True,
        squeeze=False,
    )
    colours = plt.get_cmap("tab10")
    for ax, metric in zip(axes[0], metrics):
        for i, name in enumerate(experiments):
            mine = rows[rows["experiment"] == name].assign(fold=lambda t: t["fold"].astype(str)).set_index("fold")
            values = [float(mine[metric].get(f, np.nan)) for f in folds]
            ax.bar(x + (i - (len(experiments) - 1) / 2) * width, values, width, label=name, color=colours(i % 10))
        ax.set_xticks(x, [f"fold {f}" if f != "mean" else "mean" for f in folds])
        ax.set_title(metric.replace("_", " "))
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3, axis="y")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="outside right upper", title="experiment")
    fig.suptitle(f"{stage.capitalize()}: held-out scores per experiment", fontsize=13)
    return fig
