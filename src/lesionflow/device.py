"""TensorFlow device set-up inside a job: which GPU it claims, threads, seeds, GPU memory growth, and the
speed settings (precision policy, deterministic ops)."""

from __future__ import annotations

import logging
import os
import platform
import sys
from typing import Any

from . import gpus
from .errors import InputError
from .settings import Speed

log = logging.getLogger(__name__)


def cpu_model() -> str:
    """The processor's model name from ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def configure(
    *,
    threads: int,
    seed: int,
    job: str = "lesionflow",
    config: dict[str, Any] | None = None,
    speed: Speed | None = None,
) -> str:
    """Claim this job's GPU, then start TensorFlow on it: threads, seeds, memory growth, precision policy and
    deterministic ops. Return a description of the device used.

    ``config`` is the workflow config (``snakemake.config``, schema defaults filled in): its ``gpus``
    (which devices jobs may claim), ``gpu_wait_minutes`` and ``require_gpu``. They are read here rather
    than passed as rule params, so changing them reruns nothing. Call this before anything imports
    TensorFlow: the claim (:func:`lesionflow.gpus.claim`) sets ``CUDA_VISIBLE_DEVICES`` to the one device
    the job holds until it exits. Without a config (code outside the workflow, such as the benchmarks)
    nothing is claimed or required: TensorFlow uses the devices it sees. With no GPU visible to TensorFlow
    the job runs on the CPU after one warning line, or, with ``require_gpu``, stops with one line
    (:class:`InputError`) before it reads anything. The description names the device, the threads,
    whether TensorFlow's deterministic ops were on (same config, same device: same weights) and a
    mixed-precision policy.

    ``speed``: the :class:`~lesionflow.settings.Speed` settings (training jobs pass their rule's params, so
    that a change retrains); without it, the config's ``speed`` section. Its ``precision`` becomes Keras'
    global dtype policy, so set it before any model is built (a loaded model keeps the policy it was trained with), and
    ``deterministic`` turns on TensorFlow's deterministic ops. With neither, TensorFlow's own defaults stay:
    float32, non-deterministic ops. ``xla`` is applied where a model is compiled for training.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if config is not None:
        if "tensorflow" in sys.modules:
            raise RuntimeError(f"{job}: TensorFlow was imported before the GPU claim; import it after configure()")
        gpus.claim(job, configured=config["gpus"], wait_minutes=config["gpu_wait_minutes"])
    import keras
    import tensorflow as tf

    visible_gpus = tf.config.list_physical_devices("GPU")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    if not visible_gpus and config is not None and config["require_gpu"]:
        raise InputError(
            f"{job}: no GPU visible to TensorFlow (CUDA_VISIBLE_DEVICES={visible}) and require_gpu is true; "
            f'check nvidia-smi and that the CUDA build is installed (pip install -e ".[gpu]"), '
            f"or set require_gpu: false to run on the CPU"
        )
    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    for gpu in visible_gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    keras.utils.set_random_seed(seed)
    if speed is None and config is not None:
        speed = Speed.from_config(config["speed"])
    mode = set_speed(speed) if speed is not None else ""
    if visible_gpus:
        details = tf.config.experimental.get_device_details(visible_gpus[0])
        device = f"GPU {details.get('device_name', visible_gpus[0].name)} (CUDA_VISIBLE_DEVICES={visible}{mode})"
        log.info("using %s", device)
    else:
        device = " ".join(filter(None, ["CPU", cpu_model(), f"({threads} threads{mode})"]))
        log.warning("no GPU visible to TensorFlow (CUDA_VISIBLE_DEVICES=%s): running on the %s", visible, device)
    return device


def set_speed(speed: Speed) -> str:
    """Apply the ``speed`` settings that belong to the process: Keras' global dtype policy (``precision``)
    and TensorFlow's deterministic ops. Return them for the device description (", deterministic ops,
    mixed_float16"); float32 and non-deterministic ops are not named."""
    import keras
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(speed.precision)
    if speed.deterministic:
        tf.config.experimental.enable_op_determinism()
    named = [
        "deterministic ops" if speed.deterministic else "",
        "" if speed.precision == "float32" else speed.precision,
    ]
    return "".join(f", {name}" for name in named if name)
