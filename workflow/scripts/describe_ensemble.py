"""Write results/{stage}/ensemble.json: what the stage's fold ensemble is and how it predicts."""

from lesionflow.jobs import job
from lesionflow.postprocess import PostProcess
from lesionflow.predictor import ClassCombination, describe_ensemble

stage, described = snakemake.wildcards.stage, snakemake.params.ensemble
with job(
    f"describe_ensemble {stage}",
    snakemake.log[0],
    snakemake.threads,
    outputs=snakemake.output,
    resources=snakemake.resources,
) as log:
    post = described.get("postprocess")
    spec = describe_ensemble(
        stage,
        list(snakemake.input.models),
        snakemake.output[0],
        image_size=described["image_size"],
        encoder=described["encoder"],
        tta=described["tta"],
        postprocess=None if post is None else PostProcess.from_config(post),
        combination=None if "combination" not in described else ClassCombination.from_config(described["combination"]),
    )
    log.info("%s ensemble of folds %s: %s", stage, list(spec.folds), snakemake.output[0])
