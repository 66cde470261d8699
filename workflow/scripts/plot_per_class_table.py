"""The classifier's scores per class: held-out folds pooled, and every image set with labels."""

from lesionflow import isic
from lesionflow.jobs import job
from lesionflow.plots.readers import read_metrics
from lesionflow.plots.tables import per_class_tables, write_table

with job("per_class_table", snakemake.log[0], outputs=snakemake.output) as log:
    sources = {"held-out folds": read_metrics(snakemake.input.folds, "classification", "folds")["all_folds"]}
    sources.update(
        {
            f"set {name}": read_metrics(path, "classification", "set")
            for name, path in zip(snakemake.params.sets, snakemake.input.sets)
        }
    )
    table = per_class_tables(sources, isic.CLASSES)
    write_table(table, snakemake.output.table, snakemake.output.html, "Classification scores per class")
    log.info("%d rows", len(table))
