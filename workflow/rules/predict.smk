# Predicting on folders of one's own images with the trained fold ensembles (config `predict: {NAME: FOLDER}`):
# read and resize, full-size masks, lesion crops, class probabilities. Naming and skip rules:
# lesionflow.userimages.


rule predict_folder_cache:
    input:
        images=predict_images,
    output:
        images="results/cache/predict/{name}/images.npy",
        index="results/cache/predict/{name}/index.csv",
        skipped="results/predict/{name}/skipped.csv",
    log:
        f"{LOGS}/predict/{{name}}/cache.log",
    benchmark:
        f"{BENCH}/predict/{{name}}/cache.tsv"
    wildcard_constraints:
        name=PREDICT_NAME,
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        **retried(mem_mb=1000, runtime=60),
    params:
        # functions, so that braces in file names are not read as wildcards
        key=lambda w: f"predict.{w.name}",
        folder=lambda w: str(predict_listing(w.name).folder),
        files=lambda w: list(predict_listing(w.name).names),
        rejected=lambda w: [list(r) for r in predict_listing(w.name).rejected],
        size=config["segmentation"]["image_size"],
    script:
        "../scripts/predict_folder_cache.py"


rule predict_folder_masks:
    input:
        images="results/cache/predict/{name}/images.npy",
        index="results/cache/predict/{name}/index.csv",
        ensemble="results/segmentation/ensemble.json",  # the base configuration's ensembles
        models=fold_models("segmentation"),
    output:
        directory("results/predict/{name}/masks"),
    log:
        f"{LOGS}/predict/{{name}}/masks.log",
    benchmark:
        f"{BENCH}/predict/{{name}}/masks.tsv"
    wildcard_constraints:
        name=PREDICT_NAME,
    conda:
        "../envs/tensorflow.yaml"
    threads: config["segmentation"]["resources"]["threads"]
    resources:
        **gpu_resources("segmentation"),
    script:
        "../scripts/predict_folder_masks.py"


rule predict_folder_crops:
    input:
        images=predict_images,
        index="results/cache/predict/{name}/index.csv",
        masks="results/predict/{name}/masks",
    output:
        crops=directory("results/predict/{name}/masked"),
        images="results/cache/predict/{name}/masked_images.npy",
        index="results/cache/predict/{name}/masked_index.csv",
        empty="results/cache/predict/{name}/empty_masks.csv",
    log:
        f"{LOGS}/predict/{{name}}/crops.log",
    benchmark:
        f"{BENCH}/predict/{{name}}/crops.tsv"
    wildcard_constraints:
        name=PREDICT_NAME,
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        **retried(mem_mb=2000, runtime=60),
    params:
        folder=lambda w: str(predict_listing(w.name).folder),
        size=config["classification"]["image_size"],
        margin=config["masking"]["margin"],
        background=config["masking"]["background"],
    script:
        "../scripts/predict_folder_crops.py"


rule predict_folder_classes:
    input:
        images="results/cache/predict/{name}/masked_images.npy",
        index="results/cache/predict/{name}/masked_index.csv",
        ensemble="results/classification/ensemble.json",
        models=fold_models("classification"),
    output:
        "results/predict/{name}/predictions.csv",
    log:
        f"{LOGS}/predict/{{name}}/classes.log",
    benchmark:
        f"{BENCH}/predict/{{name}}/classes.tsv"
    wildcard_constraints:
        name=PREDICT_NAME,
    conda:
        "../envs/tensorflow.yaml"
    threads: config["classification"]["resources"]["threads"]
    resources:
        **gpu_resources("classification"),
    script:
        "../scripts/predict_folder_classes.py"
