# Each stage's fold ensemble as one TensorFlow SavedModel that loads without this package
# (results/export/{stage}/, signature `serve`), and its model card beside it (lesionflow.export). The
# SavedModel is rebuilt only when its fold models or prediction settings (ensemble.json) change; the card
# also follows the scores it reports.

EXPORT_FILES = [
    "saved_model.pb",
    "fingerprint.pb",
    "variables/variables.index",
    "variables/variables.data-00000-of-00001",
]


rule export_ensemble:
    input:
        ensemble="results/{stage}/ensemble.json",
        models=lambda w: fold_models(w.stage),
    output:
        expand("results/export/{{stage}}/{file}", file=EXPORT_FILES),
    log:
        f"{LOGS}/export/{{stage}}.log",
    benchmark:
        f"{BENCH}/export/{{stage}}.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/tensorflow.yaml"
    threads: 2
    resources:
        **retried(mem_mb=4000, runtime=30),
    script:
        "../scripts/export_ensemble.py"


rule export_onnx:
    input:
        ensemble="results/{stage}/ensemble.json",
        models=lambda w: fold_models(w.stage),
    output:
        "results/export/{stage}/model.onnx",
    log:
        f"{LOGS}/export/{{stage}}_onnx.log",
    benchmark:
        f"{BENCH}/export/{{stage}}_onnx.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/tensorflow.yaml"
    threads: 2
    resources:
        **retried(mem_mb=4000, runtime=30),
    script:
        "../scripts/export_onnx.py"


rule model_card:
    input:
        unpack(model_card_inputs),
    output:
        card="results/export/{stage}/model_card.json",
        markdown="results/export/{stage}/MODEL_CARD.md",
    log:
        f"{LOGS}/export/{{stage}}_card.log",
    benchmark:
        f"{BENCH}/export/{{stage}}_card.tsv"
    wildcard_constraints:
        stage="segmentation|classification",
    conda:
        "../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        masking=lambda w: dict(config["masking"]) if w.stage == "classification" else None,
    script:
        "../scripts/model_card.py"
