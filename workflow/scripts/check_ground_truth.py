"""Check the ground truth of validation or test (masks and labels, where present) against its images."""

from lesionflow import provenance
from lesionflow.jobs import job
from lesionflow.validation import check_ground_truth

with job(
    f"check_ground_truth {snakemake.wildcards.set}", snakemake.log[0], snakemake.threads, outputs=snakemake.output
):
    inputs, listing = snakemake.input, snakemake.params.listing
    summary = check_ground_truth(
        listing["images"],
        mask_paths=listing["masks"],
        labels_csv=inputs.labels if "labels" in inputs.keys() else None,
        threads=snakemake.threads,
    )
    provenance.write_json(snakemake.output[0], {"set": snakemake.wildcards.set, **summary})
