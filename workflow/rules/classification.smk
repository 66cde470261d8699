# Classification: lesion-grouped folds, one classifier per fold, evaluation, a submission CSV per set.

CLS_CACHE = dict(
    images="results/cache/masked_train/images.npy",
    index="results/cache/masked_train/index.csv",
)


rule classification_folds:
    input:
        checked="results/checks/labels.json",
        index="results/cache/masked_train/index.csv",
        labels=lambda w: DATA.labels_csv("train"),
        groupings=lambda w: DATA.groupings_csv(),
    output:
        "results/classification/folds.csv",
    log:
        f"{LOGS}/classification/folds.log",
    benchmark:
        f"{BENCH}/classification/folds.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        folds=config["classification"]["folds"],
        seed=config["seed"],
    script:
        "../scripts/classification_folds.py"


rule train_classifier:
    input:
        **CLS_CACHE,
        labels=lambda w: DATA.labels_csv("train"),
        folds="results/classification/folds.csv",
    output:
        model="results/classification/fold_{fold}/model.keras",
        history="results/classification/fold_{fold}/history.csv",
        provenance="results/classification/fold_{fold}/provenance.json",
    log:
        f"{LOGS}/classification/train_fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/classification/train_fold_{{fold}}.tsv"
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
        **CLS_CACHE,
        labels=lambda w: DATA.labels_csv("train"),
        folds="results/classification/folds.csv",
        ensemble=CLS_ENSEMBLE,
        models=cls_models(),
    output:
        metrics="results/metrics/classification.json",
        predictions="results/classification/evaluation_predictions.csv",  # plotted by report.smk
    log:
        f"{LOGS}/classification/evaluate.log",
    benchmark:
        f"{BENCH}/classification/evaluate.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: config["classification"]["resources"]["threads"]
    resources:
        **gpu_resources("classification"),
    script:
        "../scripts/evaluate_classifier.py"


rule predict_classes:
    input:
        images="results/cache/masked_{set}/images.npy",
        index="results/cache/masked_{set}/index.csv",
        ensemble=CLS_ENSEMBLE,
        models=cls_models(),
    output:
        "results/predictions/{set}.csv",
    log:
        f"{LOGS}/classification/predict_{{set}}.log",
    benchmark:
        f"{BENCH}/classification/predict_{{set}}.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: config["classification"]["resources"]["threads"]
    resources:
        **gpu_resources("classification"),
    script:
        "../scripts/predict_classes.py"


rule score_predictions:
    input:
        predictions="results/predictions/{set}.csv",
        labels=lambda w: DATA.labels_csv(w.set),
    output:
        "results/metrics/classification_{set}.json",
    log:
        f"{LOGS}/classification/score_{{set}}.log",
    benchmark:
        f"{BENCH}/classification/score_{{set}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    script:
        "../scripts/score_predictions.py"
