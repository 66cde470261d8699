"""Score predicted masks against the set's ground truth, as the official Task 1 scorer does."""

from pathlib import Path

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.metrics import score_mask_folders, summarise_segmentation

with job(f"score_masks {snakemake.wildcards.set}", snakemake.log[0], outputs=snakemake.output) as log:
    truth_dir = Path(snakemake.input.truth[0]).parent
    per_image = score_mask_folders(truth_dir, snakemake.input.predicted)
    per_image.to_csv(snakemake.output.per_image)
    summary = summarise_segmentation(per_image)
    provenance.write_json(snakemake.output.metrics, summary)
    log.info("%s: %s", snakemake.wildcards.set, summary)
