# Experiments compared: every configuration's held-out scores in one table, and the report's view of them.
# The experiments themselves run through the stages' own rules, under results/experiments/NAME/ (common.smk).


rule compare_experiments:
    input:
        segmentation=lambda w: comparison_inputs("segmentation"),
        classification=lambda w: comparison_inputs("classification"),
    output:
        table=COMPARISON,
        described="results/experiments/experiments.json",
    log:
        f"{LOGS}/experiments/compare.log",
    benchmark:
        f"{BENCH}/experiments/compare.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:
        names=list(EXPERIMENTS),
        described=described_experiments(),
    script:
        "../scripts/compare_experiments.py"


rule plot_experiments:
    input:
        table=COMPARISON,
        described="results/experiments/experiments.json",
        selected=SELECTED if SELECT else [],
    output:
        segmentation=report(
            f"{REPORT}/experiments/segmentation_comparison.png",
            caption="../report/experiments.rst",
            category="Experiments",
            labels={"figure": "segmentation scores per fold"},
        ),
        classification=report(
            f"{REPORT}/experiments/classification_comparison.png",
            caption="../report/experiments.rst",
            category="Experiments",
            labels={"figure": "classification scores per fold"},
        ),
        settings_table=f"{REPORT}/experiments/experiments.csv",
        settings_html=report(
            f"{REPORT}/experiments/experiments.html",
            caption="../report/experiments.rst",
            category="Experiments",
            labels={"figure": "settings and mean scores"},
        ),
    log:
        f"{LOGS}/report/experiments.log",
    benchmark:
        f"{BENCH}/report/experiments.tsv"
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../scripts/plot_experiments.py"


# With experiments_select: the configuration with the best held-out mean of that metric, and copies of its
# Task 3 masks and submission CSVs under results/selected/ (every configuration predicts the Task 3 sets).
if SELECT:

    rule select_experiment:
        input:
            table=COMPARISON,
        output:
            SELECTED,
        log:
            f"{LOGS}/experiments/select.log",
        benchmark:
            f"{BENCH}/experiments/select.tsv"
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        params:
            metric=SELECT,
        script:
            "../scripts/select_experiment.py"

    rule selected_masks:
        input:
            selected=SELECTED,
            candidates=lambda w: sorted(set(selection_candidates("masks", w.set).values())),
        output:
            directory("results/selected/masks/{set}"),
        log:
            f"{LOGS}/experiments/selected_masks_{{set}}.log",
        benchmark:
            f"{BENCH}/experiments/selected_masks_{{set}}.tsv"
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=30,
        params:
            candidates=lambda w: selection_candidates("masks", w.set),
        script:
            "../scripts/copy_selected.py"

    rule selected_predictions:
        input:
            selected=SELECTED,
            candidates=lambda w: sorted(set(selection_candidates("predictions", w.set).values())),
        output:
            "results/selected/predictions/{set}.csv",
        log:
            f"{LOGS}/experiments/selected_predictions_{{set}}.log",
        benchmark:
            f"{BENCH}/experiments/selected_predictions_{{set}}.tsv"
        conda:
            "../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=5,
        params:
            candidates=lambda w: selection_candidates("predictions", w.set),
        script:
            "../scripts/copy_selected.py"
