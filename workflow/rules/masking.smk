# Masked-image creation: the lesion crop of every Task 3 image, and the classifier's cache; for the base
# configuration and each experiment that changes masking or the classifier's image size (common.smk).


rule mask_images:
    input:
        checked="results/checks/{set}.json",  # the set's images (ids and folder): a changed image reruns the check
        masks=lambda w: f"results/{step_dir(w, 'segmentation')}masks/{w.set}",
    output:
        crops=directory("results/{exp_dir}masked/{set}"),
        images="results/{exp_dir}cache/masked_{set}/images.npy",
        index="results/{exp_dir}cache/masked_{set}/index.csv",
        empty="results/{exp_dir}cache/masked_{set}/empty_masks.csv",
    log:
        f"{LOGS}/{{exp_dir}}masking/{{set}}.log",
    benchmark:
        f"{BENCH}/{{exp_dir}}masking/{{set}}.tsv"
    wildcard_constraints:
        exp_dir=owners("masked"),
    conda:
        "../envs/data.yaml"
    threads: config["resize"]["threads"]
    resources:
        **retried(mem_mb=2000, runtime=60),
    params:
        size=lambda w: settings(w)["classification"]["image_size"],
        margin=lambda w: settings(w)["masking"]["margin"],
        background=lambda w: settings(w)["masking"]["background"],
    script:
        "../scripts/mask_images.py"
