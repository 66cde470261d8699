"""Score each fold's classifier on its held-out images: per fold, their mean, and all folds pooled."""

from lesionflow import device, provenance
from lesionflow.cache import load_cache
from lesionflow.folds import read_folds
from lesionflow.jobs import job
from lesionflow.labels import read_ground_truth

out = snakemake.output
name = "evaluate_classifier"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.classification import summarise_folds
    from lesionflow.predictor import Predictor, held_out_probabilities  # TensorFlow starts on the claimed GPU

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    truth = read_ground_truth(snakemake.input.labels, cache.ids)
    folds = read_folds(snakemake.input.folds, cache.ids)
    predictions = held_out_probabilities(
        Predictor.load(snakemake.input.ensemble), cache.images, list(truth.index), folds
    )
    predictions.to_csv(out.predictions, index=False)
    summary = summarise_folds(truth, predictions)
    provenance.write_json(out.metrics, summary)
    log.info("mean balanced accuracy over folds: %.4f", summary["mean"]["balanced_accuracy"])
