# Download the official ISIC 2018 archives listed under `fetch` in the config, verify them and unpack them
# into data_dir under their official folder names. A target of its own, which no other rule needs (the
# pipeline reads data_dir as it is):
#   snakemake fetch_isic2018 --configfile config/isic2018.yaml --cores 1
# Self-contained (reads only `config`), so it also works when included without common.smk. Its output is a
# marker: the data folders are not declared outputs, so Snakemake never deletes them when a fetch fails,
# and folders already in data_dir are kept and skipped.

import os

_FETCH = config.get("fetch") or {}


rule fetch_isic2018:
    output:
        f"{config['data_dir']}/.fetched",
    log:
        "results/logs/fetch_isic2018.log",
    benchmark:
        "results/benchmarks/fetch_isic2018.tsv"
    localrule: True  # on a cluster, download on the submit host (compute nodes often have no internet)
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=720,
    params:
        data_dir=lambda w, output: os.path.dirname(output[0]),
        download_dir=_FETCH.get("download_dir", "data/downloads"),
        keep_archives=_FETCH.get("keep_archives", False),
        archives=_FETCH.get("archives", []),
    script:
        "../scripts/fetch_isic2018.py"
