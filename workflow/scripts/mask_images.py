"""Crop and mask the lesion of every image of one Task 3 set (the images its check recorded)."""

from lesionflow.jobs import job
from lesionflow.masking import mask_set
from lesionflow.validation import checked_files

out = snakemake.output
with job(
    f"mask_images {snakemake.wildcards.set}",
    snakemake.log[0],
    snakemake.threads,
    outputs=snakemake.output,
    resources=snakemake.resources,
):
    ids, image_paths, _ = checked_files(snakemake.input.checked)
    mask_set(
        ids,
        image_paths,
        snakemake.input.masks,
        out.crops,
        snakemake.params.size,
        out.images,
        out.index,
        out.empty,
        margin=snakemake.params.margin,
        background=snakemake.params.background,
        threads=snakemake.threads,
    )
