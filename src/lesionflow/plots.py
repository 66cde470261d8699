"""Figures and tables for ``snakemake --report`` (matplotlib, Agg backend).

Three kinds of function:

* readers (``read_*``, ``load_*``): a results file in, checked data out; bad input raises
  :class:`InputError` naming the file and the problem;
* builders (``*_table``, ``pick_cases``): pure functions from loaded data to a table or a choice;
* figures (``*_figure``): pure functions from data to a :class:`matplotlib.figure.Figure`, written by
  :func:`save_figure` (atomically, format from the file's suffix).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from PIL import Image  # noqa: E402

from .errors import InputError  # noqa: E402
from .imageio import atomic_path  # noqa: E402

#: Colours of the predicted and the ground-truth contour in the mask gallery.
PREDICTED_COLOUR = "#00e5ff"
TRUTH_COLOUR = "#ffd400"
#: Histories hold these besides ``epoch`` and the metric pairs ``<name>`` / ``val_<name>``.
LEARNING_RATE_COLUMNS = ("learning_rate", "lr")
#: Fields every provenance record has (see :mod:`lesionflow.provenance`).
PROVENANCE_KEYS = ("settings", "data_sha256", "versions", "device")

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
# readers


def read_json(path: str | Path) -> Any:
    """The JSON document at ``path``."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", path) from None


def read_metrics(path: str | Path, stage: str, kind: str) -> dict[str, Any]:
    """A metrics JSON of ``stage`` (``segmentation``/``classification``), checked for what the tables use.

    ``kind`` is ``folds`` (``results/metrics/{stage}.json``: per fold and mean, and for classification all
    folds pooled) or ``set`` (``results/metrics/{stage}_{set}.json``: one image set's scores).
    """
    record = read_json(path)
    scored = [
        c
        for c in {"segmentation": SEGMENTATION_COLUMNS, "classification": CLASSIFICATION_COLUMNS}[stage]
        if c != "n_images"
    ]
    need_classes = stage == "classification"
    try:
        if kind == "set":
            _check_keys(record, [*scored, *(["per_class"] if need_classes else [])], "scores")
        else:
            _check_keys(record, ["folds", "mean", *(["all_folds"] if need_classes else [])], "metrics")
            if not isinstance(record["folds"], Mapping) or not record["folds"]:
                raise InputError("'folds' must be a non-empty object of fold_<k> entries")
            for name, fold in record["folds"].items():
                if not name.startswith("fold_") or not name[5:].isdigit():
                    raise InputError(f"fold key {name!r} is not fold_<number>")
                _check_keys(fold, scored, name)
            _check_keys(record["mean"], [c for c in scored if c != "macro_auc_sens_80"], "mean")
            if need_classes:
                _check_keys(record["all_folds"], [*scored, "per_class"], "all_folds")
    except InputError as exc:
        raise InputError(str(exc), path) from None
    return record


def read_provenance(path: str | Path) -> dict[str, Any]:
    """A model's ``provenance.json``, checked for the fields of the provenance table."""
    record = read_json(path)
    try:
        _check_keys(record, PROVENANCE_KEYS, "provenance")
    except InputError as exc:
        raise InputError(str(exc), path) from None
    return record


def read_table(path: str | Path, required: Sequence[str] = (), what: str = "CSV") -> pd.DataFrame:
    """A CSV file with at least the ``required`` columns."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"image": str})
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable {what} ({type(exc).__name__}: {exc})", path) from None
    if missing := [c for c in required if c not in table.columns]:
        raise InputError(
            f"missing column(s) {', '.join(missing)} (columns: {', '.join(map(str, table.columns))})", path
        )
    return table


def read_history(path: str | Path) -> pd.DataFrame:
    """A training history (Keras CSVLogger): ``epoch``, ``loss``, ``val_loss``, other metrics, learning rate."""
    table = read_table(path, ("epoch", "loss", "val_loss"), "training history")
    if table.empty:
        raise InputError("training history has no epochs", path)
    numeric = table.apply(pd.to_numeric, errors="coerce")
    if bad := [c for c in table.columns if (numeric[c].isna() & table[c].notna()).any()]:
        row = int(np.flatnonzero(numeric[bad[0]].isna() & table[bad[0]].notna())[0])
        raise InputError(
            f"row {row + 2}: column {bad[0]} holds a non-numeric value {str(table[bad[0]].iloc[row])!r}", path
        )
    return numeric


def read_per_image_scores(path: str | Path) -> pd.Series:
    """Per-image Jaccard, indexed by image id, from ``evaluation_per_image.csv`` or ``scores_{set}.csv``."""
    table = read_table(path, ("image", "jaccard"), "per-image score table")
    scores = pd.to_numeric(table["jaccard"], errors="coerce")
    if scores.isna().any() or not scores.between(0, 1).all():
        row = int(np.flatnonzero(scores.isna() | ~scores.between(0, 1))[0])
        raise InputError(f"row {row + 2}: jaccard {str(table['jaccard'].iloc[row])!r} is not a number in [0, 1]", path)
    return pd.Series(scores.to_numpy(), index=pd.Index(table["image"].astype(str), name="image"), name="jaccard")


def read_probabilities(path: str | Path, classes: Sequence[str]) -> pd.DataFrame:
    """Class probabilities indexed by image (a submission CSV or the held-out predictions)."""
    table = read_table(path, ("image", *classes), "prediction table")
    prob = table.set_index("image")[list(classes)].apply(pd.to_numeric, errors="coerce")
    if prob.isna().any().any():
        raise InputError("probabilities must be numbers (found empty or non-numeric values)", path)
    return prob


def load_thumbnail(path: str | Path, max_side: int) -> np.ndarray:
    """An RGB ``uint8`` copy of the image at ``path`` (stored pixel grid), its longer side at most ``max_side``.

    JPEGs are decoded in draft mode, so a 30-megapixel photograph costs a fraction of a full decode.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            if img.format == "JPEG":
                img.draft("RGB", (2 * max_side, 2 * max_side))
            img = img.convert("RGB")
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.asarray(img)
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except Exception as exc:
        raise InputError(f"not a readable image ({type(exc).__name__}: {exc})", path) from None


def load_mask(path: str | Path, shape: tuple[int, int]) -> np.ndarray:
    """The 0/255 mask at ``path`` as a boolean array resized (nearest neighbour) to ``shape`` (H, W)."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            small = img.convert("L").resize((shape[1], shape[0]), Image.Resampling.NEAREST)
            return np.asarray(small) > 128
    except FileNotFoundError:
        raise InputError("file does not exist", path) from None
    except Exception as exc:
        raise InputError(f"not a readable mask ({type(exc).__name__}: {exc})", path) from None


def load_case(
    image_path: str | Path,
    predicted_path: str | Path,
    truth_path: str | Path | None = None,
    jaccard: float | None = None,
    max_side: int = 320,
) -> "Case":
    """A gallery tile: the image's thumbnail with its predicted (and ground-truth) mask at the same size."""
    image = load_thumbnail(image_path, max_side)
    shape = image.shape[:2]
    truth = None if truth_path is None else load_mask(truth_path, shape)
    return Case(Path(image_path).stem, image, load_mask(predicted_path, shape), truth, jaccard)


# ----------------------------------------------------------------------------------------------
# tables


def _rounded(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    return table.apply(lambda c: c.round(digits) if pd.api.types.is_float_dtype(c) else c)


#: Columns of the fold tables, in order.
SEGMENTATION_COLUMNS = ("jaccard", "threshold_jaccard", "dice", "accuracy", "sensitivity", "specificity", "n_images")
CLASSIFICATION_COLUMNS = (
    "balanced_accuracy",
    "accuracy",
    "macro_auc",
    "macro_auc_sens_80",
    "mean_average_precision",
    "n_images",
)


def _check_keys(record: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    if not isinstance(record, Mapping):
        raise InputError(f"{where} is not a JSON object")
    if missing := [k for k in keys if k not in record]:
        raise InputError(f"{where} lacks key(s) {', '.join(missing)}")


def metrics_table(
    stage: str,
    folds_summary: Mapping[str, Any],
    set_scores: Mapping[str, Mapping[str, Any]],
) -> pd.DataFrame:
    """One row per held-out fold, their mean (and, for classification, all folds pooled), one per scored set.

    ``stage`` is ``segmentation`` or ``classification``; ``folds_summary`` the stage's metrics JSON
    (``folds``, ``mean`` and for classification ``all_folds``); ``set_scores`` the JSON of each image set
    scored against its ground truth. Rows are named by the ``evaluated on`` column.
    """
    columns = {"segmentation": SEGMENTATION_COLUMNS, "classification": CLASSIFICATION_COLUMNS}[stage]
    scored = [c for c in columns if c != "n_images"]
    _check_keys(folds_summary, ("folds", "mean"), f"{stage} metrics")
    rows: list[dict[str, Any]] = []
    for name, fold in sorted(folds_summary["folds"].items(), key=lambda kv: (len(kv[0]), kv[0])):
        _check_keys(fold, scored, f"{stage} metrics, {name}")
        rows.append({"evaluated on": f"held-out {name.replace('_', ' ')}", **{c: fold.get(c) for c in columns}})
    mean = folds_summary["mean"]
    _check_keys(mean, [c for c in scored if c != "macro_auc_sens_80"], f"{stage} metrics, mean")
    rows.append({"evaluated on": "mean of folds", **{c: mean.get(c) for c in columns if c != "n_images"}})
    if "all_folds" in folds_summary:
        rows.append({"evaluated on": "all folds pooled", **{c: folds_summary["all_folds"].get(c) for c in columns}})
    for image_set, scores in set_scores.items():
        _check_keys(scores, scored, f"{stage} scores of {image_set}")
        rows.append({"evaluated on": f"set {image_set}", **{c: scores.get(c) for c in columns}})
    table = pd.DataFrame(rows, columns=["evaluated on", *columns])
    table[scored] = table[scored].astype(float)
    table["n_images"] = table["n_images"].astype("Int64")
    return _rounded(table)


def per_class_table(scores: Mapping[str, Any], classes: Sequence[str]) -> pd.DataFrame:
    """Per-class support, precision, recall, F1, specificity, AUC and average precision, one row per class."""
    _check_keys(scores, ("per_class",), "classification scores")
    keys = ("support", "precision", "recall", "f1", "specificity", "auc", "average_precision")
    rows = []
    for name in classes:
        record = scores["per_class"].get(name)
        if record is None:
            raise InputError(f"classification scores lack class {name}")
        rows.append({"class": name, **{k: record.get(k) for k in keys}})
    table = pd.DataFrame(rows, columns=["class", *keys])
    table[list(keys[1:])] = table[list(keys[1:])].astype(float)
    return _rounded(table)


def per_class_tables(sources: Mapping[str, Mapping[str, Any]], classes: Sequence[str]) -> pd.DataFrame:
    """:func:`per_class_table` of several evaluations stacked, an ``evaluated on`` column first."""
    tables = [per_class_table(scores, classes).assign(**{"evaluated on": name}) for name, scores in sources.items()]
    if not tables:
        raise InputError("no classification scores to tabulate")
    table = pd.concat(tables, ignore_index=True)
    return table[["evaluated on", *[c for c in table.columns if c != "evaluated on"]]]


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, list):
            flat[name] = (
                ", ".join(map(str, value)) if all(not isinstance(v, (dict, list)) for v in value) else json.dumps(value)
            )
        else:
            flat[name] = "" if value is None else value
    return flat


def provenance_table(records: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """Provenance of several models side by side: one row per field (settings, data, versions), one column per model.

    ``records`` maps a model's name (e.g. ``fold 0``) to its ``provenance.json``. Nested settings are
    flattened to dotted names; lists (inputs, decoder widths) become comma-separated text.
    """
    if not records:
        raise InputError("no provenance records to tabulate")
    order = ["fold", "device", "created", "epochs_run", "data_sha256", "inputs"]
    flat = {}
    for name, record in records.items():
        _check_keys(record, PROVENANCE_KEYS, f"provenance of {name}")
        flat[name] = _flatten(record)
    fields = list(dict.fromkeys(k for f in flat.values() for k in f))
    settings = [k for k in fields if k.startswith("settings.")]
    versions = [k for k in fields if k.startswith("versions.")]
    rest = [k for k in fields if k not in settings and k not in versions]
    rest.sort(key=lambda k: (order.index(k) if k in order else len(order), k))
    rows = settings + rest + versions
    table = pd.DataFrame(
        {name: [flat[name].get(k, "") for k in rows] for name in records}, index=pd.Index(rows, name="field")
    )
    return table.astype(str)


_TABLE_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; margin: 0.6em; color: #1e293b; }
h3 { font-size: 1.05em; margin: 0 0 0.5em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e2e8f0; padding: 0.3em 0.7em; text-align: right; white-space: nowrap; }
th { background: #f1f5f9; }
thead th:first-child, tbody th, td.text { text-align: left; }
tr.summary td, tr.summary th { font-weight: bold; background: #f8fafc; }
td.wrap { white-space: normal; word-break: break-all; min-width: 16em; max-width: 24em; text-align: left; }
"""


def table_html(table: pd.DataFrame, title: str, bold_rows: Sequence[str] = (), index: bool = False) -> str:
    """A standalone HTML page showing ``table`` (the report shows HTML results inline; a CSV is only a download)."""
    shown = table if index else table.set_index(table.columns[0])
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in [shown.index.name or "", *shown.columns])
    body = []
    for label, row in shown.iterrows():
        cells = []
        for value in row:
            text = "" if pd.isna(value) else str(value)
            cls = "wrap" if len(text) > 40 else ("text" if text and not _is_number(value) else "")
            cells.append(f'<td class="{cls}">{html.escape(text)}</td>' if cls else f"<td>{html.escape(text)}</td>")
        css = ' class="summary"' if str(label) in bold_rows else ""
        body.append(f"<tr{css}><th>{html.escape(str(label))}</th>{''.join(cells)}</tr>")
    return (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_TABLE_CSS}</style></head>\n<body><h3>{html.escape(title)}</h3>\n"
        f"<table><thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody></table></body></html>\n"
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def write_table(
    table: pd.DataFrame,
    csv_path: str | Path,
    html_path: str | Path,
    title: str,
    bold_rows: Sequence[str] = (),
    index: bool = False,
) -> None:
    """Write ``table`` as CSV (for other tools) and as an HTML page (for the report), both atomically."""
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=index)
    with atomic_path(html_path) as tmp:
        tmp.write_text(table_html(table, title, bold_rows, index))


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


@dataclass(frozen=True)
class Case:
    """One gallery tile: an image with its predicted mask, the ground truth if known, and its score."""

    image_id: str
    image: np.ndarray
    predicted: np.ndarray
    truth: np.ndarray | None = None
    jaccard: float | None = None


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
