"""Resize one image set (and its masks, if any) into the .npy cache."""

from pathlib import Path

from lesionflow.cache import build_cache
from lesionflow.jobs import job

with job(f"resize {Path(snakemake.output.images).parent.name}", snakemake.log[0], snakemake.threads,
         outputs=snakemake.output):
    images = list(snakemake.input.images)
    masks = list(snakemake.input.masks) if "masks" in snakemake.input.keys() else None
    build_cache(
        ids=[Path(p).name.removesuffix(".jpg") for p in images],
        image_paths=images,
        size=snakemake.params.size,
        images_out=snakemake.output.images,
        index_out=snakemake.output.index,
        mask_paths=masks,
        masks_out=snakemake.output.get("masks"),
        threads=snakemake.threads,
    )
