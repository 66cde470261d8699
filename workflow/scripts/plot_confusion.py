"""Confusion matrices (counts and recall) and per-class ROC curves of the classifier's predictions."""

from lesionflow import isic
from lesionflow.jobs import job
from lesionflow.labels import read_ground_truth
from lesionflow.metrics import OFFICIAL_ZERO_WEIGHT_IMAGES, classification_scores
from lesionflow.plots.figures import confusion_matrix_figure, roc_figure, save_figure
from lesionflow.plots.readers import read_probabilities

params = snakemake.params
with job(f"plot_confusion {snakemake.wildcards.source}", snakemake.log[0], outputs=snakemake.output) as log:
    prob = read_probabilities(snakemake.input.predictions, isic.CLASSES)
    truth = read_ground_truth(snakemake.input.labels, prob.index)
    scores = classification_scores(truth, prob, official_exclusions=params.official_exclusions)
    save_figure(
        confusion_matrix_figure(scores["confusion_matrix"], isic.CLASSES, params.title), snakemake.output.confusion
    )
    kept = prob.index.difference(list(OFFICIAL_ZERO_WEIGHT_IMAGES)) if params.official_exclusions else prob.index
    save_figure(
        roc_figure(truth.loc[kept].to_numpy(), prob.loc[kept].to_numpy(), isic.CLASSES, params.title),
        snakemake.output.roc,
    )
    log.info("balanced accuracy %.4f over %d images", scores["balanced_accuracy"], scores["n_images"])
