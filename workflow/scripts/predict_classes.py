"""The ISIC Task 3 submission CSV of one image set, from the fold ensemble."""

from lesionflow import device
from lesionflow.cache import load_cache
from lesionflow.imageio import atomic_path
from lesionflow.jobs import job

name = f"predict_classes {snakemake.wildcards.set}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.classification import submission  # TensorFlow starts on the GPU claimed above
    from lesionflow.predictor import Predictor, class_probabilities

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    table = submission(cache.ids, class_probabilities(Predictor.load(snakemake.input.ensemble), cache.images))
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False)
    log.info("wrote %d rows to %s", len(table), snakemake.output[0])
