# Each stage's fold ensemble describes itself: results/{stage}/ensemble.json (lesionflow.predictor), which
# every prediction job loads. A change to the models, the test-time augmentation or the post-processing
# rewrites it, and so reruns what predicts with it.


rule describe_ensemble:
    input:
        models=lambda w: fold_models(w.stage, w.exp_dir),
    output:
        "results/{exp_dir}{stage}/ensemble.json",
    log:
        f"{LOGS}/{{exp_dir}}{{stage}}/ensemble.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}{{stage}}/ensemble.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
        exp_dir=owners("classification"),  # every configuration that computes a step of its own
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        ensemble=lambda w: ensemble_params(w.stage, w.exp_dir),
    script:
        "../scripts/describe_ensemble.py"
