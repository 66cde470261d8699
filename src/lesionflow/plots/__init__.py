"""Figures and tables for ``snakemake --report`` (matplotlib, Agg backend).

Three modules, by job:

* :mod:`.readers`: readers of the run's files (``read_*``, ``load_*``: metrics JSON, training histories,
  provenance records, per-image scores, prediction CSVs, images and masks); a results file in, checked
  data out; bad input raises :class:`~lesionflow.errors.InputError` naming the file and the problem.
  Also the record shapes they check (``SEGMENTATION_COLUMNS``, ``CLASSIFICATION_COLUMNS``,
  ``PROVENANCE_KEYS``) and :class:`Case`, one gallery tile;
* :mod:`.tables`: pure builders from loaded data to a table (``*_table``: metrics, per class,
  provenance) and :func:`write_table`, which writes one as CSV and as a standalone HTML page
  (:func:`table_html`, with its CSS);
* :mod:`.figures`: pure functions from data to a :class:`matplotlib.figure.Figure` (``*_figure``:
  training curves, Jaccard histograms, mask galleries, class samples, confusion matrices, ROC curves),
  written by :func:`save_figure` (atomically, format from the file's suffix), and the choice of the
  images they show (:func:`pick_cases`, :func:`spread_sample`, :func:`samples_per_class`).

Every public name of the three is re-exported here, so ``from lesionflow.plots import ...`` and
``plots.<name>`` keep working.
"""

from __future__ import annotations

from .figures import (
    LEARNING_RATE_COLUMNS,
    PREDICTED_COLOUR,
    STYLE,
    TRUTH_COLOUR,
    class_samples_figure,
    confusion_matrix_figure,
    experiments_figure,
    gallery_figure,
    jaccard_histogram_figure,
    pick_cases,
    roc_figure,
    samples_per_class,
    save_figure,
    spread_sample,
    training_curves_figure,
)
from .readers import (
    CLASSIFICATION_COLUMNS,
    PROVENANCE_KEYS,
    SEGMENTATION_COLUMNS,
    Case,
    load_case,
    load_mask,
    load_thumbnail,
    read_history,
    read_json,
    read_metrics,
    read_per_image_scores,
    read_probabilities,
    read_provenance,
    read_table,
)
from .tables import (
    experiments_table,
    metrics_table,
    per_class_table,
    per_class_tables,
    provenance_table,
    table_html,
    write_table,
)

__all__ = [
    # readers
    "CLASSIFICATION_COLUMNS",
    "PROVENANCE_KEYS",
    "SEGMENTATION_COLUMNS",
    "Case",
    "load_case",
    "load_mask",
    "load_thumbnail",
    "read_history",
    "read_json",
    "read_metrics",
    "read_per_image_scores",
    "read_probabilities",
    "read_provenance",
    "read_table",
    # tables
    "experiments_table",
    "metrics_table",
    "per_class_table",
    "per_class_tables",
    "provenance_table",
    "table_html",
    "write_table",
    # figures
    "LEARNING_RATE_COLUMNS",
    "PREDICTED_COLOUR",
    "STYLE",
    "TRUTH_COLOUR",
    "class_samples_figure",
    "confusion_matrix_figure",
    "experiments_figure",
    "gallery_figure",
    "jaccard_histogram_figure",
    "pick_cases",
    "roc_figure",
    "samples_per_class",
    "save_figure",
    "spread_sample",
    "training_curves_figure",
]
