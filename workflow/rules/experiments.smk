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
