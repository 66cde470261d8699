"""The selected configuration's masks of a Task 3 set, or its submission CSV, copied to results/."""

from lesionflow.experiments import copy_selected
from lesionflow.jobs import job
from lesionflow.plots.readers import read_json

with job("copy_selected", snakemake.log[0], outputs=snakemake.output) as log:
    selected = read_json(snakemake.input.selected)
    source = copy_selected(selected, snakemake.params.candidates, snakemake.output[0])
    log.info("%s: copied from %s (%s)", snakemake.output[0], source, selected["selected"])
