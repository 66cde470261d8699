"""Check the Task 3 training ground truth and lesion groupings against the training images' ids."""

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.validation import check_training_labels

with job("check_labels", snakemake.log[0], outputs=snakemake.output):
    summary = check_training_labels(snakemake.input.labels, snakemake.input.groupings, snakemake.params.image_ids)
    provenance.write_json(snakemake.output[0], summary)
