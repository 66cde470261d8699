"""Crop and mask the lesion of every readable image of one predict folder; the classifier's cache."""

import pandas as pd

from lesionflow.jobs import job
from lesionflow.userimages import crop_images, read_index, write_table

params, out = snakemake.params, snakemake.output
with job(
    f"predict_folder_crops {snakemake.wildcards.name}",
    snakemake.log[0],
    snakemake.threads,
    outputs=snakemake.output,
    resources=snakemake.resources,
) as log:
    names = read_index(snakemake.input.index)["image"].tolist()
    empty = crop_images(
        params.folder,
        names,
        snakemake.input.masks,
        out.crops,
        params.size,
        out.images,
        out.index,
        margin=params.margin,
        background=params.background,
        threads=snakemake.threads,
    )
    write_table(pd.DataFrame({"image": empty}), out.empty)
    if empty:
        log.warning(
            "%d of %d images had an empty predicted mask: the whole image was used (listed in %s)",
            len(empty),
            len(names),
            out.empty,
        )
    log.info("wrote %d crops to %s", len(names), out.crops)
