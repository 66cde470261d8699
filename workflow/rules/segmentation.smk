# Segmentation: folds, one U-Net per fold, held-out evaluation, masks for every Task 3 set.

SEG_CACHE = dict(
    images="results/cache/seg_train/images.npy",
    masks="results/cache/seg_train/masks.npy",
    index="results/cache/seg_train/index.csv",
)


rule segmentation_folds:
    input:
        index="results/cache/seg_train/index.csv",
    output:
        "results/segmentation/folds.csv",
    log:
        f"{LOGS}/segmentation/folds.log",
    benchmark:
        f"{BENCH}/segmentation/folds.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        folds=config["segmentation"]["folds"],
        seed=config["seed"],
    script:
        "../scripts/make_folds.py"


rule train_segmentation:
    input:
        **SEG_CACHE,
        labels_checked=labels_check,  # a bad label CSV fails before training starts
        folds="results/segmentation/folds.csv",
    output:
        model="results/segmentation/fold_{fold}/model.keras",
        history="results/segmentation/fold_{fold}/history.csv",
        provenance="results/segmentation/fold_{fold}/provenance.json",
    log:
        f"{LOGS}/segmentation/train_fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/segmentation/train_fold_{{fold}}.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: config["segmentation"]["resources"]["threads"]
    resources:
        **gpu_resources("segmentation"),
    params:
        settings=training_params("segmentation"),
    script:
        "../scripts/train_segmentation.py"


rule evaluate_segmentation:
    input:
        images=SEG_CACHE["images"],
        index=SEG_CACHE["index"],
        folds="results/segmentation/folds.csv",
        ensemble=SEG_ENSEMBLE,
        models=seg_models(),
        truth_masks=lambda w: DATA.mask_paths("seg_train"),
    output:
        metrics="results/metrics/segmentation.json",
        per_image="results/segmentation/evaluation_per_image.csv",
    log:
        f"{LOGS}/segmentation/evaluate.log",
    benchmark:
        f"{BENCH}/segmentation/evaluate.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: config["segmentation"]["resources"]["threads"]
    resources:
        **gpu_resources("segmentation"),
    script:
        "../scripts/evaluate_segmentation.py"


rule predict_masks:
    input:
        images="results/cache/{set}/images.npy",
        index="results/cache/{set}/index.csv",
        ensemble=SEG_ENSEMBLE,
        models=seg_models(),
    output:
        directory("results/masks/{set}"),
    log:
        f"{LOGS}/segmentation/predict_{{set}}.log",
    benchmark:
        f"{BENCH}/segmentation/predict_{{set}}.tsv"
    conda:
        "../envs/tensorflow.yaml"
    threads: config["segmentation"]["resources"]["threads"]
    resources:
        **gpu_resources("segmentation"),
    script:
        "../scripts/predict_masks.py"


rule score_masks:
    input:
        predicted="results/masks/{set}",
        truth=lambda w: DATA.mask_paths(w.set),
    output:
        metrics="results/metrics/segmentation_{set}.json",
        per_image="results/segmentation/scores_{set}.csv",
    log:
        f"{LOGS}/segmentation/score_{{set}}.log",
    benchmark:
        f"{BENCH}/segmentation/score_{{set}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/score_masks.py"
