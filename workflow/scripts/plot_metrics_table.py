"""A stage's scores per held-out fold, their mean, and on every image set with ground truth, as a table."""

from lesionflow.jobs import job
from lesionflow.plots.readers import read_metrics
from lesionflow.plots.tables import metrics_table, write_table

stage = snakemake.wildcards.stage
with job(f"metrics_table {stage}", snakemake.log[0], outputs=snakemake.output) as log:
    sets = {name: read_metrics(path, stage, "set") for name, path in zip(snakemake.params.sets, snakemake.input.sets)}
    table = metrics_table(stage, read_metrics(snakemake.input.folds, stage, "folds"), sets)
    write_table(
        table,
        snakemake.output.table,
        snakemake.output.html,
        f"{stage.capitalize()} scores",
        bold_rows=["mean of folds", "all folds pooled"],
    )
    log.info("%d rows", len(table))
