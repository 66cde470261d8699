"""Read one predict folder's images into the segmentation cache; list the files that cannot be used."""

from pathlib import Path

from lesionflow.jobs import job
from lesionflow.userimages import Listing, cache_images, write_table

params, out = snakemake.params, snakemake.output
with job(
    f"predict_folder_cache {snakemake.wildcards.name}",
    snakemake.log[0],
    snakemake.threads,
    outputs=snakemake.output,
    resources=snakemake.resources,
) as log:
    listing = Listing(Path(params.folder), tuple(params.files), tuple(tuple(r) for r in params.rejected))
    index, skipped = cache_images(listing, params.size, out.images, out.index, params.key, snakemake.threads)
    write_table(skipped, out.skipped)
    log.info(
        "%s (%s): %d image files, %d read, %d skipped (listed in %s)",
        params.key,
        params.folder,
        len(index) + len(skipped),
        len(index),
        len(skipped),
        out.skipped,
    )
