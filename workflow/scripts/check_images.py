"""Check what one image set's cache reads: every image decodes, and the masks of seg_train."""

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.validation import check_images

with job(f"check_images {snakemake.wildcards.set}", snakemake.log[0], snakemake.threads, outputs=snakemake.output):
    listing = snakemake.params.listing  # the set's images (and masks), listed when the job was planned
    summary = check_images(listing["images"], listing["masks"], threads=snakemake.threads)
    provenance.write_json(snakemake.output[0], {"set": snakemake.wildcards.set, **summary})
