"""The experiments compared: held-out scores per fold and experiment per stage, and each one's settings."""

from lesionflow.jobs import job
from lesionflow.plots.figures import experiments_figure, save_figure
from lesionflow.plots.readers import read_json, read_table
from lesionflow.plots.tables import experiments_table, write_table

out = snakemake.output
with job("plot_experiments", snakemake.log[0], outputs=snakemake.output):
    comparison = read_table(snakemake.input.table, required=("experiment", "stage", "fold"))
    comparison[["experiment", "fold"]] = comparison[["experiment", "fold"]].astype(str)  # names such as 1
    described = read_json(snakemake.input.described)
    save_figure(experiments_figure(comparison, "segmentation"), out.segmentation)
    save_figure(experiments_figure(comparison, "classification"), out.classification)
    selected = read_json(snakemake.input.selected) if snakemake.input.selected else None
    table = experiments_table(described, comparison, selected)
    write_table(table, out.settings_table, out.settings_html, "Experiments")
