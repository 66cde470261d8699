"""Score each fold's U-Net on its held-out images."""

from lesionflow import device, provenance
from lesionflow.cache import load_cache
from lesionflow.folds import read_folds
from lesionflow.jobs import job

name = "evaluate_segmentation"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output,
         resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.models import load_model  # TensorFlow starts on the GPU claimed above
    from lesionflow.segmentation import evaluate_folds, summarise_folds

    images, masks, index = snakemake.input.cache
    cache = load_cache(images, index, masks)
    folds = read_folds(snakemake.input.folds, cache.ids)
    models = [load_model(p, snakemake.params.image_size) for p in snakemake.input.models]
    per_image = evaluate_folds(cache, folds, models, list(snakemake.input.masks),
                               snakemake.params.postprocess, snakemake.params.tta)
    per_image.to_csv(snakemake.output.per_image, index=False)
    summary = summarise_folds(per_image)
    provenance.write_json(snakemake.output.metrics, summary)
    log.info("mean over folds: %s", summary["mean"])
