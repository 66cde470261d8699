"""Seeded k-fold split of the segmentation training images."""

import pandas as pd

from lesionflow.folds import kfold
from lesionflow.jobs import job

with job("segmentation_folds", snakemake.log[0], outputs=snakemake.output):
    ids = pd.read_csv(snakemake.input.index, dtype={"image": str})["image"].tolist()
    kfold(ids, snakemake.params.folds, snakemake.params.seed).to_csv(snakemake.output[0], index=False)
