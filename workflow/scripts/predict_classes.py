"""The ISIC Task 3 submission CSV of one image set, from the fold ensemble."""

from lesionflow import device
from lesionflow.cache import load_cache
from lesionflow.imageio import atomic_path
from lesionflow.jobs import job

name = f"predict_classes {snakemake.wildcards.set}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output,
         resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.classification import predict_probabilities, submission  # TensorFlow starts on the claimed GPU
    from lesionflow.models import load_model

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    models = [load_model(p, snakemake.params.image_size) for p in snakemake.input.models]
    table = submission(cache.ids, predict_probabilities(models, cache.images, snakemake.params.tta))
    with atomic_path(snakemake.output[0]) as tmp:
        table.to_csv(tmp, index=False)
    log.info("wrote %d rows to %s", len(table), snakemake.output[0])
