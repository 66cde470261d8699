"""Registry of ``keras.applications`` encoders: constructor, input preprocessing and U-Net skip layers."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import keras

from .errors import InputError


@dataclass(frozen=True)
class Encoder:
    """How to build one encoder and where its U-Net skip connections are.

    ``skips`` name the layers at 1/2, 1/4, 1/8 and 1/16 of the input size, then the 1/32 bottleneck;
    ``name:input`` means the input of that layer (for encoders whose activations have generated names).
    ``preprocess`` is a :class:`lesionflow.models.Preprocess` mode for inputs in 0–255.
    """

    build: Callable[..., keras.Model]
    preprocess: str
    skips: tuple[str, ...] | None
    weights_file: str  # the official no-top weights file name, as Keras caches it


A = keras.applications

ENCODERS: dict[str, Encoder] = {
    "densenet121": Encoder(
        A.DenseNet121,
        "torch",
        ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu"),
        "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "densenet169": Encoder(
        A.DenseNet169,
        "torch",
        ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu"),
        "densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "densenet201": Encoder(
        A.DenseNet201,
        "torch",
        ("conv1_relu", "pool2_relu", "pool3_relu", "pool4_relu", "relu"),
        "densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "vgg16": Encoder(
        A.VGG16,
        "caffe",
        ("block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3", "block5_pool"),
        "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "resnet50": Encoder(
        A.ResNet50,
        "caffe",
        ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    # 'valid' padding gives odd feature-map sizes: a classifier encoder only.
    "inceptionv3": Encoder(A.InceptionV3, "tf", None, "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    "mobilenetv3small": Encoder(
        A.MobileNetV3Small,
        "none",
        (
            "expanded_conv_depthwise_pad:input",
            "expanded_conv_1_depthwise_pad:input",
            "expanded_conv_3_depthwise_pad:input",
            "expanded_conv_8_depthwise_pad:input",
            ":output",
        ),
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    ),
    "efficientnetb0": Encoder(
        A.EfficientNetB0,
        "none",
        (
            "block2a_expand_activation",
            "block3a_expand_activation",
            "block4a_expand_activation",
            "block6a_expand_activation",
            "top_activation",
        ),
        "efficientnetb0_notop.h5",
    ),
}


def get_encoder(name: str, key: str = "encoder") -> Encoder:
    """The registry entry for ``name``; an unknown name raises InputError naming the config key."""
    try:
        return ENCODERS[name]
    except KeyError:
        raise InputError(
            f"config key {key}: unknown encoder {name!r}; choose one of {', '.join(sorted(ENCODERS))}"
        ) from None


def resolve_weights(name: str, weights: str | None, key: str = "encoder_weights") -> str | None:
    """Turn the ``encoder_weights`` setting into what Keras accepts, failing early and clearly offline.

    ``imagenet`` uses the file from the Keras cache (``$KERAS_HOME/models``) when it is there; otherwise
    Keras would try to download it, so this checks that the network is reachable first.
    """
    if weights is None:
        return None
    if weights != "imagenet":
        if not Path(weights).is_file():
            raise InputError(f"config key {key}: weights file {weights!r} does not exist")
        return str(weights)
    encoder = get_encoder(name)
    cached = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models" / encoder.weights_file
    if cached.is_file():
        return str(cached)
    if not _can_reach("storage.googleapis.com"):
        raise InputError(
            f"config key {key}: ImageNet weights for {name} are not cached and cannot be downloaded "
            f"(no network); copy {encoder.weights_file} into {cached.parent}/ or set {key} to its path"
        )
    return "imagenet"


def _can_reach(host: str, timeout: float = 3.0) -> bool:
    import socket

    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False
