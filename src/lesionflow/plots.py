"""Figures for the report (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def confusion_matrix_figure(confusion: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path,
                            title: str = "") -> None:
    """Counts and row-normalised (recall) confusion matrices side by side, saved as PNG."""
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    normalised = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.2), constrained_layout=True)
    for ax, values, name, fmt in ((axes[0], counts, "counts", "{:.0f}"), (axes[1], normalised, "recall", "{:.2f}")):
        ax.imshow(values, cmap="Blues", vmin=0)
        ax.set_xticks(range(len(classes)), classes)
        ax.set_yticks(range(len(classes)), classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{title} ({name})".strip())
        top = values.max() or 1
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, fmt.format(values[i, j]), ha="center", va="center",
                        color="white" if values[i, j] > top / 2 else "black", fontsize=10)
    fig.savefig(path, dpi=110)
    plt.close(fig)
