# Classification: lesion-grouped folds, one classifier per fold, evaluation, a submission CSV per set
# (results/{exp_dir}, common.smk). Folds and classifiers run for each configuration that changes a setting
# they depend on; evaluation and predictions also for one that changes only classification.prediction.


rule classification_folds:
    input:
        checked="results/checks/labels.json",
        index=lambda w: cls_training_cache(w)["index"],
        labels=lambda w: DATA.labels_csv("train"),
        groupings=lambda w: DATA.groupings_csv(),
    output:
        "results/{exp_dir}classification/folds.csv",
    log:
        f"{LOGS}/{{exp_dir}}classification/folds.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}classification/folds.tsv"
    wildcard_constraints:
        exp_dir=owners("classification_models"),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        folds=lambda w: settings(w)["classification"]["folds"],
        seed=lambda w: settings(w)["seed"],
    script:
        "../scripts/classification_folds.py"


rule train_classifier:
    input:
        unpack(cls_training_cache),
        labels=lambda w: DATA.labels_csv("train"),
        folds="results/{exp_dir}classification/folds.csv",
    output:
        model="results/{exp_dir}classification/fold_{fold}/model.keras",
        history="results/{exp_dir}classification/fold_{fold}/history.csv",
        provenance="results/{exp_dir}classification/fold_{fold}/provenance.json",
    log:
        f"{LOGS}/{{exp_dir}}classification/train_fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}classification/train_fold_{{fold}}.tsv"
    wildcard_constraints:
        exp_dir=owners("classification_models"),
    conda:
        "../envs/tensorflow.yaml"
    threads: config["classification"]["resources"]["threads"]
    resources:
        **gpu_resources("classification"),
    params:
        settings=training_params("classification"),
    script:
        "../scripts/train_classifier.py"


rule evaluate_classifier:
    input:
        unpack(cls_training_cache),
        labels=lambda w: DATA.labels_csv("train"),
        folds=stage_folds("classification"),
        ensemble=CLS_ENSEMBLE,
        models=cls_models,
    output:
        metrics="results/{exp_dir}metrics/classification.json",
        predictions="results/{exp_dir}classification/evaluation_predictions.csv",  # plotted by report.smk
    log:
        f"{LOGS}/{{exp_dir}}classification/evaluate.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}classification/evaluate.tsv"
    wildcard_constraints:
        exp_dir=owners("classification"),
    conda:
        "../envs/tensorflow.yaml"
    threads: config["classification"]["resources"]["threads"]
    resources:
        **gpu_resources("classification"),
    script:
        "../scripts/evaluate_classifier.py"


rule predict_classes:
    input:
        unpack(masked_cache),
        ensemble=CLS_ENSEMBLE,
        models=cls_models,
    output:
        "results/{exp_dir}predictions/{set}.csv",
    log:
        f"{LOGS}/{{exp_dir}}classification/predict_{{set}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}classification/predict_{{set}}.tsv"
    wildcard_constraints:
        exp_dir=owners("classification"),
    conda:
        "../envs/tensorflow.yaml"
    threads: config["classification"]["resources"]["threads"]
    resources:
        **gpu_resources("classification"),
    script:
        "../scripts/predict_classes.py"


rule score_predictions:
    input:
        predictions="results/{exp_dir}predictions/{set}.csv",
        labels=lambda w: DATA.labels_csv(w.set),
    output:
        "results/{exp_dir}metrics/classification_{set}.json",
    log:
        f"{LOGS}/{{exp_dir}}classification/score_{{set}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}classification/score_{{set}}.tsv"
    wildcard_constraints:
        exp_dir=owners("classification"),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/score_predictions.py"
