"""Typed settings: built once from the validated config, every value from the config, nothing defaulted twice."""

from __future__ import annotations

import dataclasses

import pytest

from lesionflow.settings import ClassificationTraining, SegmentationTraining, Speed, training_params

from support.stubs import demo_config


def test_training_params_keep_the_config_sections_apart():
    config = demo_config()
    params = training_params(config, "classification")
    assert set(params) == {"image_size", "seed", "model", "training", "speed"}
    assert params["model"] == config["classification"]["model"]  # not merged with training: no key lost
    assert params["training"] == config["classification"]["training"]


def test_settings_hold_the_configs_values_typed_and_frozen():
    config = demo_config()
    seg = SegmentationTraining.from_params(training_params(config, "segmentation"))
    cls = ClassificationTraining.from_params(training_params(config, "classification"))
    section = config["segmentation"]
    assert seg.model.decoder_filters == tuple(section["model"]["decoder_filters"])
    assert seg.schedule.epochs == section["training"]["epochs"]
    assert seg.augmentation.shift == section["training"]["augmentation"]["shift"]
    assert seg.speed == Speed.from_config(config["speed"])
    assert cls.class_weights == config["classification"]["training"]["class_weights"]
    assert cls.model.l2 == config["classification"]["model"]["l2"]  # the config's 1e-4, not another default
    with pytest.raises(dataclasses.FrozenInstanceError):
        seg.batch_size = 1


def test_a_missing_key_fails_loudly_instead_of_taking_a_default():
    params = training_params(demo_config(), "segmentation")
    del params["training"]["lr_factor"]
    with pytest.raises(KeyError, match="lr_factor"):
        SegmentationTraining.from_params(params)
