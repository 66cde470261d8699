"""Crop and mask the lesion of every image of one Task 3 set."""

from pathlib import Path

from lesionflow.jobs import job
from lesionflow.masking import mask_set

out = snakemake.output
with job(f"mask_images {snakemake.wildcards.set}", snakemake.log[0], snakemake.threads, outputs=snakemake.output):
    images = [Path(p) for p in snakemake.input.images]
    mask_set([p.name.removesuffix(".jpg") for p in images], images, snakemake.input.masks, out.crops,
             snakemake.params.size, out.images, out.index, out.empty, snakemake.params.margin,
             snakemake.params.background, snakemake.threads)
