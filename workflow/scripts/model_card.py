"""The model card of a stage's exported ensemble: model_card.json and MODEL_CARD.md."""

import json

import pandas as pd

from lesionflow.export import class_counts, model_card, write_model_card
from lesionflow.jobs import job
from lesionflow.labels import read_ground_truth
from lesionflow.predictor import EnsembleSpec

inp, out = snakemake.input, snakemake.output
stage = snakemake.wildcards.stage
with job(f"model_card {stage}", snakemake.log[0], snakemake.threads, outputs=out, resources=snakemake.resources) as log:
    spec = EnsembleSpec.read(inp.ensemble)
    images = pd.read_csv(inp.folds, dtype={"image": str})["image"].tolist()
    counts = class_counts(read_ground_truth(inp.labels, images).to_numpy()) if stage == "classification" else None
    task3 = {}
    for path in inp.task3:  # results/metrics/{stage}_{set}.json
        task3[path.rsplit("_", 1)[1].removesuffix(".json")] = json.loads(open(path).read())
    card = model_card(
        spec,
        provenance=[json.loads(open(p).read()) for p in inp.provenance],
        held_out=json.loads(open(inp.held_out).read()),
        task3_scores=task3,
        class_counts=counts,
        image_count=len(images),
        masking=snakemake.params.masking,
    )
    write_model_card(card, out.card, out.markdown)
    log.info("model card of the %s ensemble: %s", stage, out.markdown)
