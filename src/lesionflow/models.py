"""Networks: a U-Net decoder on a ``keras.applications`` encoder, and the lesion classifier."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import keras
from keras import layers, ops

from .encoders import get_encoder, resolve_weights
from .errors import InputError

# ImageNet statistics used by keras.applications' preprocess_input.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

#: Momentum of every batch-norm layer's moving statistics. keras.applications uses 0.99-0.999, which
#: needs thousands of steps before the statistics used at inference match the training ones; a small
#: data set (the demo: a few steps per epoch) then predicts one class. 0.9 settles within ~50 steps.
BN_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="lesionflow")
class Preprocess(layers.Layer):
    """``keras.applications`` input preprocessing as a saveable layer (inputs are RGB in 0–255)."""

    def __init__(self, mode: str = "none", **kwargs) -> None:
        super().__init__(**kwargs)
        if mode not in ("none", "torch", "caffe", "tf"):
            raise ValueError(f"unknown preprocessing mode {mode!r}")
        self.mode = mode

    def call(self, x):
        if self.mode == "torch":
            return (x / 255.0 - ops.array(_MEAN, x.dtype)) / ops.array(_STD, x.dtype)
        if self.mode == "caffe":
            return ops.flip(x, axis=-1) - ops.array(_CAFFE_MEAN_BGR, x.dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        return x

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode}


def _backbone(encoder: str, weights: str | None, size: int, key: str) -> tuple[keras.Model, keras.KerasTensor]:
    spec = get_encoder(encoder, key=f"{key}.encoder")
    inputs = keras.Input((size, size, 3), name="image")
    x = Preprocess(spec.preprocess, name="preprocess")(inputs)
    base = spec.build(
        include_top=False, weights=resolve_weights(encoder, weights, f"{key}.encoder_weights"), input_tensor=x
    )
    for layer in base.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.momentum = BN_MOMENTUM
    return base, inputs


#: U-Net decoder styles (config ``segmentation.model.decoder``).
DECODERS = ("bilinear", "transpose")


def _tensor(base: keras.Model, ref: str):
    name, _, port = ref.partition(":")
    if port == "output":
        return base.output
    layer = base.get_layer(name)
    return layer.input if port == "input" else layer.output


def build_unet(
    encoder: str, image_size: int, *, weights: str | None, decoder_filters: Sequence[int], decoder: str
) -> keras.Model:
    """U-Net: encoder skips at 1/2…1/16, five decoder blocks, sigmoid output.

    ``decoder``: ``bilinear`` blocks upsample bilinearly, concatenate the skip and apply two 3×3
    Conv-BN-ReLU; ``transpose`` blocks (the original project's) upsample with a stride-2 transposed
    convolution, concatenate the skip, reduce it with a 1×1 "bottleneck" convolution and apply two 3×3
    convolutions, all ReLU without batch normalisation.
    """
    if decoder not in DECODERS:
        raise InputError(f"config key segmentation.model.decoder: {decoder!r} is not one of {', '.join(DECODERS)}")
    if image_size % 32:
        raise InputError(f"config key segmentation.image_size: {image_size} is not a multiple of 32")
    spec = get_encoder(encoder, key="segmentation.model.encoder")
    if spec.skips is None:
        raise InputError(f"config key segmentation.model.encoder: {encoder} cannot be a U-Net encoder")
    base, inputs = _backbone(encoder, weights, image_size, "segmentation.model")
    *skips, bottleneck = [_tensor(base, ref) for ref in spec.skips]
    x = bottleneck
    for i, filters in enumerate(decoder_filters):
        if decoder == "transpose":
            x = layers.Conv2DTranspose(
                filters, 3, strides=2, padding="same", activation="relu", name=f"decoder{i}_deconv"
            )(x)
        else:
            x = layers.UpSampling2D(interpolation="bilinear", name=f"decoder{i}_up")(x)
        if i < len(skips):
            x = layers.Concatenate(name=f"decoder{i}_concat")([x, skips[-1 - i]])
        if decoder == "transpose":
            x = layers.Conv2D(filters, 1, activation="relu", name=f"decoder{i}_bottleneck")(x)
        for j in range(2):
            if decoder == "transpose":
                x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"decoder{i}_conv{j}")(x)
                continue
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"decoder{i}_conv{j}")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"decoder{i}_bn{j}")(x)
            x = layers.Activation("relu", name=f"decoder{i}_relu{j}")(x)
    outputs = layers.Conv2D(1, 1, activation="sigmoid", dtype="float32", name="mask")(x)
    return keras.Model(inputs, outputs, name=f"unet_{encoder}")


def build_classifier(
    encoder: str,
    image_size: int,
    *,
    n_classes: int,
    weights: str | None,
    dense_layers: Sequence[int],
    l2: float,
    dropout: float,
) -> keras.Model:
    """Encoder → global average pooling → dense layers (ReLU, L2) → dropout → softmax."""
    base, inputs = _backbone(encoder, weights, image_size, "classification.model")
    x = layers.GlobalAveragePooling2D(name="pool")(base.output)
    for i, units in enumerate(dense_layers):
        x = layers.Dense(units, activation="relu", kernel_regularizer=keras.regularizers.L2(l2), name=f"dense{i}")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(n_classes, activation="softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"classifier_{encoder}")


def load_model(path: str | Path, image_size: int | None = None, encoder: str | None = None) -> keras.Model:
    """Load a saved ``.keras`` model in safe mode, checking it was built for this encoder and size."""
    path = Path(path)
    if not path.is_file():
        raise InputError("model file does not exist", path)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as exc:
        raise InputError(f"cannot load model ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})", path) from None
    size = model.input_shape[1]
    if image_size is not None and size != image_size:
        raise InputError(
            f"model was trained on {size}×{size} images but the config asks for {image_size}×{image_size}", path
        )
    if encoder is not None and not model.name.endswith(f"_{encoder}"):
        raise InputError(f"model {model.name!r} was not built on encoder {encoder!r}", path)
    return model
