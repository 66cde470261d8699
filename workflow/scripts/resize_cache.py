"""Resize one image set (and its masks, if any) into the .npy cache: the files its check recorded."""

from pathlib import Path

from lesionflow.cache import build_cache
from lesionflow.jobs import job
from lesionflow.validation import checked_files

with job(
    f"resize {Path(snakemake.output.images).parent.name}",
    snakemake.log[0],
    snakemake.threads,
    outputs=snakemake.output,
    resources=snakemake.resources,
):
    ids, image_paths, mask_paths = checked_files(snakemake.input.checked)
    build_cache(
        ids=ids,
        image_paths=image_paths,
        size=snakemake.params.size,
        images_out=snakemake.output.images,
        index_out=snakemake.output.index,
        mask_paths=mask_paths if "masks" in snakemake.output.keys() else None,
        masks_out=snakemake.output.get("masks"),
        threads=snakemake.threads,
    )
