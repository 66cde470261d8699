"""The configuration with the best held-out mean of the configured metric (results/experiments/selected.json)."""

import json

from lesionflow.experiments import select_experiment
from lesionflow.imageio import atomic_path
from lesionflow.jobs import job
from lesionflow.plots.readers import read_table

with job("select_experiment", snakemake.log[0], outputs=snakemake.output) as log:
    comparison = read_table(snakemake.input.table, required=("experiment", "stage", "fold"))
    comparison[["experiment", "fold"]] = comparison[["experiment", "fold"]].astype(str)
    selected = select_experiment(comparison, snakemake.params.metric)
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(json.dumps(selected, indent=2) + "\n")
    log.info("selected %s: held-out mean %s %.4f", selected["selected"], selected["metric"], selected["mean"])
