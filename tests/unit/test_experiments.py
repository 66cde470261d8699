"""Experiments: overrides merged and checked with one line naming the experiment, each step read from the first
configuration with the same settings, and the comparison table's rows."""

from __future__ import annotations

import math

import pytest

from lesionflow.config import load_schema
from lesionflow.errors import InputError
from lesionflow.experiments import (
    BASE,
    STEPS,
    comparison_table,
    copy_selected,
    merged,
    owners_pattern,
    plan_experiments,
    select_experiment,
)

from support.stubs import ROOT, demo_config

SCHEMA = load_schema(ROOT / "workflow/schemas/config.schema.yaml")
CLASS_WEIGHTS_ONES = {"classification": {"training": {"class_weights": "ones"}}}
#: The steps before the classifier's, read from the base configuration.
SHARED = {"cache": "", "segmentation_models": "", "segmentation": "", "masked": ""}


def classifier_steps(folder):
    """The classifier's steps, both computed in ``folder``."""
    return {"classification_models": folder, "classification": folder}


def plan(**experiments):
    return plan_experiments({**demo_config(), "experiments": experiments}, SCHEMA)


def test_merging_replaces_only_what_the_overrides_name():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 3}
    result = merged(base, {"a": {"c": [5]}})
    assert result == {"a": {"b": 1, "c": [5]}, "d": 3}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 3}  # the base config is not changed


def test_without_experiments_there_is_only_the_base_configuration():
    planned = plan_experiments(demo_config(), SCHEMA)
    assert list(planned) == [BASE]
    base = planned[BASE]
    assert base.folder == "" and all(base.owns(step) for step in STEPS)
    assert owners_pattern(planned, "segmentation") == "(?:)"


def test_a_classifier_only_experiment_reuses_caches_models_masks_and_crops():
    planned = plan(ones=CLASS_WEIGHTS_ONES)
    ones = planned["ones"]
    assert ones.folder == "experiments/ones/"
    assert ones.sources == {**SHARED, **classifier_steps("experiments/ones/")}
    assert ones.config["classification"]["training"]["class_weights"] == "ones"
    assert ones.config["classification"]["training"]["epochs"] == demo_config()["classification"]["training"]["epochs"]
    assert ones.changes(planned[BASE]) == [("classification.training.class_weights", "balanced-sqrt", "ones")]
    assert owners_pattern(planned, "segmentation") == "(?:)"
    assert owners_pattern(planned, "classification_models") == "(?:|experiments/ones/)"
    assert owners_pattern(planned, "classification") == "(?:|experiments/ones/)"


def test_a_new_segmentation_encoder_reuses_only_the_caches():
    sources = plan(enc={"segmentation": {"model": {"encoder": "efficientnetb0"}}})["enc"].sources
    assert sources == {step: ("" if step == "cache" else "experiments/enc/") for step in STEPS}


def test_a_new_segmentation_image_size_recomputes_every_step():
    sources = plan(small={"segmentation": {"image_size": 32}})["small"].sources
    assert set(sources.values()) == {"experiments/small/"}


def test_a_new_classifier_image_size_reuses_the_masks_but_not_the_crops():
    sources = plan(big={"classification": {"image_size": 96}})["big"].sources
    assert sources == {
        "cache": "",
        "segmentation_models": "",
        "segmentation": "",
        "masked": "experiments/big/",
        "classification_models": "experiments/big/",
        "classification": "experiments/big/",
    }


def test_experiments_with_the_same_segmentation_share_it():
    encoder = {"model": {"encoder": "efficientnetb0"}}
    planned = plan(a={"segmentation": encoder}, b={"segmentation": encoder, **CLASS_WEIGHTS_ONES})
    assert planned["b"].sources == {
        "cache": "",
        "segmentation_models": "experiments/a/",
        "segmentation": "experiments/a/",
        "masked": "experiments/a/",
        "classification_models": "experiments/b/",
        "classification": "experiments/b/",
    }
    assert owners_pattern(planned, "segmentation") == "(?:|experiments/a/)"


def test_a_segmentation_post_processing_experiment_reuses_the_u_nets_and_computes_what_follows():
    planned = plan(post={"segmentation": {"postprocess": {"threshold": 0.3}, "prediction": {"tta": False}}})
    assert planned["post"].sources == {
        "cache": "",
        "segmentation_models": "",
        **{step: "experiments/post/" for step in ("segmentation", "masked", "classification_models", "classification")},
    }
    assert owners_pattern(planned, "segmentation_models") == "(?:)"  # no U-Net trained twice
    assert owners_pattern(planned, "segmentation") == "(?:|experiments/post/)"


def test_a_classifier_ensembling_experiment_reuses_the_classifiers():
    planned = plan(logits={"classification": {"prediction": {"ensemble": "logits", "min_probability": 0.001}}})
    assert planned["logits"].sources == {
        **SHARED,
        "classification_models": "",
        "classification": "experiments/logits/",
    }
    assert owners_pattern(planned, "classification_models") == "(?:)"


def test_resources_and_other_workflow_settings_do_not_change_a_step():
    planned = plan(same={"segmentation": {"training": {"epochs": demo_config()["segmentation"]["training"]["epochs"]}}})
    assert planned["same"].sources == {step: "" for step in STEPS}  # the same settings: all shared


@pytest.mark.parametrize(
    "overrides, key",
    [
        (
            {"classification": {"training": {"class_weights": "one"}}},
            "experiments.bad.classification.training.class_weights",
        ),
        ({"segmentation": {"folds": 1}}, "experiments.bad.segmentation.folds"),
        ({"classification": {"training": {"epoch": 3}}}, "experiments.bad.classification.training"),
        ({"data_dir": "elsewhere"}, "experiments.bad"),
        ({"segmentation": {"resources": {"threads": 8}}}, "experiments.bad.segmentation.resources"),
        ({}, "experiments.bad"),
    ],
)
def test_a_bad_override_is_one_line_naming_the_experiment_and_key(overrides, key):
    with pytest.raises(InputError) as caught:
        plan(bad=overrides)
    message = str(caught.value)
    assert message.startswith(f"config key {key}:"), message
    assert "\n" not in message


@pytest.mark.parametrize("name", [BASE, "two words", "a/b"])
def test_an_experiment_name_is_letters_digits_underscores_and_dashes(name):
    with pytest.raises(InputError, match=rf"config key experiments\.{name}: an experiment's name is letters"):
        plan(**{name: CLASS_WEIGHTS_ONES})


def fold_metrics(*values, key):
    folds = {f"fold_{k}": {key: v, "n_images": 10} for k, v in enumerate(values)}
    return {"folds": folds, "mean": {key: sum(values) / len(values)}}


def test_the_comparison_has_a_row_per_experiment_stage_and_fold_and_a_mean():
    table = comparison_table(
        {
            BASE: {
                "segmentation": fold_metrics(0.7, 0.8, key="jaccard"),
                "classification": fold_metrics(0.5, 0.6, key="balanced_accuracy"),
            },
            "ones": {
                "segmentation": fold_metrics(0.7, 0.8, key="jaccard"),
                "classification": fold_metrics(0.4, 0.5, key="balanced_accuracy"),
            },
        }
    )
    assert list(table.columns[:3]) == ["experiment", "stage", "fold"]
    assert len(table) == 2 * 2 * 3
    ones = table[(table["experiment"] == "ones") & (table["stage"] == "classification")]
    assert list(ones["fold"]) == ["0", "1", "mean"]
    assert ones["balanced_accuracy"].tolist() == pytest.approx([0.4, 0.5, 0.45])
    assert math.isnan(ones["jaccard"].iloc[0])  # a metric of the other stage is left empty
    assert ones["n_images"].tolist()[:2] == [10, 10]


def test_fold_ten_comes_after_fold_nine():
    record = fold_metrics(*[0.1 * k for k in range(11)], key="jaccard")
    table = comparison_table({BASE: {"segmentation": record}})
    assert table["fold"].tolist() == [str(k) for k in range(11)] + ["mean"]


def test_metrics_without_folds_are_one_line_naming_the_experiment():
    with pytest.raises(InputError, match="segmentation metrics of experiment 'ones' lack 'folds'"):
        comparison_table({"ones": {"segmentation": {"mean": {}}}})


def test_the_shipped_class_weight_experiments_over_the_original_preset_train_only_classifiers():
    import yaml
    from snakemake.utils import validate

    def read(path):
        return yaml.safe_load((ROOT / path).read_text())

    config = merged(read("config/config.yaml"), read("config/original.yaml"))
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    planned = plan_experiments({**config, **read("config/experiments/class_weights.yaml")}, SCHEMA)
    assert list(planned) == [BASE, "ones", "balanced", "balanced_sqrt"]
    assert planned["ones"].sources == {step: "" for step in STEPS}  # the preset's own weights: nothing to train
    for name in ("balanced", "balanced_sqrt"):
        sources = planned[name].sources
        assert sources == {**SHARED, **classifier_steps(f"experiments/{name}/")}


def _scores(**balanced_accuracy):
    return comparison_table(
        {name: {"classification": fold_metrics(v, v, key="balanced_accuracy")} for name, v in balanced_accuracy.items()}
    )


def test_selection_takes_the_best_held_out_mean_and_the_first_of_equals():
    assert select_experiment(_scores(base=0.5, ones=0.7, balanced=0.6), "balanced_accuracy")["selected"] == "ones"
    chosen = select_experiment(_scores(base=0.6, ones=0.6), "balanced_accuracy")
    assert chosen["selected"] == BASE and chosen["stage"] == "classification"
    assert chosen["means"] == {"base": pytest.approx(0.6), "ones": pytest.approx(0.6)}
    assert select_experiment(_scores(base=math.nan, ones=0.1), "balanced_accuracy")["selected"] == "ones"


def test_selection_of_an_unknown_or_missing_metric_is_one_line():
    with pytest.raises(InputError, match="experiments_select: 'accuracy' is not one of jaccard"):
        select_experiment(_scores(base=0.5), "accuracy")
    with pytest.raises(InputError, match="no held-out mean of segmentation jaccard"):
        select_experiment(_scores(base=0.5), "jaccard")


def test_selecting_without_experiments_is_one_line_naming_the_key():
    with pytest.raises(InputError, match="config key experiments_select: there are no experiments"):
        plan_experiments({**demo_config(), "experiments_select": "jaccard"}, SCHEMA)


def test_the_selected_folder_or_file_is_copied_whole_and_nothing_else(tmp_path):
    for name in ("base", "ones"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "ISIC_1_segmentation.png").write_text(name)
        (tmp_path / f"{name}.csv").write_text(f"image\n{name}\n")
    folders = {name: str(tmp_path / name) for name in ("base", "ones")}
    copied = copy_selected({"selected": "ones"}, folders, tmp_path / "out/masks")
    assert copied == folders["ones"]
    assert [p.read_text() for p in (tmp_path / "out/masks").iterdir()] == ["ones"]
    copy_selected({"selected": "base"}, {n: str(tmp_path / f"{n}.csv") for n in folders}, tmp_path / "out/test.csv")
    assert (tmp_path / "out/test.csv").read_text() == "image\nbase\n"
    with pytest.raises(InputError, match="the selected configuration 'other' is not one of base, ones"):
        copy_selected({"selected": "other"}, folders, tmp_path / "out/other")
    assert not (tmp_path / "out/other").exists()
