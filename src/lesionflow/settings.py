"""Typed, frozen settings, built once from the validated config.

Every default lives in ``workflow/schemas/config.schema.yaml``: Snakemake's ``validate`` fills them in
before anything here runs, so these classes have no defaults of their own and read every key they hold
(a missing key is a bug, and fails loudly). A training job gets its stage's settings as one rule param
(``training_params`` in ``workflow/rules/common.smk``: ``image_size``, ``seed``, the stage's ``model`` and
``training`` sections and the ``speed`` section, nested as in the config), so a change to any of them
retrains that stage. This module imports no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

Section = Mapping[str, Any]


@dataclass(frozen=True)
class Speed:
    """The config's ``speed`` section: how the networks compute."""

    precision: str  # Keras dtype policy: float32, mixed_float16 or mixed_bfloat16
    xla: bool
    deterministic: bool

    @classmethod
    def from_config(cls, section: Section) -> Speed:
        return cls(
            precision=str(section["precision"]), xla=bool(section["xla"]), deterministic=bool(section["deterministic"])
        )


@dataclass(frozen=True)
class Augmentation:
    """A stage's ``training.augmentation``: random flips, 90° rotations, rotations by any angle up to
    ``rotation_range`` degrees, and shifts (a fraction of the size) whose outside is filled by ``fill``."""

    flip: bool
    rotate90: bool
    shift: float
    rotation_range: float
    fill: str  # reflect or nearest

    @classmethod
    def from_config(cls, section: Section) -> Augmentation:
        return cls(
            flip=bool(section["flip"]),
            rotate90=bool(section["rotate90"]),
            shift=float(section["shift"]),
            rotation_range=float(section["rotation_range"]),
            fill=str(section["fill"]),
        )


@dataclass(frozen=True)
class Schedule:
    """Epochs and the learning rate: Adam at ``learning_rate``, reduced on a validation-loss plateau."""

    epochs: int
    learning_rate: float
    min_learning_rate: float
    lr_patience: int
    lr_factor: float
    passes_per_epoch: int

    @classmethod
    def from_config(cls, training: Section) -> Schedule:
        return cls(
            epochs=int(training["epochs"]),
            learning_rate=float(training["learning_rate"]),
            min_learning_rate=float(training["min_learning_rate"]),
            lr_patience=int(training["lr_patience"]),
            lr_factor=float(training["lr_factor"]),
            passes_per_epoch=int(training["passes_per_epoch"]),
        )


@dataclass(frozen=True)
class UNet:
    """``segmentation.model``."""

    encoder: str
    encoder_weights: str | None
    decoder_filters: tuple[int, ...]
    decoder: str  # bilinear or transpose

    @classmethod
    def from_config(cls, model: Section) -> UNet:
        return cls(
            encoder=str(model["encoder"]),
            encoder_weights=model["encoder_weights"],
            decoder_filters=tuple(int(f) for f in model["decoder_filters"]),
            decoder=str(model["decoder"]),
        )


@dataclass(frozen=True)
class Classifier:
    """``classification.model``."""

    encoder: str
    encoder_weights: str | None
    dense_layers: tuple[int, ...]
    l2: float
    dropout: float

    @classmethod
    def from_config(cls, model: Section) -> Classifier:
        return cls(
            encoder=str(model["encoder"]),
            encoder_weights=model["encoder_weights"],
            dense_layers=tuple(int(n) for n in model["dense_layers"]),
            l2=float(model["l2"]),
            dropout=float(model["dropout"]),
        )


@dataclass(frozen=True)
class SegmentationTraining:
    """Everything that trains one segmentation fold."""

    image_size: int
    seed: int
    model: UNet
    schedule: Schedule
    batch_size: int
    loss: str  # a key of lesionflow.losses.SEGMENTATION_LOSSES
    augmentation: Augmentation
    speed: Speed

    @classmethod
    def from_params(cls, params: Section) -> SegmentationTraining:
        """From a training rule's ``settings`` param (see the module docstring)."""
        training = params["training"]
        return cls(
            image_size=int(params["image_size"]),
            seed=int(params["seed"]),
            model=UNet.from_config(params["model"]),
            schedule=Schedule.from_config(training),
            batch_size=int(training["batch_size"]),
            loss=str(training["loss"]),
            augmentation=Augmentation.from_config(training["augmentation"]),
            speed=Speed.from_config(params["speed"]),
        )


@dataclass(frozen=True)
class ClassificationTraining:
    """Everything that trains one classifier fold."""

    image_size: int
    seed: int
    model: Classifier
    schedule: Schedule
    batch_size: int
    loss: str  # a key of lesionflow.losses.CLASSIFICATION_LOSSES
    focal_alpha: float
    focal_gamma: float
    class_weights: str  # ones, balanced or balanced-sqrt
    augmentation: Augmentation
    speed: Speed

    @classmethod
    def from_params(cls, params: Section) -> ClassificationTraining:
        """From a training rule's ``settings`` param (see the module docstring)."""
        training = params["training"]
        return cls(
            image_size=int(params["image_size"]),
            seed=int(params["seed"]),
            model=Classifier.from_config(params["model"]),
            schedule=Schedule.from_config(training),
            batch_size=int(training["batch_size"]),
            loss=str(training["loss"]),
            focal_alpha=float(training["focal_alpha"]),
            focal_gamma=float(training["focal_gamma"]),
            class_weights=str(training["class_weights"]),
            augmentation=Augmentation.from_config(training["augmentation"]),
            speed=Speed.from_config(params["speed"]),
        )


def training_params(config: Section, stage: str) -> dict[str, Any]:
    """A stage's training settings as the training rules pass them (nested as in the config)."""
    section = config[stage]
    return {
        "image_size": section["image_size"],
        "seed": config["seed"],
        "model": dict(section["model"]),
        "training": dict(section["training"]),
        "speed": dict(config["speed"]),
    }
