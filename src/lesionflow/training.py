"""Fitting a network with resume after interruption; the best-validation-loss model is what is kept.

Work files live in ``work_dir`` (not a workflow output, so a killed job leaves them for the rerun):
``backup/`` (BackupAndRestore), ``history.csv`` (CSVLogger, appended across resumes) and
``best.keras``. On success the best model and the history are moved to their final paths.
"""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    epochs: int
    learning_rate: float
    min_learning_rate: float = 1e-7
    lr_patience: int = 3
    lr_factor: float = 0.1

    @classmethod
    def from_settings(cls, settings: dict) -> "Schedule":
        return cls(**{k: settings[k] for k in cls.__dataclass_fields__ if k in settings})


def _best_so_far(history: Path) -> float:
    """Lowest validation loss already logged (a resumed ModelCheckpoint forgets it)."""
    if history.is_file():
        try:
            table = pd.read_csv(history)
        except pd.errors.EmptyDataError:
            return math.inf
        if "val_loss" in table and len(table):
            return float(table["val_loss"].min())
    return math.inf


def fit(model: keras.Model, train, validation, schedule: Schedule, work_dir: str | Path,
        model_out: str | Path, history_out: str | Path, class_weight: dict | None = None,
        verbose: int = 2) -> pd.DataFrame:
    """Train ``model`` (already compiled), resuming from ``work_dir`` if a previous run was killed."""
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    history = work / "history.csv"
    best = work / "best.keras"
    callbacks = [
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=schedule.lr_factor,
                                          patience=schedule.lr_patience, min_lr=schedule.min_learning_rate,
                                          verbose=1),
        keras.callbacks.CSVLogger(str(history), append=True),
        keras.callbacks.ModelCheckpoint(str(best), monitor="val_loss", save_best_only=True,
                                        initial_value_threshold=_best_so_far(history), verbose=0),
        # After ReduceLROnPlateau, so that a resumed run restores the reduced learning rate.
        keras.callbacks.BackupAndRestore(str(work / "backup")),
    ]
    if (work / "backup").exists():
        log.info("resuming from the backup in %s", work / "backup")
    model.fit(train, validation_data=validation, epochs=schedule.epochs, callbacks=callbacks, shuffle=False,
              class_weight=class_weight, verbose=verbose)
    if not best.is_file():  # validation loss never finite: keep the last weights
        model.save(best)
    # An epoch logged but killed before its backup is run again: keep its last row.
    table = pd.read_csv(history).drop_duplicates("epoch", keep="last").reset_index(drop=True)
    Path(model_out).parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(best), model_out)
    table.to_csv(history_out, index=False)
    shutil.rmtree(work, ignore_errors=True)
    log.info("kept the model of epoch %d (val_loss %.4f)", int(table["val_loss"].idxmin()) + 1,
             float(table["val_loss"].min()))
    return table
