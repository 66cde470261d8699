"""Full-size masks for one predict folder from the segmentation fold ensemble."""

from lesionflow import device
from lesionflow.cache import load_cache
from lesionflow.jobs import job
from lesionflow.userimages import write_masks

params = snakemake.params
name = f"predict_folder_masks {snakemake.wildcards.name}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output,
         resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.models import load_model  # TensorFlow starts on the GPU claimed above
    from lesionflow.segmentation import ensemble_probabilities

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    models = [load_model(p, params.image_size) for p in snakemake.input.models]
    prob = ensemble_probabilities(models, cache.images, params.tta)
    written = write_masks(cache.index, prob, snakemake.output[0], params.postprocess)
    log.info("wrote %d masks to %s", len(written), snakemake.output[0])
