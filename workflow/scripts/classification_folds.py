"""Folds for the classifier, stratified by class, with every lesion on one side only."""

import pandas as pd

from lesionflow.folds import grouped_stratified_kfold
from lesionflow.jobs import job
from lesionflow.labels import class_indices, read_ground_truth, read_groupings

with job("classification_folds", snakemake.log[0], outputs=snakemake.output) as log:
    ids = pd.read_csv(snakemake.input.index, dtype={"image": str})["image"].tolist()
    truth = read_ground_truth(snakemake.input.labels, ids)
    groups = read_groupings(snakemake.input.groupings, ids)
    folds = grouped_stratified_kfold(ids, class_indices(truth), groups, snakemake.params.folds, snakemake.params.seed)
    folds.to_csv(snakemake.output[0], index=False)
    log.info("images per fold: %s", folds["fold"].value_counts().sort_index().tolist())
