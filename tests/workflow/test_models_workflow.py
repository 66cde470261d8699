"""The speed settings in the workflow (the session's demo run): they retrain both stages but not the caches, and
a demo training job runs under mixed_float16."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from lesionflow.models import load_model

# ------------------------------------------------------------------ in the workflow (the session's demo run)
# The CI config keeps float32: mixed precision is emulated on a CPU and made the test run about a third
# slower (README "Speed settings"), so one training job of the finished demo run is redone under mixed_float16.


@pytest.mark.workflow
@pytest.mark.parametrize(
    "speed", ["{precision: mixed_bfloat16}", "{deterministic: false}", "{xla: true, deterministic: false}"]
)
def test_speed_settings_retrain_both_stages_but_not_the_caches(demo_run, speed, tmp_path):
    from support.workflow import planned_jobs

    overrides = tmp_path / "speed.yaml"  # a file: --config would pass true and false as text
    overrides.write_text(f"speed: {speed}\n")
    jobs = planned_jobs(demo_run, "--configfile", ".test/config.yaml", str(overrides), config=None)
    assert sum(job.rule == "train_segmentation" for job in jobs) == 2
    assert sum(job.rule == "train_classifier" for job in jobs) == 2
    assert not {job.rule for job in jobs} & {"demo_data", "cache_segmentation_training", "cache_task3_set"}


@pytest.mark.workflow
def test_a_demo_training_job_runs_under_mixed_float16(demo_run, tmp_path):
    from support.workflow import copy_run, snakemake

    run = copy_run(demo_run, tmp_path / "run")
    model = "results/segmentation/fold_0/model.keras"
    snakemake(run, "--cores", "2", "--resources", "gpu=1", "--config", "speed={precision: mixed_float16}", "--", model)
    record = json.loads((run / "results/segmentation/fold_0/provenance.json").read_text())
    assert record["settings"]["speed"] == {"precision": "mixed_float16", "xla": False, "deterministic": True}
    assert record["device"].endswith("deterministic ops, mixed_float16)")
    assert "Epoch 4/4" in (run / "results/logs/segmentation/train_fold_0.log").read_text()
    history = pd.read_csv(run / "results/segmentation/fold_0/history.csv")
    assert np.isfinite(history["loss"]).all()
    trained = load_model(run / model)
    convolutions = [layer for layer in trained.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convolutions[0].dtype_policy.name == "mixed_float16" and trained.output.dtype == "float32"
