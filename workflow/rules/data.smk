# Inputs: the generated demo data (when configured) and resize-to-cache, one job per image set.


if DEMO:

    rule demo_data:
        output:
            DATA.demo_files(),
        params:
            data_dir=str(DATA_DIR),
            demo=config["demo"],
        log:
            f"{LOGS}/demo_data.log",
        benchmark:
            f"{BENCH}/demo_data.tsv"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        conda:
            "../envs/data.yaml"
        script:
            "../scripts/demo_data.py"


rule cache_segmentation_training:
    input:
        images=lambda w: DATA.image_paths("seg_train"),
        masks=lambda w: DATA.mask_paths("seg_train"),
    output:
        images="results/cache/seg_train/images.npy",
        masks="results/cache/seg_train/masks.npy",
        index="results/cache/seg_train/index.csv",
    params:
        size=config["segmentation"]["image_size"],
    log:
        f"{LOGS}/cache/seg_train.log",
    benchmark:
        f"{BENCH}/cache/seg_train.tsv"
    threads: config["resize"]["threads"]
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/resize_cache.py"


rule cache_task3_set:
    input:
        images=task3_images,
    output:
        images="results/cache/{set}/images.npy",
        index="results/cache/{set}/index.csv",
    params:
        size=config["segmentation"]["image_size"],
    log:
        f"{LOGS}/cache/{{set}}.log",
    benchmark:
        f"{BENCH}/cache/{{set}}.tsv"
    threads: config["resize"]["threads"]
    resources:
        mem_mb=1000,
        runtime=60,
    conda:
        "../envs/data.yaml"
    script:
        "../scripts/resize_cache.py"
