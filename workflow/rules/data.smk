# Inputs: the generated demo data (when configured), input checks and resize-to-cache, one job per image set.
# The checks are cheap jobs that run first (priority) and that the stages wait for, so a bad file fails in
# seconds, not after training. Each check reads only what its dependants read, so that a change to one set's
# files reruns only that set's jobs: the ground truth of validation and test (used only for scoring) has a
# check of its own, which `all` asks for but no prediction waits for.
# A set's check is the one job that lists the set's images as inputs: its JSON records their ids, folder
# and fingerprint, and the caches, masking and the gallery take that JSON as input and read the files it
# names, so planning handles each image once and their error blocks name one JSON instead of every image
# (the check's own block still lists its set).


if DEMO:

    rule demo_data:
        output:
            DATA.demo_files(),
        log:
            f"{LOGS}/demo_data.log",
        benchmark:
            f"{BENCH}/demo_data.tsv"
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        params:
            data_dir=lambda w, output: os.path.commonpath(output),
            demo=config["demo"],
        script:
            "../scripts/demo_data.py"


rule check_images:
    input:
        unpack(check_inputs),
    output:
        "results/checks/{set}.json",
    log:
        f"{LOGS}/checks/{{set}}.log",
    benchmark:
        f"{BENCH}/checks/{{set}}.tsv"
    wildcard_constraints:
        set="seg_train|" + "|".join(SETS),
    priority: 50  # before the stages, so that a bad file stops the run early
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        listing=check_listing,
    script:
        "../scripts/check_images.py"


rule check_labels:
    input:
        labels=lambda w: DATA.labels_csv("train"),
        groupings=lambda w: DATA.groupings_csv(),
    output:
        "results/checks/labels.json",
    log:
        f"{LOGS}/checks/labels.log",
    benchmark:
        f"{BENCH}/checks/labels.tsv"
    priority: 60  # the cheapest check, and the one the training jobs wait for
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        image_ids=lambda w: DATA.image_ids("train"),  # what it checks against: adding or removing one reruns it
    script:
        "../scripts/check_labels.py"


rule check_ground_truth:
    input:
        unpack(ground_truth_inputs),
    output:
        "results/checks/{set}_ground_truth.json",
    log:
        f"{LOGS}/checks/{{set}}_ground_truth.log",
    benchmark:
        f"{BENCH}/checks/{{set}}_ground_truth.tsv"
    wildcard_constraints:
        set="validation|test",
    priority: 50
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        mem_mb=1000,
        runtime=30,
    params:
        listing=ground_truth_listing,
    script:
        "../scripts/check_ground_truth.py"


rule cache_segmentation_training:
    input:
        checked="results/checks/seg_train.json",  # its images and masks: a changed file reruns the check
    output:
        images="results/{exp_dir}cache/seg_train/images.npy",
        masks="results/{exp_dir}cache/seg_train/masks.npy",
        index="results/{exp_dir}cache/seg_train/index.csv",
    log:
        f"{LOGS}/{{exp_dir}}cache/seg_train.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}cache/seg_train.tsv"
    wildcard_constraints:
        exp_dir=owners("cache"),
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        **retried(mem_mb=1000, runtime=60),
    params:
        size=lambda w: settings(w)["segmentation"]["image_size"],
    script:
        "../scripts/resize_cache.py"


rule cache_task3_set:
    input:
        checked="results/checks/{set}.json",  # its images: a changed image reruns the check
    output:
        images="results/{exp_dir}cache/{set}/images.npy",
        index="results/{exp_dir}cache/{set}/index.csv",
    log:
        f"{LOGS}/{{exp_dir}}cache/{{set}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}cache/{{set}}.tsv"
    wildcard_constraints:
        exp_dir=owners("cache"),
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        **retried(mem_mb=1000, runtime=60),
    params:
        size=lambda w: settings(w)["segmentation"]["image_size"],
    script:
        "../scripts/resize_cache.py"
