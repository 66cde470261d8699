"""Resumable training: a job killed mid-epoch resumes to the model an uninterrupted run makes; provenance."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from lesionflow import provenance
from lesionflow.training import STATE, Schedule, fingerprint, fit

# A linear model trained on y = x·w and validated on y = -x·w: the validation loss rises every epoch, so
# the learning rate halves every `lr_patience` epochs and the first epoch stays the best one. A job killed
# in epoch KILL_EPOCH must carry the plateau counters and the best model over the restart.
EPOCHS, KILL_EPOCH = 6, 2
SCHEDULE = dict(
    epochs=EPOCHS, learning_rate=0.05, min_learning_rate=1e-4, lr_patience=2, lr_factor=0.5, passes_per_epoch=1
)

JOB = r"""
import os, signal, sys
import numpy as np, tensorflow as tf, keras
from lesionflow.jobs import job
from lesionflow.training import Schedule, fit

work, out, kill_epoch, lr = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
keras.utils.set_random_seed(0)
tf.config.experimental.enable_op_determinism()
rng = np.random.default_rng(0)
w = np.array([[1.0], [-2.0], [3.0], [0.5]], dtype="float32")
x, x_val = rng.normal(size=(64, 4)).astype("float32"), rng.normal(size=(16, 4)).astype("float32")
started = []

def batches():
    started.append(1)
    for i, start in enumerate(range(0, len(x), 8)):
        if len(started) == kill_epoch + 1 and i == 3:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-epoch, as a node failure would
        yield x[start:start + 8], x[start:start + 8] @ w

spec = (tf.TensorSpec((None, 4), tf.float32), tf.TensorSpec((None, 1), tf.float32))
train = tf.data.Dataset.from_generator(batches, output_signature=spec)
val = tf.data.Dataset.from_tensor_slices((x_val, -(x_val @ w))).batch(8)
def squared_error(y, p):  # a plain function, as the segmentation losses are: same fingerprint in every process
    return keras.ops.mean((y - p) ** 2, axis=-1)

model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, kernel_initializer="zeros")])
model.compile(keras.optimizers.Adam(lr), squared_error)
schedule = Schedule(**{SCHEDULE}, learning_rate=lr)
with job("toy", os.path.join(out, "job.log"), 1):
    fit(model, train, val, schedule, work, os.path.join(out, "model.keras"), os.path.join(out, "history.csv"))
""".replace("{SCHEDULE}", repr({k: v for k, v in SCHEDULE.items() if k != "learning_rate"}))


def run_job(
    tmp_path: Path, name: str, kill_epoch: int = -1, work: Path | None = None, lr: float = SCHEDULE["learning_rate"]
) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """Train the toy model in a fresh Python process; return the process, its work folder and output folder."""
    script = tmp_path / "job.py"
    script.write_text(JOB)
    out = tmp_path / name
    out.mkdir(exist_ok=True)
    work = work or out / "work"
    proc = subprocess.run(
        [sys.executable, str(script), str(work), str(out), str(kill_epoch), str(lr)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""},
    )
    return proc, work, out


def weights(path: Path) -> list[np.ndarray]:
    return keras.saving.load_model(path, compile=False).get_weights()


def test_a_job_killed_mid_epoch_resumes_to_the_uninterrupted_result(tmp_path):
    reference, _, ref_out = run_job(tmp_path, "reference")
    assert reference.returncode == 0, reference.stderr[-3000:]

    killed, work, out = run_job(tmp_path, "resumed", kill_epoch=KILL_EPOCH)
    assert killed.returncode == -signal.SIGKILL
    assert not (out / "model.keras").exists() and not (out / "history.csv").exists()
    state = json.loads((work / STATE).read_text())
    assert state["epoch"] == KILL_EPOCH  # the epochs before the kill were committed, the running one was not
    assert pd.read_csv(work / "history.csv")["epoch"].tolist() == list(range(KILL_EPOCH))
    # what a kill during the next commit leaves behind: files that state.json does not name
    (work / f"backup-{KILL_EPOCH + 1}.weights.h5").write_bytes(b"\x89HDF\r\n half-written")
    (work / f"best-{KILL_EPOCH}.keras").write_bytes(b"PK half-written")

    resumed, _, _ = run_job(tmp_path, "resumed", work=work)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = (out / "job.log").read_text()
    assert f"resuming from the backup in {work} after epoch {KILL_EPOCH} of {EPOCHS}" in log
    assert not work.exists()

    history, expected = pd.read_csv(out / "history.csv"), pd.read_csv(ref_out / "history.csv")
    assert history["epoch"].tolist() == list(range(EPOCHS))
    # the learning rate halves at the same epochs as without the kill (counters restored), and the
    # reductions do happen both before and after the restart
    assert history["learning_rate"].tolist() == expected["learning_rate"].tolist()
    assert history["learning_rate"].nunique() >= 3
    pd.testing.assert_frame_equal(history, expected)
    # the kept model is the best one, from before the restart, identical to the uninterrupted run's
    assert history["val_loss"].idxmin() == 0
    for got, want in zip(weights(out / "model.keras"), weights(ref_out / "model.keras"), strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_backup_of_other_settings_is_not_resumed(tmp_path):
    killed, work, out = run_job(tmp_path, "other", kill_epoch=KILL_EPOCH)
    assert killed.returncode == -signal.SIGKILL and (work / STATE).is_file()

    proc, _, _ = run_job(tmp_path, "other", work=work, lr=0.01)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (out / "job.log").read_text()
    assert f"not resuming: the backup in {work} was made with other settings" in log
    assert "resuming from the backup" not in log
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == list(range(EPOCHS))
    assert history["learning_rate"].iloc[0] == pytest.approx(0.01)


def _toy(lr: float = 0.05) -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, kernel_initializer="zeros")])
    model.compile(keras.optimizers.Adam(lr), "mse")
    return model


def _data(val_target: float) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    x = np.linspace(-1, 1, 48, dtype="float32").reshape(16, 3)
    y = np.stack([x.sum(1), x[:, 0]], axis=1)
    val_y = np.full_like(y, val_target)
    return (
        tf.data.Dataset.from_tensor_slices((x, y)).batch(4),
        tf.data.Dataset.from_tensor_slices((x, val_y)).batch(4),
    )


def test_fit_keeps_the_lowest_validation_loss_and_cleans_up(tmp_path):
    train, val = _data(0.0)
    model = _toy()
    table = fit(
        model,
        train,
        val,
        Schedule(**dict(SCHEDULE, epochs=4)),
        tmp_path / "work",
        tmp_path / "out/model.keras",
        tmp_path / "out/history.csv",
        verbose=0,
    )
    assert not (tmp_path / "work").exists()
    assert table["epoch"].tolist() == [0, 1, 2, 3]
    saved = pd.read_csv(tmp_path / "out/history.csv")
    pd.testing.assert_frame_equal(saved, table, check_dtype=False)
    kept = keras.saving.load_model(tmp_path / "out/model.keras")
    assert kept.evaluate(val, verbose=0) == pytest.approx(table["val_loss"].min(), rel=1e-5)


def _tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) of every scalar in the TensorBoard event files under ``folder``, by tag."""
    found: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(folder.rglob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                found.setdefault(f"{events.parent.name}/{value.tag}", []).append((event.step, number))
    return found


def test_fit_writes_tensorboard_curves_and_a_fresh_start_replaces_older_ones(tmp_path):
    train, val = _data(0.0)
    board = tmp_path / "out/tensorboard"
    board.mkdir(parents=True)
    (board / "events.out.tfevents.0.old").write_bytes(b"")  # an older run's file: gone after a fresh start
    table = fit(
        _toy(),
        train,
        val,
        Schedule(**dict(SCHEDULE, epochs=3)),
        tmp_path / "work",
        tmp_path / "out/model.keras",
        tmp_path / "out/history.csv",
        verbose=0,
        tensorboard_dir=board,
    )
    assert not (board / "events.out.tfevents.0.old").exists()
    scalars = _tensorboard_scalars(board)
    assert [step for step, _ in scalars["train/epoch_loss"]] == [0, 1, 2]
    assert [v for _, v in scalars["train/epoch_loss"]] == pytest.approx(table["loss"].tolist(), rel=1e-5)
    assert [v for _, v in scalars["validation/epoch_loss"]] == pytest.approx(table["val_loss"].tolist(), rel=1e-5)
    assert [v for _, v in scalars["train/epoch_learning_rate"]] == pytest.approx(table["learning_rate"].tolist())


def test_no_finite_validation_loss_keeps_the_last_model(tmp_path):
    train, val = _data(np.nan)
    model = _toy()
    table = fit(
        model,
        train,
        val,
        Schedule(**dict(SCHEDULE, epochs=2)),
        tmp_path / "work",
        tmp_path / "model.keras",
        tmp_path / "history.csv",
        verbose=0,
    )
    assert len(table) == 2 and table["val_loss"].isna().all()
    for got, want in zip(weights(tmp_path / "model.keras"), model.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_fingerprint_changes_with_what_makes_a_backup_unusable():
    base = fingerprint(_toy(), Schedule(**dict(SCHEDULE, epochs=4)), None, "")
    assert fingerprint(_toy(), Schedule(**dict(SCHEDULE, epochs=4)), None, "") == base
    assert fingerprint(_toy(0.01), Schedule(**dict(SCHEDULE, epochs=4)), None, "") != base
    assert fingerprint(_toy(), Schedule(**dict(SCHEDULE, epochs=5)), None, "") != base
    assert fingerprint(_toy(), Schedule(**dict(SCHEDULE, epochs=4)), {0: 1.0, 1: 2.0}, "") != base
    assert fingerprint(_toy(), Schedule(**dict(SCHEDULE, epochs=4)), None, "data v2") != base


def test_provenance_record_fingerprints_each_input_and_names_versions_and_device(tmp_path):
    a, b = tmp_path / "images.npy", tmp_path / "folds.csv"
    a.write_bytes(b"\x93NUMPY" + bytes(range(256)) * 5000)
    b.write_text("image,fold\nISIC_0000000,1\n")
    record = provenance.record({"epochs": 3}, [a, b], "CPU (1 threads)", fold=1)
    assert record["settings"] == {"epochs": 3} and record["fold"] == 1
    assert record["device"] == "CPU (1 threads)"
    assert record["input_sha256"] == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in (a, b)}
    assert record["data_sha256"] == hashlib.sha256(a.read_bytes() + b.read_bytes()).hexdigest()
    versions = record["versions"]
    assert versions["tensorflow"] == tf.__version__ and versions["keras"] == keras.__version__
    assert versions["numpy"] == np.__version__
    import lesionflow

    assert versions["lesionflow"] == lesionflow.__version__
    provenance.write_json(tmp_path / "p.json", record)
    assert json.loads((tmp_path / "p.json").read_text()) == record


# An augmented, shuffled stream into a model with batch normalization and dropout: everything that draws
# random numbers or keeps statistics during training.
AUG_EPOCHS, AUG_KILL, AUG_STEPS = 5, 2, 6


def _augmented_run() -> tuple[keras.Model, object, tf.data.Dataset]:
    """A fresh model (seeded as a job seeds it) and its training batches as a function of the epoch."""
    from functools import partial

    from lesionflow.augment import Augmentation, make_dataset

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8, 3), dtype=np.uint8)
    labels = np.eye(2, dtype=np.float32)[(images.mean(axis=(1, 2, 3)) > 127).astype(int)]
    common = dict(images=images, targets=labels, batch_size=4, seed=5)
    train = partial(
        make_dataset,
        indices=np.arange(24),
        training=True,
        augmentation=Augmentation(flip=True, rotate90=True, shift=0.1, rotation_range=0.0, fill="reflect"),
        **common,
    )
    val = make_dataset(indices=np.arange(24), training=False, **common)
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.Adam(0.05), "categorical_crossentropy")
    return model, train, val


def _killed_in_epoch(train, epoch: int, step: int):
    """``train`` whose batches fail at ``step`` of ``epoch``, as a job killed there stops."""
    batches_seen = []

    def count(images):
        batches_seen.append(1)
        if len(batches_seen) == epoch * AUG_STEPS + step:
            raise RuntimeError("killed")
        return images

    def guard(images, labels):
        passed = tf.numpy_function(count, [images], tf.float32, stateful=True)
        return tf.ensure_shape(passed, images.shape), labels

    return lambda epoch: train(epoch=epoch).map(guard)


def test_a_resumed_run_sees_the_same_batches_and_random_draws_and_ends_with_the_same_weights(tmp_path):
    schedule = Schedule(**dict(SCHEDULE, epochs=AUG_EPOCHS))
    model, train, val = _augmented_run()
    fit(model, train, val, schedule, tmp_path / "w0", tmp_path / "a.keras", tmp_path / "a.csv", verbose=0)
    uninterrupted = model.get_weights()

    model, train, val = _augmented_run()
    with pytest.raises(tf.errors.OpError, match="killed"):
        fit(
            model,
            _killed_in_epoch(train, AUG_KILL, 3),
            val,
            schedule,
            tmp_path / "w1",
            tmp_path / "b.keras",
            tmp_path / "b.csv",
            verbose=0,
        )
    state = json.loads((tmp_path / "w1" / STATE).read_text())
    assert state["epoch"] == AUG_KILL
    assert state["seed_states"] and state["seed_states"][0][1] == AUG_KILL * AUG_STEPS  # dropout's draws so far

    model, train, val = _augmented_run()  # a fresh model and fresh datasets, as in a new process
    fit(model, train, val, schedule, tmp_path / "w1", tmp_path / "b.keras", tmp_path / "b.csv", verbose=0)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b.csv"), pd.read_csv(tmp_path / "a.csv"))
    for got, want in zip(model.get_weights(), uninterrupted, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(weights(tmp_path / "b.keras"), weights(tmp_path / "a.keras"), strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def mixed_float16():
    """Keras' global policy as a job with ``speed.precision: mixed_float16`` sets it; float32 afterwards."""
    keras.config.set_dtype_policy("mixed_float16")
    yield
    keras.config.set_dtype_policy("float32")


def test_under_mixed_float16_a_resumed_run_restores_the_loss_scale_and_ends_with_the_same_weights(
    tmp_path, mixed_float16, caplog
):
    schedule = Schedule(**dict(SCHEDULE, epochs=AUG_EPOCHS))
    model, train, val = _augmented_run()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.layers[1].compute_dtype == "float16"
    fit(model, train, val, schedule, tmp_path / "w0", tmp_path / "a.keras", tmp_path / "a.csv", verbose=0)
    uninterrupted = model.get_weights()
    optimizer_state = [keras.ops.convert_to_numpy(v) for v in model.optimizer.variables]

    model, train, val = _augmented_run()
    with pytest.raises(tf.errors.OpError, match="killed"):
        fit(
            model,
            _killed_in_epoch(train, AUG_KILL, 3),
            val,
            schedule,
            tmp_path / "w1",
            tmp_path / "b.keras",
            tmp_path / "b.csv",
            verbose=0,
        )
    assert json.loads((tmp_path / "w1" / STATE).read_text())["epoch"] == AUG_KILL

    model, train, val = _augmented_run()
    with caplog.at_level("INFO", logger="lesionflow.training"):
        fit(model, train, val, schedule, tmp_path / "w1", tmp_path / "b.keras", tmp_path / "b.csv", verbose=0)
    assert f"after epoch {AUG_KILL} of {AUG_EPOCHS}" in caplog.text  # resumed, not started again
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "b.csv"), pd.read_csv(tmp_path / "a.csv"))
    for got, want in zip(model.get_weights(), uninterrupted, strict=True):
        np.testing.assert_array_equal(got, want)
    # the loss scale and its step counter came back with the backup, as did Adam's moments
    for got, want in zip(model.optimizer.variables, optimizer_state, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(got), want)


def test_a_backup_made_at_another_precision_or_xla_setting_is_not_resumed(mixed_float16):
    schedule = Schedule(**dict(SCHEDULE, epochs=4))
    mixed = fingerprint(_toy(), schedule, None, "")
    keras.config.set_dtype_policy("mixed_bfloat16")
    assert fingerprint(_toy(), schedule, None, "") != mixed
    bfloat16 = fingerprint(_toy(), schedule, None, "")
    keras.config.set_dtype_policy("float32")
    assert fingerprint(_toy(), schedule, None, "") not in (mixed, bfloat16)
    jit = _toy()
    jit.compile(keras.optimizers.Adam(0.05), "mse", jit_compile=True)
    plain = _toy()
    plain.compile(keras.optimizers.Adam(0.05), "mse", jit_compile=False)
    assert fingerprint(jit, schedule, None, "") != fingerprint(plain, schedule, None, "")


def test_an_epoch_of_two_passes_is_two_fresh_passes_and_counts_as_one_epoch():
    from lesionflow.training import _remaining_epochs

    def passes(epoch):  # one pass: its number twice, in two batches
        return tf.data.Dataset.from_tensors(tf.cast(epoch, tf.int64)).repeat(2).batch(1)

    batches, steps = _remaining_epochs(passes, 1, 3, passes=2)
    assert steps == 4  # two passes of two batches per epoch
    assert [int(b[0]) for b in batches.as_numpy_iterator()] == [2, 2, 3, 3, 4, 4, 5, 5]  # epochs 1 and 2
    one, steps = _remaining_epochs(passes, 1, 3, passes=1)
    assert steps == 2 and [int(b[0]) for b in one.as_numpy_iterator()] == [1, 1, 2, 2]
