"""Class probabilities and the predicted class of every readable image of one predict folder."""

from lesionflow import device
from lesionflow.cache import load_cache
from lesionflow.jobs import job
from lesionflow.userimages import predictions_table, write_table

params = snakemake.params
name = f"predict_folder_classes {snakemake.wildcards.name}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output,
         resources=snakemake.resources) as log:
    device.configure(job=name, threads=snakemake.threads, seed=0, config=snakemake.config)
    from lesionflow.classification import predict_probabilities  # TensorFlow starts on the GPU claimed above
    from lesionflow.models import load_model

    cache = load_cache(snakemake.input.images, snakemake.input.index)
    models = [load_model(p, params.image_size) for p in snakemake.input.models]
    table = predictions_table(cache.ids, predict_probabilities(models, cache.images, params.tta))
    write_table(table, snakemake.output[0])
    log.info("wrote %d rows to %s; predicted classes: %s", len(table), snakemake.output[0],
             table["predicted_class"].value_counts().to_dict())
