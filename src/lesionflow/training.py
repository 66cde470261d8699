"""Fitting a network so that a killed job resumes where it stopped; the best-validation-loss model is kept.

Work files live in ``work_dir`` (not a workflow output, so a killed job leaves them for the rerun):

* ``state.json``: the training state after the last finished epoch: the number of epochs done, their
  history rows, the learning-rate schedule's counters, the states of the model's random seed generators
  (dropout), the names of the backup and of the best model that belong to it, and a fingerprint of the
  model, optimizer and schedule (a backup made with other settings is never resumed);
* ``backup-<epochs done>.weights.h5``: weights and optimizer state (learning rate included);
* ``best-<epoch>.keras``: the model with the lowest validation loss so far;
* ``history.csv``: the rows of ``state.json`` as a table, to watch progress.

Every epoch writes its new files first and then replaces ``state.json`` in one rename: whenever the job is
killed, the rerun finds a consistent state, runs again the epoch that was interrupted, and deletes the
files ``state.json`` does not name. On success the best model and the history are written to their final
paths (atomically) and the work folder is removed.

Given the training batches as a function of the epoch (:func:`lesionflow.augment.make_dataset` with
``epoch=``), a resumed run feeds epoch k the batches an uninterrupted run would have, and restores every
other random state too, so that it ends with the same weights as a run never killed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from .diskspace import require_free
from .imageio import atomic_path
from .provenance import write_json
from .settings import Schedule

log = logging.getLogger(__name__)

STATE = "state.json"
HISTORY = "history.csv"


class _Plateau(keras.callbacks.ReduceLROnPlateau):
    """ReduceLROnPlateau whose counters (best, wait, cooldown) can be restored after a resume."""

    def __init__(self, restored: dict | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.restored = restored

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.restored:
            self.best = self.restored["best"]
            self.wait = int(self.restored["wait"])
            self.cooldown_counter = int(self.restored["cooldown_counter"])

    def counters(self) -> dict:
        return {
            "best": None if self.best is None else float(self.best),
            "wait": int(self.wait),
            "cooldown_counter": int(self.cooldown_counter),
        }


class _Commit(keras.callbacks.Callback):
    """After each epoch: save the backup (and a new best model), then commit ``state.json`` in one rename."""

    def __init__(self, work: Path, state: dict, plateau: _Plateau) -> None:
        super().__init__()
        self.work, self.state, self.plateau = work, state, plateau

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": int(epoch), **{k: float(v) for k, v in sorted((logs or {}).items())}}
        state = dict(
            self.state,
            history=[*self.state["history"], row],
            epoch=epoch + 1,
            plateau=self.plateau.counters(),
            seed_states=_seed_states(self.model),
        )
        val_loss = row.get("val_loss", math.nan)
        best = state["best"]
        if math.isfinite(val_loss) and (best is None or val_loss < best["val_loss"]):
            best = {"epoch": int(epoch), "val_loss": val_loss, "file": f"best-{epoch}.keras"}
            self.model.save(self.work / best["file"])
            state["best"] = best
        state["backup"] = f"backup-{epoch + 1}.weights.h5"
        self.model.save_weights(self.work / state["backup"])
        write_json(self.work / STATE, state)  # the commit
        _write_history(self.work / HISTORY, state["history"])
        _remove_unnamed(self.work, state)
        self.state = state


def _write_history(path: Path, rows: list[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def _remove_unnamed(work: Path, state: dict | None) -> None:
    """Delete what ``state`` does not name: files of an epoch that never committed, older backups."""
    keep = {STATE, HISTORY, *_named(state)} if state else set()
    for path in work.iterdir():
        if path.name not in keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def _named(state: dict) -> list[str]:
    """The files a committed state needs: its backup and, once there is one, its best model."""
    return [name for name in (state["backup"], state["best"] and state["best"]["file"]) if name]


def _seed_state_variables(model: keras.Model) -> list[keras.Variable]:
    """The model's state beyond its weights: the states of its random seed generators (dropout), in order.

    ``save_weights`` leaves them out, so a resumed run would draw its first epoch's dropout masks again.
    Their names are numbered per process (``seed_generator_3``), so they are matched by position.
    """
    weights = {id(w) for w in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def _seed_states(model: keras.Model) -> list[list[int]]:
    """Where each of the model's random seed generators stands now, to restore after a resume."""
    return [keras.ops.convert_to_numpy(v).tolist() for v in _seed_state_variables(model)]


def _describe_loss(loss: Any) -> Any:
    """A loss the same way in every process: a Loss object's class and config, a function's qualified name."""
    if hasattr(loss, "get_config"):
        return [type(loss).__name__, loss.get_config()]
    if callable(loss) and hasattr(loss, "__qualname__"):
        return f"{loss.__module__}.{loss.__qualname__}"
    return loss if isinstance(loss, (str, type(None))) else type(loss).__name__


def _without_names(config: Any) -> Any:
    """An optimizer's config without its names, which are numbered per process (``adam_1``), also those of
    an optimizer inside another (mixed_float16's LossScaleOptimizer wraps the Adam optimizer)."""
    if isinstance(config, dict):
        return {k: _without_names(v) for k, v in config.items() if k != "name"}
    return config


def fingerprint(model: keras.Model, schedule: Schedule, class_weight: dict | None, key: str) -> str:
    """What a backup must match to be resumed: weight shapes, the layers' dtype policies (mixed precision) and
    XLA, optimizer (loss scaling included) and loss settings, schedule, ``key``."""
    optimizer = _without_names(model.optimizer.get_config())
    described = {
        "weights": [[w.path.split("/")[-1], list(w.shape), str(w.dtype)] for w in model.weights],
        "dtype_policies": [layer.dtype_policy.name for layer in model.layers],
        "jit_compile": bool(model.jit_compile),
        "optimizer": [type(model.optimizer).__name__, optimizer],
        "loss": _describe_loss(model.loss),
        "schedule": asdict(schedule),
        "class_weight": None if class_weight is None else {str(k): float(v) for k, v in class_weight.items()},
        "key": key,
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _restore(model: keras.Model, work: Path, wanted: str) -> dict | None:
    """Load the committed state of ``work`` into ``model``; None (and a clean folder) when there is none."""
    state_path = work / STATE
    state = None
    if state_path.is_file():
        try:
            state = json.loads(state_path.read_text())
        except ValueError as exc:
            log.warning("not resuming: %s is unreadable (%s)", state_path, exc)
    if state is not None and state.get("fingerprint") != wanted:
        log.warning("not resuming: the backup in %s was made with other settings", work)
        state = None
    if state is not None and not all((work / name).is_file() for name in _named(state)):
        log.warning("not resuming: files named by %s are missing", state_path)
        state = None
    if state is not None:
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(work / state["backup"])
        variables, saved = _seed_state_variables(model), state.get("seed_states") or []
        if len(saved) == len(variables):
            for variable, value in zip(variables, saved):
                variable.assign(np.asarray(value, dtype=variable.dtype))
        else:
            log.warning(
                "%s holds %d random seed states for %d seed generators: dropout restarts its sequence",
                state_path,
                len(saved),
                len(variables),
            )
        _write_history(work / HISTORY, state["history"])  # a kill may have come between commit and view
    _remove_unnamed(work, state)
    return state


def _remaining_epochs(
    train: Callable[..., tf.data.Dataset], first: int, stop: int, passes: int
) -> tuple[tf.data.Dataset, int]:
    """Epochs ``first``…``stop - 1`` back to back, and the number of batches per epoch. Epoch e is ``passes``
    passes over the data, ``train(epoch=e·passes + p)`` for p = 0…passes-1: each shuffled and augmented afresh,
    and still a pure function of the epoch."""
    steps = int(train(epoch=first * passes).cardinality())
    if steps <= 0:
        raise ValueError(f"the training batches of one epoch must be a known, positive number (got {steps})")

    def epoch_batches(epoch):
        batches = train(epoch=epoch * passes)
        for extra in range(1, passes):
            batches = batches.concatenate(train(epoch=epoch * passes + extra))
        return batches

    epochs = tf.data.Dataset.range(first, stop).flat_map(epoch_batches)
    return epochs.prefetch(tf.data.AUTOTUNE), steps * passes


def checkpoint_bytes(model: keras.Model) -> int:
    """Roughly the most disk space training ``model`` takes at once: five copies (two backups, two best
    models while the next is written, the final model) of the weights with an optimizer state of twice their
    size (Adam's two moments)."""
    weights = sum(math.prod(w.shape) * np.dtype(w.dtype).itemsize for w in model.weights)
    return 5 * 3 * weights


def fit(
    model: keras.Model,
    train: Callable[..., tf.data.Dataset] | tf.data.Dataset,
    validation,
    schedule: Schedule,
    work_dir: str | Path,
    model_out: str | Path,
    history_out: str | Path,
    class_weight: dict | None = None,
    verbose: int = 2,
    key: str = "",
    tensorboard_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Train ``model`` (already compiled) for ``schedule.epochs`` epochs, resuming from ``work_dir`` if a
    previous run of the same settings was killed; write the best model and the history; return the history.

    ``train`` is a function of ``epoch=`` (an int64 scalar tensor) giving that epoch's batches, such as
    ``functools.partial(make_dataset, …, training=True)``: a resumed run then sees the batches of an
    uninterrupted one. A ``tf.data.Dataset`` is taken too, one pass per epoch, and restarts its random
    sequence on a resume. ``key`` names what else a backup must match to be resumed (e.g. a fingerprint of
    the training data). With ``tensorboard_dir``, each epoch's losses, metrics and learning rate are also
    written there as TensorBoard logs (``train/`` and ``validation/``); a fresh start empties it, a resumed
    run adds to it.
    """
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    require_free(work, needed=checkpoint_bytes(model), what="this fold's checkpoints (backups, best and final model)")
    wanted = fingerprint(model, schedule, class_weight, key)
    state = _restore(model, work, wanted)
    if state is None:
        state = {
            "fingerprint": wanted,
            "epoch": 0,
            "history": [],
            "best": None,
            "backup": None,
            "plateau": None,
            "seed_states": None,
        }
    else:
        log.info(
            "resuming from the backup in %s after epoch %d of %d (learning rate %.3g)",
            work,
            state["epoch"],
            schedule.epochs,
            float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
        )
    plateau = _Plateau(
        state["plateau"],
        monitor="val_loss",
        factor=schedule.lr_factor,
        patience=schedule.lr_patience,
        min_lr=schedule.min_learning_rate,
        verbose=1,
    )
    commit = _Commit(work, state, plateau)
    callbacks: list[keras.callbacks.Callback] = [plateau, commit]
    if tensorboard_dir is not None:
        if state["epoch"] == 0:
            shutil.rmtree(tensorboard_dir, ignore_errors=True)  # ours: a fresh start drops an older run's curves
        # first, so that it records the learning rate the epoch used, as the history does
        callbacks.insert(0, keras.callbacks.TensorBoard(log_dir=str(tensorboard_dir), write_graph=False))
    if state["epoch"] < schedule.epochs:
        batches, steps = train, None
        if not isinstance(train, tf.data.Dataset):
            batches, steps = _remaining_epochs(train, state["epoch"], schedule.epochs, schedule.passes_per_epoch)
        model.fit(
            batches,
            validation_data=validation,
            epochs=schedule.epochs,
            initial_epoch=state["epoch"],
            steps_per_epoch=steps,
            callbacks=callbacks,
            shuffle=False,
            class_weight=class_weight,
            verbose=verbose,
        )
    state = commit.state
    table = pd.DataFrame(state["history"])
    if len(table) != schedule.epochs or table["epoch"].tolist() != list(range(schedule.epochs)):
        raise RuntimeError(f"{work}: history has epochs {table['epoch'].tolist()}, expected 0..{schedule.epochs - 1}")
    with atomic_path(model_out) as tmp:
        if state["best"] is None:  # validation loss never finite: keep the last weights
            model.save(work / "last.keras")
            shutil.copyfile(work / "last.keras", tmp)
            log.warning("validation loss was never finite: kept the model of the last epoch")
        else:
            shutil.copyfile(work / state["best"]["file"], tmp)
            log.info(
                "kept the model of epoch %d (val_loss %.4f)", state["best"]["epoch"] + 1, state["best"]["val_loss"]
            )
    _write_history(Path(history_out), state["history"])
    shutil.rmtree(work, ignore_errors=True)
    return table
