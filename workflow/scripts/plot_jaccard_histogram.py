"""Histogram of per-image Jaccard: held-out folds, and every image set with ground-truth masks."""

from lesionflow.jobs import job
from lesionflow.metrics import JACCARD_THRESHOLD
from lesionflow.plots.figures import jaccard_histogram_figure, save_figure
from lesionflow.plots.readers import read_per_image_scores

with job("plot_jaccard_histogram", snakemake.log[0], outputs=snakemake.output):
    scores = {"held-out folds": read_per_image_scores(snakemake.input.folds)}
    scores.update(
        {f"set {name}": read_per_image_scores(path) for name, path in zip(snakemake.params.sets, snakemake.input.sets)}
    )
    save_figure(jaccard_histogram_figure(scores, JACCARD_THRESHOLD), snakemake.output[0])
