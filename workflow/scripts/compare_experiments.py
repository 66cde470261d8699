"""Every experiment's held-out scores side by side (comparison.csv), and what each one changes (experiments.json)."""

import json

from lesionflow.experiments import comparison_table
from lesionflow.imageio import atomic_path
from lesionflow.jobs import job
from lesionflow.plots.readers import read_metrics

params, out = snakemake.params, snakemake.output
with job("compare_experiments", snakemake.log[0], outputs=snakemake.output) as log:
    metrics = {
        name: {
            "segmentation": read_metrics(segmentation, "segmentation", "folds"),
            "classification": read_metrics(classification, "classification", "folds"),
        }
        for name, segmentation, classification in zip(
            params.names, snakemake.input.segmentation, snakemake.input.classification
        )
    }
    table = comparison_table(metrics)
    with atomic_path(out.table) as tmp:
        table.to_csv(tmp, index=False)
    with atomic_path(out.described) as tmp:
        tmp.write_text(json.dumps(params.described, indent=2) + "\n")
    log.info("%d experiments, %d rows", len(metrics), len(table))
