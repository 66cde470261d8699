"""Child processes of ``benchmarks/run.py`` (each measured in its own process); prints JSON lines.

    python benchmarks/workers.py cache-ours LIST OUT_DIR THREADS      # lesionflow.cache.build_cache
    python benchmarks/workers.py cache-inram LIST OUT_DIR THREADS     # the original: list + np.stack
    python benchmarks/workers.py encoder MODEL ENCODER SIZE N         # training/prediction throughput
    python benchmarks/workers.py encoder MODEL ENCODER SIZE N SPEED   # the same with speed settings (JSON)
    python benchmarks/workers.py ensemble-setup FOLDER SIZE           # a tiny untrained U-Net + ensemble.json
    python benchmarks/workers.py predict-masks ENSEMBLE CACHE OUT     # lesionflow.predictor.write_masks
    python benchmarks/workers.py crop-masks LIST MASKS OUT THREADS    # lesionflow.masking.mask_set

LIST is a text file of image paths, one a line. Peak RSS is this process's VmHWM (see _peak_rss_mb).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def _peak_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM of /proc/self/status.

    Not ``getrusage().ru_maxrss``: Linux carries the parent's RSS at fork/exec into the child's
    ``ru_maxrss``, so a child of a large parent reports at least the parent's size.
    """
    try:
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _emit(record: dict) -> None:
    print(json.dumps(record), flush=True)


def cache_ours(paths: list[str], out: Path, threads: int) -> None:
    from lesionflow.cache import build_cache

    start = time.perf_counter()
    build_cache(
        [Path(p).stem for p in paths],
        paths,
        224,
        out / "images.npy",
        out / "index.csv",
        threads=threads,
        progress=False,
    )
    _emit({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()})


def cache_inram(paths: list[str], out: Path, threads: int) -> None:
    """The original's pattern: every resized image kept in a Python list, then ``np.stack`` and save.

    Decoding/resizing is the same as ours (``read_rgb_resized``) so that only the storage differs.
    """
    from concurrent.futures import ThreadPoolExecutor

    import numpy as np

    from lesionflow.imageio import read_rgb_resized

    start = time.perf_counter()
    with ThreadPoolExecutor(max(1, threads)) as pool:
        arrays = [a for a, _ in pool.map(lambda p: read_rgb_resized(p, 224), paths)]
    stacked = np.stack(arrays)
    np.save(out / "images.npy", stacked)
    _emit({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb()})


def default_speed() -> dict:
    """The speed section's defaults, from the workflow's config schema (the encoders row runs with them)."""
    import yaml

    schema = yaml.safe_load((Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml").read_text())
    return {key: spec["default"] for key, spec in schema["properties"]["speed"]["properties"].items()}


ENCODER_CASES = [  # (model, encoder)
    ("unet", "mobilenetv3small"),
    ("unet", "efficientnetb0"),
    ("unet", "densenet169"),
    ("classifier", "mobilenetv3small"),
    ("classifier", "efficientnetb0"),
    ("classifier", "densenet201"),
]


def _device_name(backend: str) -> str:
    """The first device of a non-TensorFlow Keras backend, e.g. "gpu NVIDIA H200 (jax)"."""
    if backend == "jax":
        import jax

        first = jax.devices()[0]
        return f"{first.platform} {getattr(first, 'device_kind', '')} (jax)".strip()
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"gpu {torch.cuda.get_device_name(0)} (torch)"
        return "cpu (torch)"
    return f"unknown device ({backend})"


def encoder_case(kind: str, encoder: str, size: int, n: int, speed: dict) -> None:
    """Images/s of one training epoch (after a warm-up step that traces) and one prediction pass.

    Random inputs; weights=None; losses binary/categorical cross-entropy; batch 32 for the U-Net at 224
    (config/isic2018.yaml), else 16; the U-Net decoder of config/isic2018.yaml at 224, of config.yaml below.
    ``speed`` is the config's speed section (precision, xla, deterministic), applied as a training job does.
    The models are backend-neutral Keras 3: with ``KERAS_BACKEND=jax`` (or torch) they are timed on that
    backend, without TensorFlow; there precision and XLA apply as in Keras, and ``deterministic`` (a
    TensorFlow setting) does not.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "tensorflow":
        from lesionflow import device
        from lesionflow.settings import Speed

        used = device.configure(threads=len(os.sched_getaffinity(0)), seed=0, speed=Speed.from_config(speed))
        import keras
    else:
        import keras

        keras.utils.set_random_seed(0)
        keras.mixed_precision.set_global_policy(speed["precision"])
        used = _device_name(backend)

    from lesionflow.models import build_classifier, build_unet

    rng = np.random.default_rng(0)
    batch = 32 if (kind == "unet" and size >= 224) else 16
    x = rng.uniform(0, 255, (n, size, size, 3)).astype(np.float32)
    if kind == "unet":
        model = build_unet(
            encoder,
            size,
            weights=None,
            decoder_filters=(256, 128, 64, 32, 16) if size >= 224 else (64, 48, 32, 24, 16),
            decoder="bilinear",
        )
        y = (rng.random((n, size, size, 1)) > 0.5).astype(np.float32)
        loss = "binary_crossentropy"
    else:
        model = build_classifier(encoder, size, n_classes=7, weights=None, dense_layers=(128,), l2=1e-3, dropout=0.0)
        y = np.eye(7, dtype=np.float32)[rng.integers(0, 7, n)]
        loss = "categorical_crossentropy"
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, jit_compile=speed["xla"])
    t0 = time.perf_counter()
    model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0, shuffle=False)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=False)
    train = time.perf_counter() - t0
    model.predict(x[:batch], batch_size=batch, verbose=0)
    t0 = time.perf_counter()
    model.predict(x, batch_size=batch, verbose=0)
    predict = time.perf_counter() - t0
    _emit(
        {
            "model": kind,
            "encoder": encoder,
            "size": size,
            "batch": batch,
            "n": n,
            "params_m": model.count_params() / 1e6,
            "first_step_s": first,
            "train_img_s": n / train,
            "predict_img_s": n / predict,
            "peak_rss_mb": _peak_rss_mb(),
            "device": used,
            "backend": keras.backend.backend(),
            **speed,
        }
    )


def ensemble_setup(folder: Path, size: int) -> None:
    """A one-fold segmentation ensemble of an untrained mobilenetv3small U-Net (small decoder), TTA off."""
    from lesionflow import device
    from lesionflow.settings import Speed

    device.configure(threads=len(os.sched_getaffinity(0)), seed=0, speed=Speed("float32", False, False))
    from lesionflow.models import build_unet
    from lesionflow.postprocess import PostProcess
    from lesionflow.predictor import describe_ensemble

    model_path = folder / "fold_0" / "model.keras"
    model_path.parent.mkdir(parents=True, exist_ok=True)
    build_unet("mobilenetv3small", size, weights=None, decoder_filters=(32, 16, 16, 8, 8), decoder="bilinear").save(
        model_path
    )
    post = PostProcess(sigma=2.0, threshold=0.5, largest_component=True, fill_holes=True, resize="probability")
    describe_ensemble(
        "segmentation",
        [model_path],
        folder / "ensemble.json",
        image_size=size,
        encoder="mobilenetv3small",
        tta=False,
        postprocess=post,
    )
    _emit({"ensemble": str(folder / "ensemble.json"), "seconds": 0.0, "peak_rss_mb": _peak_rss_mb()})


def predict_masks(ensemble: Path, cache_dir: Path, out: Path) -> None:
    """What the predict_masks job does: load the ensemble, predict every cached image, write full-size masks."""
    from lesionflow import device, isic
    from lesionflow.cache import load_cache
    from lesionflow.settings import Speed

    device.configure(threads=len(os.sched_getaffinity(0)), seed=0, speed=Speed("float32", False, False))
    from lesionflow.predictor import Predictor, write_masks

    start = time.perf_counter()
    cache = load_cache(cache_dir / "images.npy", cache_dir / "index.csv")
    count = write_masks(
        Predictor.load(ensemble), cache.images, cache.index, out, names=[isic.mask_name(i) for i in cache.ids]
    )
    _emit({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), "images": count})


def crop_masks(paths: list[str], masks: Path, out: Path, threads: int) -> None:
    """What the mask_images job does: lesion crops at full size and the classifier's 224² cache."""
    from lesionflow.masking import mask_set

    start = time.perf_counter()
    ids = [Path(p).stem for p in paths]
    mask_set(
        ids,
        [Path(p) for p in paths],
        masks,
        out / "crops",
        224,
        out / "images.npy",
        out / "index.csv",
        out / "empty.csv",
        margin=0.1,
        background="zero",
        threads=threads,
    )
    _emit({"seconds": time.perf_counter() - start, "peak_rss_mb": _peak_rss_mb(), "images": len(ids)})


def main(argv: list[str]) -> int:
    cmd = argv[0]
    if cmd in ("cache-ours", "cache-inram"):
        paths = Path(argv[1]).read_text().split("\n")
        paths = [p for p in paths if p]
        out = Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        (cache_ours if cmd == "cache-ours" else cache_inram)(paths, out, int(argv[3]))
    elif cmd == "encoder":
        speed = json.loads(argv[5]) if len(argv) > 5 else default_speed()
        encoder_case(argv[1], argv[2], int(argv[3]), int(argv[4]), speed)
    elif cmd == "ensemble-setup":
        ensemble_setup(Path(argv[1]), int(argv[2]))
    elif cmd == "predict-masks":
        predict_masks(Path(argv[1]), Path(argv[2]), Path(argv[3]))
    elif cmd == "crop-masks":
        paths = [p for p in Path(argv[1]).read_text().split("\n") if p]
        crop_masks(paths, Path(argv[2]), Path(argv[3]), int(argv[4]))
    else:
        raise SystemExit(f"unknown command {cmd!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
