"""Check the Task 3 training ground truth and lesion groupings against the training images."""

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.validation import check_training_labels, ids_of

with job("check_labels", snakemake.log[0], outputs=snakemake.output):
    summary = check_training_labels(snakemake.input.labels, snakemake.input.groupings, ids_of(snakemake.input.images))
    provenance.write_json(snakemake.output[0], summary)
