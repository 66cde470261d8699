"""Class probabilities and the predicted class of every readable image of one predict folder."""

from lesionflow import device
from lesionflow.cache import load_cache
from lesionflow.jobs import job
from lesionflow.userimages import predictions_table, write_table

name = f"predict_folder_classes {snakemake.wildcards.name}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.predictor import Predictor, class_probabilities  # TensorFlow starts on the GPU claimed above

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    table = predictions_table(cache.ids, class_probabilities(Predictor.load(snakemake.input.ensemble), cache.images))
    write_table(table, snakemake.output[0])
    log.info(
        "wrote %d rows to %s; predicted classes: %s",
        len(table),
        snakemake.output[0],
        table["predicted_class"].value_counts().to_dict(),
    )
