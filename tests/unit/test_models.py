"""The speed settings (precision, XLA, deterministic ops) reach the networks that train and predict."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from lesionflow import classification, device, segmentation
from lesionflow.cache import Cache
from lesionflow.config import check_config
from lesionflow.errors import InputError
from lesionflow.models import build_classifier, build_unet, load_model
from lesionflow.settings import Speed

from support import ROOT
from support.stubs import training_settings

SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
PRECISIONS = ["float32", "mixed_float16", "mixed_bfloat16"]
COMPUTE_DTYPE = {"float32": "float32", "mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}


@pytest.fixture
def precision(request):
    """Keras' global dtype policy set as a job's configure() sets it, and float32 again afterwards."""
    device.set_speed(Speed(precision=request.param, xla=False, deterministic=False))
    yield request.param
    keras.config.set_dtype_policy("float32")


def _tiny_unet() -> keras.Model:
    return build_unet("mobilenetv3small", 32, weights=None, decoder_filters=(8, 8, 8, 8, 8), decoder="bilinear")


def _tiny_classifier() -> keras.Model:
    return build_classifier("mobilenetv3small", 32, n_classes=7, weights=None, dense_layers=(8,), l2=1e-3, dropout=0.0)


@pytest.mark.parametrize("precision", PRECISIONS, indirect=True)
@pytest.mark.parametrize("build", [_tiny_unet, _tiny_classifier])
def test_networks_compute_in_the_policy_and_give_float32_probabilities(precision, build):
    model = build()
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions[0].dtype_policy.name == precision
    assert convolutions[0].compute_dtype == COMPUTE_DTYPE[precision]
    assert all(weight.dtype == "float32" for weight in model.weights)  # mixed precision keeps float32 weights
    assert model.layers[-1].dtype_policy.name == "float32"  # the final sigmoid/softmax
    assert model.output.dtype == "float32"
    prob = model.predict_on_batch(np.full((2, 32, 32, 3), 128, dtype=np.float32))
    assert prob.dtype == np.float32 and np.isfinite(prob).all()


@pytest.mark.parametrize("precision", ["mixed_bfloat16"], indirect=True)
def test_a_trained_model_keeps_its_policy_when_loaded_in_a_float32_job(precision, tmp_path):
    _tiny_unet().save(tmp_path / "model.keras")
    keras.config.set_dtype_policy("float32")  # as a prediction job with another setting starts
    loaded = load_model(tmp_path / "model.keras", image_size=32, encoder="mobilenetv3small")
    convolutions = [layer for layer in loaded.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions[0].dtype_policy.name == "mixed_bfloat16"
    assert loaded.output.dtype == "float32"


def _compiled_by_train_fold(stage, monkeypatch, speed: dict, work: Path) -> keras.Model:
    """The model a stage's ``train_fold`` builds and compiles (fitting it is left out)."""
    compiled = []

    def capture(model, *args, **kwargs):
        compiled.append(model)
        return pd.DataFrame()

    monkeypatch.setattr(stage, "fit", capture)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    index = pd.DataFrame({"image": [f"ISIC_{i:07d}" for i in range(4)], "height": 32, "width": 32})
    model = dict(encoder="mobilenetv3small", encoder_weights=None)
    training = dict(epochs=1, batch_size=2, learning_rate=1e-3)
    folds = np.array([0, 0, 1, 1])
    if stage is segmentation:
        settings = training_settings(
            "segmentation",
            image_size=32,
            seed=0,
            model=dict(model, decoder_filters=[8] * 5),
            training=training,
            speed=speed,
        )
        cache = Cache(images=images, index=index, masks=(images[..., 0] > 128).astype(np.uint8))
        stage.train_fold(
            cache, folds, 0, settings, work_dir=work, model_out=work / "model.keras", history_out=work / "history.csv"
        )
    else:
        settings = training_settings(
            "classification",
            image_size=32,
            seed=0,
            model=dict(model, dense_layers=[8]),
            training=training,
            speed=speed,
        )
        truth = pd.DataFrame(np.eye(7, dtype=np.float32)[[0, 1, 2, 3]], index=index["image"])
        stage.train_fold(
            Cache(images=images, index=index),
            truth,
            folds,
            0,
            settings,
            work_dir=work,
            model_out=work / "model.keras",
            history_out=work / "history.csv",
        )
    return compiled[0]


@pytest.mark.parametrize("precision", ["mixed_float16"], indirect=True)
@pytest.mark.parametrize("stage", [segmentation, classification])
def test_training_under_mixed_float16_scales_the_loss_and_xla_reaches_compile(precision, stage, monkeypatch, tmp_path):
    speed = {"precision": precision, "xla": True, "deterministic": False}
    model = _compiled_by_train_fold(stage, monkeypatch, speed, tmp_path)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert type(model.optimizer.inner_optimizer) is keras.optimizers.Adam  # Keras' scaling is always dynamic
    assert model.jit_compile is True
    assert model.output.dtype == "float32"


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"], indirect=True)
@pytest.mark.parametrize("stage", [segmentation, classification])
def test_without_float16_there_is_no_loss_scaling_and_xla_stays_off(precision, stage, monkeypatch, tmp_path):
    speed = {"precision": precision, "xla": False, "deterministic": False}
    model = _compiled_by_train_fold(stage, monkeypatch, speed, tmp_path)
    assert type(model.optimizer) is keras.optimizers.Adam
    assert model.jit_compile is False


def _demo_config() -> dict:
    with open(ROOT / "config/config.yaml") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize(
    ("speed", "message"),
    [
        (
            {"precision": "float64"},
            "config key speed.precision: 'float64' is not one of ['float32', 'mixed_float16', 'mixed_bfloat16']",
        ),
        ({"precision": "float16"}, "config key speed.precision: 'float16' is not one of"),
        ({"xla": "yes"}, "config key speed.xla: 'yes' is not of type 'boolean'"),
        ({"deterministic": 1}, "config key speed.deterministic: 1 is not of type 'boolean'"),
        ({"mixed": True}, "config key speed: unknown key(s) 'mixed' (known keys: precision, xla, deterministic)"),
        (
            {"xla": True},
            "config key speed: 'deterministic' is a required property (xla: true needs deterministic: false)",
        ),
        (
            {"xla": True, "deterministic": True},
            "config key speed.deterministic: False was expected (xla: true needs deterministic: false)",
        ),
    ],
)
def test_bad_speed_settings_are_one_line_errors_naming_the_key(speed, message):
    config = dict(_demo_config(), speed=speed)
    with pytest.raises(InputError) as error:
        check_config(config, SCHEMA)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_good_speed_settings_pass():
    for precision in PRECISIONS:
        check_config(dict(_demo_config(), speed={"precision": precision, "xla": True, "deterministic": False}), SCHEMA)


def test_configure_applies_the_speed_settings_and_names_them(tmp_path):
    """In a fresh process, as a job: the policy, deterministic ops, and the device description."""
    code = textwrap.dedent("""
        from lesionflow import device
        from lesionflow.settings import Speed
        used = device.configure(threads=1, seed=0,
                                speed=Speed(precision="mixed_bfloat16", xla=False, deterministic=True))
        import keras
        from tensorflow.python.framework import config as tf_config
        print(used)
        print(keras.config.dtype_policy().name, tf_config.is_op_determinism_enabled())
    """)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    used, applied = proc.stdout.strip().splitlines()[-2:]
    assert used.startswith("CPU") and used.endswith("(1 threads, deterministic ops, mixed_bfloat16)")
    assert applied == "mixed_bfloat16 True"


def test_set_speed_names_only_what_differs_from_tensorflows_defaults():
    try:
        assert device.set_speed(Speed(precision="float32", xla=False, deterministic=False)) == ""
        assert keras.config.dtype_policy().name == "float32"
        assert device.set_speed(Speed(precision="mixed_float16", xla=True, deterministic=False)) == ", mixed_float16"
        assert keras.config.dtype_policy().name == "mixed_float16"
    finally:
        keras.config.set_dtype_policy("float32")


def _check_transpose_decoder(model) -> None:
    decoder = [layer for layer in model.layers if layer.name.startswith("decoder")]
    assert sum(isinstance(layer, keras.layers.Conv2DTranspose) for layer in decoder) == 5
    assert not [layer for layer in decoder if isinstance(layer, keras.layers.BatchNormalization)]
    assert [model.get_layer(f"decoder{i}_bottleneck").kernel.shape[:2] for i in range(5)] == [(1, 1)] * 5
    assert model.output.shape[1:] == (32, 32, 1)


def test_the_original_transpose_decoder_builds_and_trains_one_step():
    keras.utils.set_random_seed(0)
    # the original's DenseNet U-Net is built as it is; the training step runs on a small encoder (tracing a
    # DenseNet's gradient step takes most of a minute on a CPU)
    _check_transpose_decoder(
        build_unet("densenet121", 32, weights=None, decoder_filters=(512, 256, 128, 64, 32), decoder="transpose")
    )
    model = build_unet(
        "mobilenetv3small", 32, weights=None, decoder_filters=(512, 256, 128, 64, 32), decoder="transpose"
    )
    _check_transpose_decoder(model)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    y = (rng.random((4, 32, 32, 1)) > 0.5).astype("float32")
    model.compile(keras.optimizers.Adam(1e-4), "binary_crossentropy")
    before = [w.copy() for w in model.get_layer("decoder0_deconv").get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.allclose(before[0], model.get_layer("decoder0_deconv").get_weights()[0])


def test_an_unknown_decoder_is_named():
    with pytest.raises(InputError, match="segmentation.model.decoder: 'nearest' is not one of bilinear, transpose"):
        build_unet("mobilenetv3small", 32, weights=None, decoder_filters=(8,) * 5, decoder="nearest")
