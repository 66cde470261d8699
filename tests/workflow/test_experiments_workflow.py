"""Experiments in the workflow: added to a finished run, they train only what they change, are compared in
results/experiments/comparison.csv, and a new or changed experiment reruns only itself."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from support.workflow import TEST_CONFIG, copy_checkout, copy_run, planned_jobs, snakemake

# The original project's class-weight schemes, as two classifier-only experiments.
CLASS_WEIGHTS = {
    "ones": {"classification": {"training": {"class_weights": "ones"}}},
    "balanced": {"classification": {"training": {"class_weights": "balanced"}}},
}
CLASSIFIER_RULES = {"classification_folds", "train_classifier", "describe_ensemble", "evaluate_classifier"}
SEGMENTATION_RULES = {"train_segmentation", "segmentation_folds", "predict_masks", "mask_images"}


def write_experiments(run, experiments) -> list[str]:
    """The config files that run the test config with these experiments, for Snakemake's --configfile."""
    (run / "experiments.yaml").write_text(yaml.safe_dump({"experiments": experiments}))
    return ["--configfile", TEST_CONFIG, "experiments.yaml"]


def trained(jobs) -> dict[str, set[str]]:
    """For each rule that ran, the configurations (exp_dir, '' for the base) it ran for."""
    ran: dict[str, set[str]] = {}
    for job in jobs:
        ran.setdefault(job.rule, set()).add(job.wildcards.get("exp_dir", ""))
    return ran


@pytest.fixture(scope="module")
def experiments_run(demo_run, tmp_path_factory):
    """The finished demo run with the two class-weight experiments added, planned, then run to the end."""
    run = copy_run(demo_run, tmp_path_factory.mktemp("experiments") / "run")
    configs = write_experiments(run, CLASS_WEIGHTS)
    plan = planned_jobs(run, *configs, config=None)
    # two network jobs at a time: on the test machine's CPUs, one thread each (.test/config.yaml)
    snakemake(run, *configs, "--cores", "2", "--resources", "gpu=2", config=None)
    return run, plan


@pytest.mark.workflow
def test_classifier_experiments_added_to_a_finished_run_train_only_classifiers(experiments_run):
    _, plan = experiments_run
    ran = trained(plan)
    assert not SEGMENTATION_RULES & set(ran), ran  # caches, U-Nets, masks and crops are the base run's
    assert not any(rule.startswith("cache") for rule in ran), ran
    for rule in CLASSIFIER_RULES:
        assert ran[rule] == {"experiments/ones/", "experiments/balanced/"}, (rule, ran[rule])
    assert sum(j.rule == "train_classifier" for j in plan) == 4  # 2 experiments x 2 folds
    assert set(ran) == CLASSIFIER_RULES | {"compare_experiments", "plot_experiments"}


@pytest.mark.workflow
def test_the_comparison_lists_every_experiment_stage_and_fold(experiments_run):
    run, _ = experiments_run
    table = pd.read_csv(run / "results/experiments/comparison.csv", dtype={"experiment": str, "fold": str})
    assert list(table.columns[:3]) == ["experiment", "stage", "fold"]
    rows = set(zip(table["experiment"], table["stage"], table["fold"]))
    assert rows == {
        (name, stage, fold)
        for name in ("base", "ones", "balanced")
        for stage in ("segmentation", "classification")
        for fold in ("0", "1", "mean")
    }
    # each row holds that configuration's own held-out scores
    for name, folder in (("base", "results"), ("ones", "results/experiments/ones")):
        metrics = json.loads((run / folder / "metrics/classification.json").read_text())
        mine = table[(table["experiment"] == name) & (table["stage"] == "classification")].set_index("fold")
        assert mine.loc["0", "balanced_accuracy"] == pytest.approx(metrics["folds"]["fold_0"]["balanced_accuracy"])
        assert mine.loc["mean", "balanced_accuracy"] == pytest.approx(metrics["mean"]["balanced_accuracy"])
    # the classifier-only experiments share the base configuration's segmentation scores
    seg = table[(table["stage"] == "segmentation")].pivot(index="fold", columns="experiment", values="jaccard")
    assert (seg["ones"] == seg["base"]).all() and (seg["balanced"] == seg["base"]).all()

    # each experiment's models were trained with its own settings, recorded in their provenance
    for name, weights in (("ones", "ones"), ("balanced", "balanced")):
        record = json.loads((run / f"results/experiments/{name}/classification/fold_1/provenance.json").read_text())
        assert record["settings"]["training"]["class_weights"] == weights
    assert not (run / "results/experiments/ones/segmentation").exists()

    described = json.loads((run / "results/experiments/experiments.json").read_text())
    assert described["ones"]["changes"] == [
        {"key": "classification.training.class_weights", "base": "balanced-sqrt", "value": "ones"}
    ]
    assert described["ones"]["reads"]["segmentation"] == "results/"
    assert described["ones"]["reads"]["classification"] == "results/experiments/ones/"
    for figure in ("segmentation_comparison.png", "classification_comparison.png", "experiments.html"):
        assert (run / "results/report/experiments" / figure).stat().st_size > 0, figure


@pytest.mark.workflow
def test_a_third_classifier_experiment_plans_no_segmentation_and_reruns_no_other(experiments_run, tmp_path):
    run = copy_run(experiments_run[0], tmp_path / "run")
    third = {**CLASS_WEIGHTS, "crossentropy": {"classification": {"training": {"loss": "crossentropy"}}}}
    ran = trained(planned_jobs(run, *write_experiments(run, third), config=None))
    assert not SEGMENTATION_RULES & set(ran), ran
    assert ran["train_classifier"] == {"experiments/crossentropy/"}
    assert ran["compare_experiments"] == {""}  # the comparison gains its rows


@pytest.mark.workflow
def test_changing_one_experiment_retrains_only_it(experiments_run, tmp_path):
    run = copy_run(experiments_run[0], tmp_path / "run")
    changed = {**CLASS_WEIGHTS, "ones": {"classification": {"training": {"class_weights": "ones", "epochs": 3}}}}
    ran = trained(planned_jobs(run, *write_experiments(run, changed), config=None))
    assert ran["train_classifier"] == {"experiments/ones/"}
    assert not SEGMENTATION_RULES & set(ran), ran


@pytest.mark.workflow
def test_experiments_that_change_only_how_a_stage_predicts_reuse_its_models(demo_run, tmp_path):
    run = copy_run(demo_run, tmp_path / "run")
    # a new mask threshold: the base's U-Nets, new masks, so new crops and classifiers
    post = {"post": {"segmentation": {"postprocess": {"threshold": 0.3}}}}
    ran = trained(planned_jobs(run, *write_experiments(run, post), config=None))
    assert "train_segmentation" not in ran and "segmentation_folds" not in ran, ran
    for rule in ("predict_masks", "evaluate_segmentation", "mask_images", "train_classifier"):
        assert ran[rule] == {"experiments/post/"}, (rule, ran)

    # the folds' logits averaged instead of their probabilities: the base's classifiers, nothing trained
    logits = {"logits": {"classification": {"prediction": {"ensemble": "logits", "min_probability": 0.001}}}}
    configs = write_experiments(run, logits)
    ran = trained(planned_jobs(run, *configs, config=None))
    assert not {rule for rule in ran if rule.startswith("train_") or rule.endswith("_folds")}, ran
    assert ran["describe_ensemble"] == ran["evaluate_classifier"] == {"experiments/logits/"}, ran

    targets = ["results/experiments/comparison.csv", "results/experiments/logits/predictions/test.csv"]
    snakemake(run, *configs, "--cores", "2", "--resources", "gpu=1", "--", *targets)
    assert (run / targets[1]).stat().st_size > 0
    mine = run / "results/experiments/logits/classification"
    described = json.loads((mine / "ensemble.json").read_text())
    assert described["combination"] == {"ensemble": "logits", "min_probability": 0.001}
    assert [(mine / model).resolve() for model in described["models"]] == [
        (run / f"results/classification/fold_{fold}/model.keras").resolve() for fold in described["folds"]
    ]
    assert not list(mine.glob("fold_*"))  # no model of its own
    table = pd.read_csv(run / "results/experiments/comparison.csv", dtype={"experiment": str, "fold": str})
    assert set(table["experiment"]) == {"base", "logits"}


@pytest.mark.workflow
def test_a_bad_override_stops_planning_with_one_line_naming_the_experiment(tmp_path):
    workdir = copy_checkout(tmp_path)
    bad = {"ones": {"classification": {"training": {"class_weights": "one"}}}}
    proc = snakemake(workdir, "-n", *write_experiments(workdir, bad), config=None, check=False)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, proc.stderr[-2000:]
    assert errors[0].startswith("ERROR: config key experiments.ones.classification.training.class_weights: 'one'")
    assert "Traceback" not in proc.stderr


@pytest.mark.workflow
def test_selection_records_the_best_configuration_and_copies_its_outputs(experiments_run, tmp_path):
    run = copy_run(experiments_run[0], tmp_path / "run")
    configs = write_experiments(run, CLASS_WEIGHTS)
    (run / "select.yaml").write_text("experiments_select: balanced_accuracy\n")
    configs.append("select.yaml")
    ran = trained(planned_jobs(run, *configs, config=None))
    # switching selection on trains nothing and reruns nothing that exists: the experiments' Task 3
    # predictions (their masks are the base's), the choice, and the copies
    assert set(ran) == {
        "predict_classes",
        "select_experiment",
        "selected_masks",
        "selected_predictions",
        "plot_experiments",
    }, ran
    assert ran["predict_classes"] == {"experiments/ones/", "experiments/balanced/"}

    snakemake(run, *configs, "--cores", "2", "--", "results/experiments/selected.json", "results/selected/masks/test")
    table = pd.read_csv(run / "results/experiments/comparison.csv", dtype={"experiment": str, "fold": str})
    means = table[(table["stage"] == "classification") & (table["fold"] == "mean")]
    best = means["balanced_accuracy"].max()
    selected = json.loads((run / "results/experiments/selected.json").read_text())
    assert selected["metric"] == "balanced_accuracy" and selected["mean"] == pytest.approx(best)
    assert selected["selected"] == means[means["balanced_accuracy"] == best]["experiment"].iloc[0]  # first of equals
    # every configuration here shares the base's masks, so the selected masks are the base's, file by file
    base_masks = sorted(p.name for p in (run / "results/masks/test").iterdir())
    assert sorted(p.name for p in (run / "results/selected/masks/test").iterdir()) == base_masks
    assert (run / "results/selected/masks/test" / base_masks[0]).read_bytes() == (
        run / "results/masks/test" / base_masks[0]
    ).read_bytes()
