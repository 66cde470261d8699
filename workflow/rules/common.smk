# Config validation, paths and input functions shared by every stage.

import os
import re
import sys
from functools import cache
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # use the package from this checkout

from lesionflow import isic, layout, userimages  # noqa: E402
from lesionflow import experiments as variants  # noqa: E402
from lesionflow import resources as job_resources  # noqa: E402
from lesionflow import settings as typed_settings  # noqa: E402
from lesionflow.config import check_config, load_schema  # noqa: E402
from lesionflow.errors import InputError  # noqa: E402
from lesionflow.validation import files_fingerprint  # noqa: E402


def stop(error):
    """End Snakemake with one line, `ERROR: <file or config key>: <problem>`, instead of a traceback."""
    print(f"ERROR: {error}", file=sys.stderr, flush=True)
    sys.exit(1)


# One line naming the key for a bad value; then Snakemake fills in the schema's defaults.
try:
    check_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except InputError as exc:
    stop(exc)
validate(config, schema="../schemas/config.schema.yaml")


# ------------------------------------------------------------------ experiments (lesionflow.experiments)
# The base configuration and each experiment of the config's `experiments` section. A rule's outputs lie
# under results/{exp_dir}: exp_dir is "" for the base configuration and "experiments/NAME/" for an
# experiment; a rule runs only for the configurations that compute its step themselves (owners), and
# reads an earlier step's outputs from the folder that computed them (step_dir).
try:
    EXPERIMENTS = variants.plan_experiments(
        config, load_schema(Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
    )
except InputError as exc:
    stop(exc)
BY_FOLDER = {variant.folder: variant for variant in EXPERIMENTS.values()}
COMPARISON = "results/experiments/comparison.csv"
SELECT = config["experiments_select"]  # a held-out metric, or None
SELECTED = "results/experiments/selected.json"


def experiment(wildcards):
    """The configuration (base or experiment) whose outputs a job writes."""
    return BY_FOLDER[wildcards.exp_dir]


def settings(wildcards):
    """The job's configuration: the config with its experiment's overrides merged in."""
    return experiment(wildcards).config


def step_dir(wildcards, step):
    """The folder under results/ that holds ``step``'s outputs for the job's configuration."""
    return experiment(wildcards).source(step)


def owners(step):
    """The exp_dir values of the configurations that compute ``step`` themselves (for wildcard_constraints)."""
    return variants.owners_pattern(EXPERIMENTS, step)


def selection_candidates(kind, image_set):
    """Each configuration's masks ('masks') or submission CSV ('predictions') of a Task 3 set, by name."""
    step = "segmentation" if kind == "masks" else "classification"
    suffix = "" if kind == "masks" else ".csv"
    return {name: f"results/{variant.source(step)}{kind}/{image_set}{suffix}" for name, variant in EXPERIMENTS.items()}


def comparison_inputs(stage):
    """Each configuration's held-out metrics of ``stage``, base first, from the folder that computed them."""
    return [f"results/{variant.source(stage)}metrics/{stage}.json" for variant in EXPERIMENTS.values()]


def described_experiments():
    """What results/experiments/experiments.json records: each configuration's overrides, changed settings and
    the folders its steps are read from (a change rewrites it)."""
    base = EXPERIMENTS[variants.BASE]
    return {name: variant.describe(base) for name, variant in EXPERIMENTS.items()}


def experiment_outputs():
    """The comparison of the experiments and its report figures; nothing when none is configured."""
    if len(EXPERIMENTS) == 1:
        return []
    selected = [SELECTED, *expand("results/selected/{kind}/{set}", kind="masks", set=SETS)]
    selected += expand("results/selected/predictions/{set}.csv", set=SETS)
    return [
        COMPARISON,
        *(selected if SELECT else []),
        f"{REPORT}/experiments/segmentation_comparison.png",
        f"{REPORT}/experiments/classification_comparison.png",
        f"{REPORT}/experiments/experiments.html",
    ]


DATA_DIR = Path(config["data_dir"])


def demo_wanted():
    """Whether to generate the demo data into data_dir: only into a new or empty folder, or one the
    generator wrote (its marker lists its files). A folder holding other data is the user's: it is used as
    it is and never written to, and planning says so in one line. A file the generator would replace but
    did not write ends planning with one line naming it."""
    if not config["demo"]["generate"]:
        return False
    from lesionflow.demo import inspect_data_dir

    try:
        folder = inspect_data_dir(DATA_DIR, layout.demo_spec(config["demo"]))
    except InputError as exc:
        stop(exc)
    if folder.holds_users_data:
        print(
            f"NOTE: {DATA_DIR}: holds data that the demo generator did not write (e.g. "
            f"{folder.users_files[0]}), so it is used as it is and no demo data is generated into it",
            file=sys.stderr,
            flush=True,
        )
        return False
    return True


DEMO = demo_wanted()
SEG_FOLDS = list(range(config["segmentation"]["folds"]))
CLS_FOLDS = list(range(config["classification"]["folds"]))
SETS = list(isic.TASK3_SETS)
LOGS = "results/logs"
BENCH = "results/benchmarks"


class PlanningLayout(layout.DataLayout):
    """The data layout as input functions see it: a missing data_dir, image folder or mask, or an empty image
    folder, ends planning with one line. Checked when first needed, so `snakemake fetch_isic2018` plans
    before data_dir exists."""

    def image_ids(self, image_set):
        try:
            return super().image_ids(image_set)
        except InputError as exc:
            stop(exc)

    def mask_paths(self, image_set):
        try:
            return super().mask_paths(image_set)
        except InputError as exc:
            stop(exc)


DATA = PlanningLayout(DATA_DIR, demo_spec=layout.demo_spec(config["demo"]) if DEMO else None)


wildcard_constraints:
    set="|".join(SETS),
    fold=r"\d+",


def retried(mem_mb, runtime):
    """Resources that grow with each retry (Snakemake's ``attempt``), bounded by the config's ``retry``
    section, so that a job killed at its time limit or for lack of memory can succeed when retried; the
    attempt itself goes along, for the job's log."""
    retry = config["retry"]
    return dict(
        mem_mb=lambda wildcards, attempt: job_resources.grown(
            mem_mb, attempt=attempt, factor=retry["mem_factor"], maximum=retry["max_mem_mb"]
        ),
        runtime=lambda wildcards, attempt: job_resources.grown(
            runtime, attempt=attempt, factor=retry["runtime_factor"], maximum=retry["max_runtime"]
        ),
        attempt=lambda wildcards, attempt: attempt,
    )


def gpu_resources(stage):
    """What a network job asks for: one GPU, plus memory and run time from the config, grown on retries."""
    res = config[stage]["resources"]
    return dict(gpu=1, **retried(mem_mb=res["mem_mb"], runtime=res["runtime"]))


def training_params(stage):
    """A stage's image size, seed, model, training and speed settings for the job's configuration, nested as
    in the config (lesionflow.settings reads them): a change retrains that stage's fold models."""
    return lambda wildcards: typed_settings.training_params(settings(wildcards), stage)


def check_inputs(wildcards):
    """What check_images waits for: with the demo, the files the demo_data job writes; with real data, nothing
    per file (check_listing below stands for them), so that planning does not grow with the data."""
    if not DEMO:
        return {}
    files = dict(images=DATA.image_paths(wildcards.set))
    if wildcards.set == "seg_train":
        files["masks"] = DATA.mask_paths(wildcards.set)
    return files


def check_listing(wildcards):
    """What check_images reads for one set, as its params: the images (and for seg_train the masks) and, for real
    data, a fingerprint of their names, sizes and modification times, so that adding, removing or changing a
    file reruns the check (and what reads it)."""
    return file_listing(wildcards.set, masks=wildcards.set == "seg_train")


def file_listing(image_set, masks):
    images = [str(path) for path in DATA.image_paths(image_set)]
    mask_files = [str(path) for path in DATA.mask_paths(image_set)] if masks else None
    fingerprint = None if DEMO else files_fingerprint([*images, *(mask_files or [])])
    return dict(images=images, masks=mask_files, fingerprint=fingerprint)


def labels_check(wildcards=None):
    """The training-labels check, for segmentation training to wait for; none when data_dir holds no Task 3
    training labels, so that segmentation alone (e.g. `snakemake results/masks/test`) runs without them."""
    return "results/checks/labels.json" if DATA.has_ground_truth("train", "labels") else []


def ground_truth_inputs(wildcards):
    """What check_ground_truth waits for: the set's labels CSV where present, and with the demo, the files the
    demo_data job writes; the images and masks of real data are in ground_truth_listing."""
    files = {}
    if DEMO:
        files["images"] = DATA.image_paths(wildcards.set)
        if DATA.has_ground_truth(wildcards.set, "masks"):
            files["masks"] = DATA.mask_paths(wildcards.set)
    if DATA.has_ground_truth(wildcards.set, "labels"):
        files["labels"] = DATA.labels_csv(wildcards.set)
    return files


def ground_truth_listing(wildcards):
    """The set's images and ground-truth masks where present, as check_listing gives them."""
    return file_listing(wildcards.set, masks=DATA.has_ground_truth(wildcards.set, "masks"))


def checked_ground_truth():
    """The ground-truth checks of validation and test, for the sets that have ground truth."""
    sets = [s for s in ("validation", "test") if any(DATA.has_ground_truth(s, k) for k in ("masks", "labels"))]
    return expand("results/checks/{set}_ground_truth.json", set=sets)


STAGES = ["segmentation", "classification"]


def fold_models(stage, exp_dir=""):
    """A stage's fold models (segmentation or classification) of one configuration, in fold order, from the
    folder that trained them (an experiment that changes only how a stage predicts reuses its models)."""
    variant = BY_FOLDER[exp_dir]
    folds = range(variant.config[stage]["folds"])
    return expand(f"results/{variant.source(f'{stage}_models')}{stage}/fold_{{fold}}/model.keras", fold=folds)


def stage_folds(stage):
    """A stage's folds.csv of the job's configuration, from the folder that trained its fold models."""
    return lambda wildcards: f"results/{step_dir(wildcards, f'{stage}_models')}{stage}/folds.csv"


def seg_models(wildcards):
    return fold_models("segmentation", wildcards.exp_dir)


def cls_models(wildcards):
    return fold_models("classification", wildcards.exp_dir)


def ensemble_params(stage, exp_dir=""):
    """What results/{exp_dir}{stage}/ensemble.json records besides its models: a change rewrites it."""
    section = BY_FOLDER[exp_dir].config[stage]
    described = dict(
        image_size=section["image_size"], encoder=section["model"]["encoder"], tta=section["prediction"]["tta"]
    )
    if stage == "segmentation":
        described["postprocess"] = dict(section["postprocess"])
    else:
        described["combination"] = {key: section["prediction"][key] for key in ("ensemble", "min_probability")}
    return described


def seg_cache(wildcards):
    """The segmentation training cache (images, masks, index) of the job's configuration."""
    folder = f"results/{step_dir(wildcards, 'cache')}cache/seg_train"
    return dict(images=f"{folder}/images.npy", masks=f"{folder}/masks.npy", index=f"{folder}/index.csv")


def set_cache(wildcards):
    """A Task 3 set's resize cache (images, index) for the U-Net, of the job's configuration."""
    folder = f"results/{step_dir(wildcards, 'cache')}cache/{wildcards.set}"
    return dict(images=f"{folder}/images.npy", index=f"{folder}/index.csv")


def masked_cache(wildcards, image_set=None):
    """A set's masked crops as the classifier reads them (images, index), of the job's configuration."""
    folder = f"results/{step_dir(wildcards, 'masked')}cache/masked_{image_set or wildcards.set}"
    return dict(images=f"{folder}/images.npy", index=f"{folder}/index.csv")


def cls_training_cache(wildcards):
    return masked_cache(wildcards, "train")


def model_card_inputs(wildcards):
    """What a stage's model card reports: the ensemble, each fold's provenance, held-out and Task 3 scores,
    the folds (the training images) and, for the classifier, the training labels (images per class)."""
    stage = wildcards.stage
    folds = SEG_FOLDS if stage == "segmentation" else CLS_FOLDS
    kind = "masks" if stage == "segmentation" else "labels"
    inputs = dict(
        ensemble=f"results/{stage}/ensemble.json",
        provenance=expand("results/{stage}/fold_{fold}/provenance.json", stage=stage, fold=folds),
        held_out=f"results/metrics/{stage}.json",
        task3=expand("results/metrics/{stage}_{set}.json", stage=stage, set=ground_truth_sets(kind)),
        folds=f"results/{stage}/folds.csv",
    )
    if stage == "classification":
        inputs["labels"] = DATA.labels_csv("train")
    return inputs


SEG_ENSEMBLE = "results/{exp_dir}segmentation/ensemble.json"
CLS_ENSEMBLE = "results/{exp_dir}classification/ensemble.json"


def ground_truth_sets(kind):
    """Held-out Task 3 sets (validation, test) whose ground truth ('masks' or 'labels') is in data_dir.

    The demo writes the test set's; the training set is scored per held-out fold by the evaluate rules.
    """
    return [s for s in SETS if s != "train" and DATA.has_ground_truth(s, kind)]


# ------------------------------------------------------------------ the report (report.smk)

REPORT = "results/report"
STAGE_FOLDS = {"segmentation": SEG_FOLDS, "classification": CLS_FOLDS}
# Ground truth that scores each stage on a Task 3 set: masks for segmentation, labels for classification.
STAGE_TRUTH = {"segmentation": "masks", "classification": "labels"}


def scored_sets(stage):
    """Task 3 sets scored against their ground truth by ``stage``."""
    return ground_truth_sets(STAGE_TRUTH[stage])


def report_outputs(wildcards=None):
    """Every figure and table of the report."""
    outputs = []
    for stage, folds in STAGE_FOLDS.items():
        outputs += expand(f"{REPORT}/{stage}/{stage}_training_curves_fold_{{fold}}.png", fold=folds)
        outputs += [f"{REPORT}/{stage}/{stage}_scores.html", f"{REPORT}/provenance/{stage}_provenance.html"]
    outputs += [
        f"{REPORT}/segmentation/jaccard_histogram.png",
        *expand(f"{REPORT}/segmentation/mask_gallery_{{set}}.png", set=SETS),
        f"{REPORT}/classification/classification_per_class.html",
        f"{REPORT}/classification/masked_samples.png",
        *expand(
            f"{REPORT}/classification/{{kind}}_{{source}}.png",
            kind=["confusion", "roc"],
            source=["folds", *scored_sets("classification")],
        ),
    ]
    return outputs


def _stage_category(wildcards):
    return wildcards.stage.capitalize()


def gallery_inputs(wildcards):
    """The set's check (naming its images) and predicted masks; where it has ground-truth masks, their check
    (naming them) and their scores."""
    inputs = dict(checked=f"results/checks/{wildcards.set}.json", masks=f"results/masks/{wildcards.set}")
    if wildcards.set in scored_sets("segmentation"):
        inputs.update(
            truth_checked=f"results/checks/{wildcards.set}_ground_truth.json",
            scores=f"results/segmentation/scores_{wildcards.set}.csv",
        )
    return inputs


def confusion_inputs(wildcards):
    """Held-out fold predictions with the training labels, or a set's submission CSV with its labels."""
    if wildcards.source == "folds":
        return dict(predictions="results/classification/evaluation_predictions.csv", labels=DATA.labels_csv("train"))
    return dict(predictions=f"results/predictions/{wildcards.source}.csv", labels=DATA.labels_csv(wildcards.source))


# ------------------------------------------------------------------ predicting on folders (predict.smk)

PREDICT = config["predict"]
# Only configured names are targets; with none configured the pattern matches nothing.
PREDICT_NAME = "|".join(re.escape(name) for name in PREDICT) or "(?!)"


@cache
def predict_listing(name):
    """The image files of the folder configured as predict.NAME; a missing or empty folder ends planning."""
    try:
        return userimages.list_images(PREDICT[name], f"predict.{name}")
    except InputError as exc:
        stop(exc)  # common.smk: one line naming the key and the folder


def predict_images(wildcards):
    """The folder's image files, as inputs: adding, removing or touching one reruns only this set."""
    return predict_listing(wildcards.name).watchable_paths()


def all_outputs(wildcards):
    outputs = [
        "results/metrics/segmentation.json",
        "results/metrics/classification.json",
        *expand("results/masks/{set}", set=SETS),
        *expand("results/masked/{set}", set=SETS),
        *expand("results/predictions/{set}.csv", set=SETS),
        *expand("results/metrics/segmentation_{set}.json", set=ground_truth_sets("masks")),
        *expand("results/metrics/classification_{set}.json", set=ground_truth_sets("labels")),
        *checked_ground_truth(),
        # each fold ensemble as one SavedModel with its model card (export.smk)
        *expand("results/export/{stage}/{file}", stage=STAGES, file=["saved_model.pb", "model_card.json"]),
        *(expand("results/export/{stage}/model.onnx", stage=STAGES) if config["export"]["onnx"] else []),
        # predictions on the user's own image folders (config `predict`, predict.smk); none by default
        *expand("results/predict/{name}/predictions.csv", name=list(PREDICT)),
        *report_outputs(),  # figures and tables for `snakemake --report` (report.smk)
        *experiment_outputs(),  # the config's experiments compared (experiments.smk)
    ]
    return outputs
