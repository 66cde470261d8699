"""Full-size masks for one Task 3 image set from the fold ensemble."""

from lesionflow import device
from lesionflow.cache import load_cache
from lesionflow.jobs import job

name = f"predict_masks {snakemake.wildcards.set}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output,
         resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.models import load_model  # TensorFlow starts on the GPU claimed above
    from lesionflow.segmentation import ensemble_probabilities, write_masks

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    models = [load_model(p, snakemake.params.image_size) for p in snakemake.input.models]
    prob = ensemble_probabilities(models, cache.images, snakemake.params.tta)
    written = write_masks(cache, prob, snakemake.output[0], snakemake.params.postprocess)
    log.info("wrote %d masks to %s", len(written), snakemake.output[0])
