"""Export a stage's fold ensemble as one TensorFlow SavedModel (signature `serve`), on the CPU."""

import os
from pathlib import Path

from lesionflow import device
from lesionflow.jobs import job

stage = snakemake.wildcards.stage
name = f"export_ensemble {stage}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # tracing and saving need no GPU: claim none
    device.configure(job=name, threads=snakemake.threads, seed=0)
    from lesionflow.export import export_saved_model  # TensorFlow starts here
    from lesionflow.predictor import Predictor

    folder = Path(snakemake.output[0]).parent
    written = export_saved_model(Predictor.load(snakemake.input.ensemble), folder)
    log.info("wrote %d files of the SavedModel into %s", len(written), folder)
