# Segmentation: folds, one U-Net per fold, held-out evaluation, masks for every Task 3 set (results/{exp_dir},
# common.smk). Folds and U-Nets run for each configuration that changes a training setting; evaluation and
# masks also for one that changes only post-processing or TTA, with the U-Nets it shares (stage_folds, seg_models).


rule segmentation_folds:
    input:
        index=lambda w: seg_cache(w)["index"],
    output:
        "results/{exp_dir}segmentation/folds.csv",
    log:
        f"{LOGS}/{{exp_dir}}segmentation/folds.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}segmentation/folds.tsv"
    wildcard_constraints:
        exp_dir=owners("segmentation_models"),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        folds=lambda w: settings(w)["segmentation"]["folds"],
        seed=lambda w: settings(w)["seed"],
    script:
        "../scripts/make_folds.py"


rule train_segmentation:
    input:
        unpack(seg_cache),
        labels_checked=labels_check,  # a bad label CSV fails before training starts
        folds="results/{exp_dir}segmentation/folds.csv",
    output:
        model="results/{exp_dir}segmentation/fold_{fold}/model.keras",
        history="results/{exp_dir}segmentation/fold_{fold}/history.csv",
        provenance="results/{exp_dir}segmentation/fold_{fold}/provenance.json",
    log:
        f"{LOGS}/{{exp_dir}}segmentation/train_fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}segmentation/train_fold_{{fold}}.tsv"
    wildcard_constraints:
        exp_dir=owners("segmentation_models"),
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
        images=lambda w: seg_cache(w)["images"],
        index=lambda w: seg_cache(w)["index"],
        folds=stage_folds("segmentation"),
        ensemble=SEG_ENSEMBLE,
        models=seg_models,
        checked="results/checks/seg_train.json",  # names the ground-truth masks; a changed mask reruns it
    output:
        metrics="results/{exp_dir}metrics/segmentation.json",
        per_image="results/{exp_dir}segmentation/evaluation_per_image.csv",
    log:
        f"{LOGS}/{{exp_dir}}segmentation/evaluate.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}segmentation/evaluate.tsv"
    wildcard_constraints:
        exp_dir=owners("segmentation"),
    conda:
        "../envs/tensorflow.yaml"
    threads: config["segmentation"]["resources"]["threads"]
    resources:
        **gpu_resources("segmentation"),
    script:
        "../scripts/evaluate_segmentation.py"


rule predict_masks:
    input:
        unpack(set_cache),
        ensemble=SEG_ENSEMBLE,
        models=seg_models,
    output:
        directory("results/{exp_dir}masks/{set}"),
    log:
        f"{LOGS}/{{exp_dir}}segmentation/predict_{{set}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}segmentation/predict_{{set}}.tsv"
    wildcard_constraints:
        exp_dir=owners("segmentation"),
    conda:
        "../envs/tensorflow.yaml"
    threads: config["segmentation"]["resources"]["threads"]
    resources:
        **gpu_resources("segmentation"),
    script:
        "../scripts/predict_masks.py"


rule score_masks:
    input:
        predicted="results/{exp_dir}masks/{set}",
        truth_checked="results/checks/{set}_ground_truth.json",  # names the set's ground-truth masks
    output:
        metrics="results/{exp_dir}metrics/segmentation_{set}.json",
        per_image="results/{exp_dir}segmentation/scores_{set}.csv",
    log:
        f"{LOGS}/{{exp_dir}}segmentation/score_{{set}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}segmentation/score_{{set}}.tsv"
    wildcard_constraints:
        exp_dir=owners("segmentation"),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    script:
        "../scripts/score_masks.py"
