"""TensorFlow device set-up inside a job: threads, seeds, GPU memory growth, and which device is used."""

from __future__ import annotations

import logging
import os
import platform

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


def configure(threads: int, seed: int, deterministic: bool = True) -> str:
    """Pin thread counts and seeds, enable GPU memory growth; return a description of the device used.

    The GPU is the one the job was given (``CUDA_VISIBLE_DEVICES`` from SLURM or the user); with none,
    training runs on the CPU after one warning line. The description names the device, the threads, and
    whether TensorFlow's deterministic ops were on (same config, same device: same weights).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(max(1, threads))
    tf.config.threading.set_inter_op_parallelism_threads(max(1, min(threads, 2)))
    gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        tf.config.experimental.set_memory_growth(gpu, True)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    mode = ", deterministic ops" if deterministic else ""
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"GPU {details.get('device_name', gpus[0].name)} (CUDA_VISIBLE_DEVICES={visible}{mode})"
        log.info("using %s", device)
    else:
        device = " ".join(filter(None, ["CPU", cpu_model(), f"({threads} threads{mode})"]))
        log.warning("no GPU visible to TensorFlow (CUDA_VISIBLE_DEVICES=%s): running on the %s", visible, device)
    return device
