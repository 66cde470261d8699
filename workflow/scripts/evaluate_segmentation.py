"""Score each fold's U-Net on its held-out images."""

from lesionflow import device, provenance
from lesionflow.cache import load_cache
from lesionflow.folds import read_folds
from lesionflow.jobs import job
from lesionflow.validation import checked_files

name = "evaluate_segmentation"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.predictor import Predictor, evaluate_masks  # TensorFlow starts on the GPU claimed above
    from lesionflow.segmentation import summarise_folds

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    folds = read_folds(snakemake.input.folds, cache.ids)
    per_image = evaluate_masks(
        Predictor.load(snakemake.input.ensemble),
        cache.images,
        cache.index,
        folds,
        truth_paths=checked_files(snakemake.input.checked)[2],
    )
    per_image.to_csv(snakemake.output.per_image, index=False)
    summary = summarise_folds(per_image)
    provenance.write_json(snakemake.output.metrics, summary)
    log.info("mean over folds: %s", summary["mean"])
