# Figures and tables for `snakemake --report report.html`: training curves, scores, mask gallery, confusion
# matrices, ROC curves and the provenance of every model, each captioned in workflow/report/*.rst and
# filed under Segmentation, Classification or Provenance. `rule all` builds them (report_outputs()).


rule plot_training_curves:
    input:
        history="results/{stage}/fold_{fold}/history.csv",
    output:
        report(
            f"{REPORT}/{{stage}}/{{stage}}_training_curves_fold_{{fold}}.png",
            caption="../report/training_curves.rst",
            category=_stage_category,
            subcategory="Training curves",
            labels={"fold": "{fold}"},
        ),
    log:
        f"{LOGS}/report/{{stage}}_training_curves_fold_{{fold}}.log",
    benchmark:
        f"{BENCH}/report/{{stage}}_training_curves_fold_{{fold}}.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        title=lambda w: f"{w.stage.capitalize()} model, fold {w.fold}",
    script:
        "../scripts/plot_training_curves.py"


rule metrics_table:
    input:
        folds="results/metrics/{stage}.json",
        sets=lambda w: expand("results/metrics/{stage}_{set}.json", stage=w.stage, set=scored_sets(w.stage)),
    output:
        table=f"{REPORT}/{{stage}}/{{stage}}_scores.csv",
        html=report(
            f"{REPORT}/{{stage}}/{{stage}}_scores.html",
            caption="../report/metrics_table.rst",
            category=_stage_category,
            subcategory="Scores",
            labels={"result": "scores per fold and set"},
        ),
    log:
        f"{LOGS}/report/{{stage}}_metrics_table.log",
    benchmark:
        f"{BENCH}/report/{{stage}}_metrics_table.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        sets=lambda w: scored_sets(w.stage),
    script:
        "../scripts/plot_metrics_table.py"


rule per_class_table:
    input:
        folds="results/metrics/classification.json",
        sets=lambda w: expand("results/metrics/classification_{set}.json", set=scored_sets("classification")),
    output:
        table=f"{REPORT}/classification/classification_per_class.csv",
        html=report(
            f"{REPORT}/classification/classification_per_class.html",
            caption="../report/per_class.rst",
            category="Classification",
            subcategory="Scores",
            labels={"result": "scores per class"},
        ),
    log:
        f"{LOGS}/report/classification_per_class.log",
    benchmark:
        f"{BENCH}/report/classification_per_class.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        sets=lambda w: scored_sets("classification"),
    script:
        "../scripts/plot_per_class_table.py"


rule plot_jaccard_histogram:
    input:
        folds="results/segmentation/evaluation_per_image.csv",
        sets=lambda w: expand("results/segmentation/scores_{set}.csv", set=scored_sets("segmentation")),
    output:
        report(
            f"{REPORT}/segmentation/jaccard_histogram.png",
            caption="../report/jaccard_histogram.rst",
            category="Segmentation",
            subcategory="Scores",
            labels={"result": "Jaccard per image"},
        ),
    log:
        f"{LOGS}/report/jaccard_histogram.log",
    benchmark:
        f"{BENCH}/report/jaccard_histogram.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        sets=lambda w: scored_sets("segmentation"),
    script:
        "../scripts/plot_jaccard_histogram.py"


rule plot_mask_gallery:
    input:
        unpack(gallery_inputs),
    output:
        report(
            f"{REPORT}/segmentation/mask_gallery_{{set}}.png",
            caption="../report/mask_gallery.rst",
            category="Segmentation",
            subcategory="Mask gallery",
            labels={"set": "{set}"},
        ),
    log:
        f"{LOGS}/report/gallery_{{set}}.log",
    benchmark:
        f"{BENCH}/report/gallery_{{set}}.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        per_row=4,
        max_side=320,
    script:
        "../scripts/plot_mask_gallery.py"


rule plot_masked_samples:
    input:
        crops="results/masked/train",
        labels=lambda w: DATA.labels_csv("train"),
    output:
        report(
            f"{REPORT}/classification/masked_samples.png",
            caption="../report/masked_samples.rst",
            category="Classification",
            subcategory="Masked images",
            labels={"set": "train"},
        ),
    log:
        f"{LOGS}/report/masked_samples.log",
    benchmark:
        f"{BENCH}/report/masked_samples.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        per_class=6,
        max_side=192,
    script:
        "../scripts/plot_masked_samples.py"


rule plot_confusion:
    input:
        unpack(confusion_inputs),
    output:
        confusion=report(
            f"{REPORT}/classification/confusion_{{source}}.png",
            caption="../report/confusion_matrix.rst",
            category="Classification",
            subcategory="Confusion and ROC",
            labels={"evaluated on": "{source}", "figure": "confusion matrix"},
        ),
        roc=report(
            f"{REPORT}/classification/roc_{{source}}.png",
            caption="../report/roc.rst",
            category="Classification",
            subcategory="Confusion and ROC",
            labels={"evaluated on": "{source}", "figure": "ROC curves"},
        ),
    log:
        f"{LOGS}/report/confusion_{{source}}.log",
    benchmark:
        f"{BENCH}/report/confusion_{{source}}.tsv"
    wildcard_constraints:
        source="folds|" + "|".join(SETS),
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        title=lambda w: "held-out folds" if w.source == "folds" else f"set {w.source}",
        # the official scorer's zero-weight images are left out of set scores, as score_predictions does
        official_exclusions=lambda w: w.source != "folds",
    script:
        "../scripts/plot_confusion.py"


rule provenance_table:
    input:
        lambda w: expand("results/{stage}/fold_{fold}/provenance.json", stage=w.stage, fold=STAGE_FOLDS[w.stage]),
    output:
        table=f"{REPORT}/provenance/{{stage}}_provenance.csv",
        html=report(
            f"{REPORT}/provenance/{{stage}}_provenance.html",
            caption="../report/provenance.rst",
            category="Provenance",
            subcategory=_stage_category,
            labels={"models": "{stage}"},
        ),
    log:
        f"{LOGS}/report/provenance_{{stage}}.log",
    benchmark:
        f"{BENCH}/report/provenance_{{stage}}.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        names=lambda w: [f"fold {fold}" for fold in STAGE_FOLDS[w.stage]],
        title=lambda w: f"{w.stage.capitalize()} models",
    script:
        "../scripts/plot_provenance_table.py"
