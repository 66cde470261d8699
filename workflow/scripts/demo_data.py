"""Write the generated demo data set (ISIC 2018 layout) into data_dir."""

from pathlib import Path

from lesionflow.demo import generate_demo
from lesionflow.jobs import job
from lesionflow.layout import demo_spec

with job("demo_data", snakemake.log[0], outputs=snakemake.output) as log:
    summary = generate_demo(Path(snakemake.params.data_dir), demo_spec(snakemake.params.demo))
    log.info("demo data written: %s", summary)
