# Each stage's fold ensemble describes itself: results/{stage}/ensemble.json (lesionflow.predictor), which
# every prediction job loads. A change to the models, the test-time augmentation or the post-processing
# rewrites it, and so reruns what predicts with it.


rule describe_ensemble:
    input:
        models=lambda w: fold_models(w.stage),
    output:
        "results/{stage}/ensemble.json",
    params:
        ensemble=lambda w: ensemble_params(w.stage),
    wildcard_constraints:
        stage="segmentation|classification",
    log:
        f"{LOGS}/{{stage}}/ensemble.log",
    benchmark:
        f"{BENCH}/{{stage}}/ensemble.tsv"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/describe_ensemble.py"
