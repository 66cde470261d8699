"""Tables of the report: pure builders from loaded data to a :class:`pandas.DataFrame` (``*_table``), and
:func:`write_table`, which writes one as CSV (for other tools) and as a standalone HTML page (for the report).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import InputError
from ..imageio import atomic_path
from .readers import CLASSIFICATION_COLUMNS, PROVENANCE_KEYS, SEGMENTATION_COLUMNS, _check_keys


def _rounded(table: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    return table.apply(lambda c: c.round(digits) if pd.api.types.is_float_dtype(c) else c)


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


def experiments_table(
    described: Mapping[str, Mapping[str, Any]],
    comparison: pd.DataFrame,
    selected: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """One row per experiment: the settings it changes (``key: base → value``), the steps it reuses from
    another configuration, and its mean held-out scores; with ``selected``, which one was selected and why.

    ``described`` is ``results/experiments/experiments.json``; ``comparison`` is ``comparison.csv``;
    ``selected`` is ``results/experiments/selected.json`` (``experiments_select``).
    """
    means = comparison[comparison["fold"].astype(str) == "mean"]
    shown = {"segmentation": ("jaccard", "threshold_jaccard"), "classification": ("balanced_accuracy", "accuracy")}
    rows = []
    for name, record in described.items():
        _check_keys(record, ("changes", "reads", "folder"), f"experiment {name}")
        changes = "; ".join(f"{c['key']}: {c['base']} → {c['value']}" for c in record["changes"]) or "(base)"
        reused = [f"{step} from {folder}" for step, folder in record["reads"].items() if folder != record["folder"]]
        row = {"experiment": name, "changes": changes, "reuses": "; ".join(reused) or "nothing"}
        for stage, metrics in shown.items():
            mine = means[(means["experiment"] == name) & (means["stage"] == stage)]
            for metric in metrics:
                row[f"{stage} {metric}"] = float(mine[metric].iloc[0]) if len(mine) and metric in mine else np.nan
        if selected is not None:
            _check_keys(selected, ("selected", "metric"), "selection")
            row["selected"] = f"best held-out {selected['metric']}" if name == selected["selected"] else ""
        rows.append(row)
    return _rounded(pd.DataFrame(rows))
