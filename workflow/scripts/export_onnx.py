"""Export a stage's fold ensemble as ONNX, checked with onnxruntime against the workflow's predictions."""

import os

from lesionflow import device
from lesionflow.jobs import job

stage = snakemake.wildcards.stage
name = f"export_onnx {stage}"
with job(name, snakemake.log[0], snakemake.threads, outputs=snakemake.output, resources=snakemake.resources) as log:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""  # converting needs no GPU: claim none
    device.configure(job=name, threads=snakemake.threads, seed=0)
    from lesionflow.export import write_onnx  # TensorFlow starts here
    from lesionflow.predictor import Predictor

    difference = write_onnx(Predictor.load(snakemake.input.ensemble), snakemake.output[0])
    log.info("wrote %s (largest difference from the ensemble: %.3g)", snakemake.output[0], difference)
