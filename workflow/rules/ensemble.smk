# Each stage's fold ensemble describes itself: results/{stage}/ensemble.json (lesionflow.predictor), which
# every prediction job loads. A change to the models, the test-time augmentation or the post-processing
# rewrites it, and so reruns what predicts with it.


rule describe_ensemble:
    input:
        models=lambda w: fold_models(w.stage),
    output:
        "results/{stage}/ensemble.json",
    log:
        f"{LOGS}/{{stage}}/ensemble.log",
    benchmark:
        f"{BENCH}/{{stage}}/ensemble.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        ensemble=lambda w: ensemble_params(w.stage),
    script:
        "../scripts/describe_ensemble.py"
