"""Training and validation curves of one fold's model."""

from lesionflow.jobs import job
from lesionflow.plots.figures import save_figure, training_curves_figure
from lesionflow.plots.readers import read_history

with job(
    f"plot_training_curves {snakemake.wildcards.stage} fold {snakemake.wildcards.fold}",
    snakemake.log[0],
    outputs=snakemake.output,
):
    history = read_history(snakemake.input.history)
    save_figure(training_curves_figure(history, snakemake.params.title), snakemake.output[0])
