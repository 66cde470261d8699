"""Score each fold's U-Net on its held-out images."""

from lesionflow import device, provenance
from lesionflow.cache import load_cache
from lesionflow.folds import read_folds
from lesionflow.jobs import job
from lesionflow.models import load_model
from lesionflow.segmentation import evaluate_folds, summarise_folds

with job("evaluate_segmentation", snakemake.log[0], snakemake.threads, outputs=snakemake.output) as log:
    device.configure(snakemake.threads, 0)
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
