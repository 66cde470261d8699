# Masked-image creation: the lesion crop of every Task 3 image, and the classifier's cache.


rule mask_images:
    input:
        checked="results/checks/{set}.json",  # the set's images (ids and folder): a changed image reruns the check
        masks="results/masks/{set}",
    output:
        crops=directory("results/masked/{set}"),
        images="results/cache/masked_{set}/images.npy",
        index="results/cache/masked_{set}/index.csv",
        empty="results/cache/masked_{set}/empty_masks.csv",
    log:
        f"{LOGS}/masking/{{set}}.log",
    benchmark:
        f"{BENCH}/masking/{{set}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        **retried(mem_mb=2000, runtime=60),
    params:
        size=config["classification"]["image_size"],
        margin=config["masking"]["margin"],
        background=config["masking"]["background"],
    script:
        "../scripts/mask_images.py"
