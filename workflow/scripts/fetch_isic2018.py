"""Download, verify and unpack the ISIC 2018 archives named in the config into data_dir."""

import json
from pathlib import Path

from lesionflow.fetch import fetch_archives
from lesionflow.jobs import job

with job("fetch_isic2018", snakemake.log[0], outputs=snakemake.output) as log:
    records = fetch_archives(
        snakemake.params.archives,
        data_dir=snakemake.params.data_dir,
        download_dir=snakemake.params.download_dir,
        keep_archives=snakemake.params.keep_archives,
    )
    Path(snakemake.output[0]).write_text(json.dumps(records, indent=2) + "\n")
    fetched = sum(r["status"] == "fetched" for r in records)
    log.info("%d fetched, %d already present in %s", fetched, len(records) - fetched, snakemake.params.data_dir)
