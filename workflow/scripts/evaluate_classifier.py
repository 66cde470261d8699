"""Score each fold's classifier on its held-out images: per fold, their mean, and all folds pooled."""

from lesionflow import device, provenance
from lesionflow.cache import load_cache
from lesionflow.folds import read_folds
from lesionflow.jobs import job
from lesionflow.labels import read_ground_truth

out = snakemake.output
name = "evaluate_classifier"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output,
         resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.classification import evaluate_folds, summarise_folds  # TensorFlow starts on the claimed GPU
    from lesionflow.models import load_model

    images, index = snakemake.input.cache
    cache = load_cache(images, index)
    truth = read_ground_truth(snakemake.input.labels, cache.ids)
    folds = read_folds(snakemake.input.folds, cache.ids)
    models = [load_model(p, snakemake.params.image_size) for p in snakemake.input.models]
    predictions = evaluate_folds(cache, truth, folds, models, snakemake.params.tta)
    predictions.to_csv(out.predictions, index=False)
    summary = summarise_folds(truth, predictions)
    provenance.write_json(out.metrics, summary)
    log.info("mean balanced accuracy over folds: %.4f", summary["mean"]["balanced_accuracy"])
