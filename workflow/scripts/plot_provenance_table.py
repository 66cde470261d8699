"""The provenance of each fold's model (settings, data fingerprint, versions, device) side by side."""

from lesionflow.jobs import job
from lesionflow.plots.readers import read_provenance
from lesionflow.plots.tables import provenance_table, write_table

with job(f"provenance_table {snakemake.wildcards.stage}", snakemake.log[0], outputs=snakemake.output) as log:
    records = {name: read_provenance(path) for name, path in zip(snakemake.params.names, snakemake.input)}
    table = provenance_table(records)
    write_table(table, snakemake.output.table, snakemake.output.html, snakemake.params.title, index=True)
    log.info("%d fields of %d models", len(table), len(records))
