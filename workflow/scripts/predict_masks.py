"""Full-size masks for one Task 3 image set from the fold ensemble."""

from lesionflow import device, isic
from lesionflow.cache import load_cache
from lesionflow.jobs import job

name = f"predict_masks {snakemake.wildcards.set}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.predictor import Predictor, write_masks  # TensorFlow starts on the GPU claimed above

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    predictor = Predictor.load(snakemake.input.ensemble)
    count = write_masks(
        predictor, cache.images, cache.index, snakemake.output[0], names=[isic.mask_name(image) for image in cache.ids]
    )
    log.info("wrote %d masks to %s", count, snakemake.output[0])
