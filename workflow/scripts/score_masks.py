"""Score predicted masks against the set's ground truth, as the official Task 1 scorer does."""

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.metrics import score_mask_folders, summarise_segmentation
from lesionflow.validation import checked_files

with job(f"score_masks {snakemake.wildcards.set}", snakemake.log[0], outputs=snakemake.output) as log:
    _, _, truth_masks = checked_files(snakemake.input.truth_checked)
    truth_dir = truth_masks[0].parent
    per_image = score_mask_folders(truth_dir, snakemake.input.predicted)
    per_image.to_csv(snakemake.output.per_image)
    summary = summarise_segmentation(per_image)
    provenance.write_json(snakemake.output.metrics, summary)
    log.info("%s: %s", snakemake.wildcards.set, summary)
