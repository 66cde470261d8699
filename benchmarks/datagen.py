"""Benchmark inputs, generated once into ``benchmarks/.data/`` (git-ignored) and reused by later runs.

Each input set lives in its own folder with a ``manifest.json`` written last: a folder whose manifest is
missing or describes another spec is regenerated. Content is deterministic (fixed seeds).

- :func:`resize_set`: ISIC-sized dermoscopy-like JPEGs (600×450 up to 6688×4439, quality 90), drawn with
  the demo generator's renderer (``lesionflow.demo.render``); if it is unavailable, a textured
  stand-in (smooth colour fields, a dark lesion, sensor noise).
- :func:`small_set`: many small JPEGs (e.g. 10,015 of 300×225) derived from a few rendered bases by
  random crops, flips and brightness, so every file differs.
- :func:`plan_layout`: the ISIC 2018 folder layout at full size (10,015 Task 3 training images) with
  tiny 8×8 images, for timing the workflow's DAG planning.
- :func:`predictions`: noisy U-Net-like probability maps for the post-processing benchmark.
"""

from __future__ import annotations

import io
import json
import math
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"

#: ISIC-like image sizes (width, height) and how many of each in the full resize set (64 images).
#: About a quarter are HAM10000/Task 3-sized (600×450); the rest spread over the Task 1 camera sizes.
RESIZE_SIZES: list[tuple[tuple[int, int], int]] = [
    ((600, 450), 16),
    ((1022, 767), 20),
    ((1504, 1129), 6),
    ((2048, 1536), 6),
    ((3008, 2000), 6),
    ((4288, 2848), 4),
    ((6000, 4000), 2),
    ((6688, 4439), 4),
]
#: The --quick subset: how many of each size (16 images, one of the largest).
RESIZE_QUICK: dict[tuple[int, int], int] = {
    (600, 450): 4,
    (1022, 767): 5,
    (1504, 1129): 2,
    (2048, 1536): 2,
    (3008, 2000): 1,
    (4288, 2848): 1,
    (6688, 4439): 1,
}

#: HAM10000 (ISIC 2018 Task 3 training) class counts: 10,015 images.
HAM_COUNTS = {"MEL": 1113, "NV": 6705, "BCC": 514, "AKIEC": 327, "BKL": 1099, "DF": 115, "VASC": 142}


def _complete(folder: Path, spec: dict) -> bool:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text())["spec"] == spec
    except (ValueError, KeyError):
        return False


def _finish(folder: Path, spec: dict, **extra) -> None:
    (folder / "manifest.json").write_text(json.dumps({"spec": spec, **extra}, indent=1))


def _fresh(folder: Path) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder


# --------------------------------------------------------------------------------------------------
# Image content


def _textured(w: int, h: int, seed: int) -> np.ndarray:
    """Stand-in dermoscopy-like image: smooth skin tones, a dark irregular lesion, vignette, noise."""
    rng = np.random.default_rng([seed, 99])
    sw, sh = max(8, w // 8), max(8, h // 8)  # draw small, upsample (as large camera images are soft)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    yy, xx = yy / sh - 0.5, xx / sw - 0.5
    base = np.array([rng.uniform(180, 225), rng.uniform(130, 170), rng.uniform(110, 150)], np.float32)
    shade = 1 + 0.05 * np.sin(rng.uniform(2, 6) * xx + rng.uniform(0, 6)) * np.cos(rng.uniform(2, 6) * yy)
    img = base * shade[..., None]
    theta = np.arctan2(yy, xx)
    r = np.hypot(xx / rng.uniform(0.18, 0.3), yy / rng.uniform(0.15, 0.28))
    r *= 1 + 0.12 * np.sin(3 * theta + rng.uniform(0, 6)) + 0.06 * np.sin(7 * theta + rng.uniform(0, 6))
    lesion = np.clip((1.05 - r) * 8, 0, 1)
    colour = np.array([rng.uniform(60, 120), rng.uniform(35, 70), rng.uniform(25, 55)], np.float32)
    texture = 1 + 0.25 * np.sin(40 * xx + 3 * np.sin(30 * yy)) * np.sin(35 * yy)
    img = img + (colour * texture[..., None] - img) * lesion[..., None]
    vign = np.clip(1.3 - 1.4 * np.hypot(xx, yy), 0.05, 1)
    img = np.clip(img * vign[..., None], 0, 255).astype(np.uint8)
    big = np.asarray(Image.fromarray(img).resize((w, h), Image.Resampling.BICUBIC)).astype(np.int16)
    noise = (rng.standard_normal((h, w, 1), dtype=np.float32) * 2.5).astype(np.int16)
    return np.clip(big + noise, 0, 255).astype(np.uint8)


def render(w: int, h: int, index: int, seed: int = 2018) -> tuple[np.ndarray, str]:
    """A dermoscopy-like RGB image of ``w``×``h``; also says which renderer drew it."""
    try:
        from lesionflow.demo.plan import STREAM_SEG_LESION, PlannedImage
        from lesionflow.demo.render import render_image
        from lesionflow.isic import CLASSES

        item = PlannedImage(
            folder="seg_train_images",
            image_id=f"ISIC_{index:07d}",
            class_name=CLASSES[index % 7],
            size=(w, h),
            lesion_index=index,
            lesion_stream=STREAM_SEG_LESION,
        )
        image, _ = render_image(item, seed)
        if image.shape != (h, w, 3) or image.dtype != np.uint8:
            raise ValueError(f"unexpected demo render {image.shape} {image.dtype}")
        return image, "lesionflow.demo"
    except Exception:  # the demo renderer is missing or changed: use the stand-in
        return _textured(w, h, seed * 100_003 + index), "textured stand-in"


def _jpeg(path: Path, image: np.ndarray) -> None:
    Image.fromarray(image).save(path, format="JPEG", quality=90)


# --------------------------------------------------------------------------------------------------
# Input sets


def resize_set(log: Callable[[str], None] = print) -> tuple[list[Path], list[tuple[int, int]], str]:
    """The full resize set: (paths, (width, height) of each, renderer). Generated once (about a minute)."""
    folder = DATA / "resize"
    spec = {"sizes": [[list(s), n] for s, n in RESIZE_SIZES], "quality": 90, "version": 1}
    sizes = [s for s, n in RESIZE_SIZES for _ in range(n)]
    paths = [folder / f"ISIC_{i:07d}.jpg" for i in range(len(sizes))]
    if not _complete(folder, spec):
        _fresh(folder)
        log(f"generating {len(sizes)} ISIC-sized JPEGs into {folder} (once) …")
        renderers = set()
        for i, ((w, h), path) in enumerate(zip(sizes, paths)):
            image, renderer = render(w, h, i)
            renderers.add(renderer)
            _jpeg(path, image)
        _finish(folder, spec, renderer=", ".join(sorted(renderers)))
    renderer = json.loads((folder / "manifest.json").read_text()).get("renderer", "?")
    return paths, sizes, renderer


def quick_subset(sizes: list[tuple[int, int]]) -> list[int]:
    """Indices of the --quick subset of the resize set."""
    want = dict(RESIZE_QUICK)
    chosen = []
    for i, s in enumerate(sizes):
        if want.get(s, 0) > 0:
            chosen.append(i)
            want[s] -= 1
    return chosen


def small_set(n: int, w: int = 300, h: int = 225, log: Callable[[str], None] = print) -> list[Path]:
    """``n`` distinct small JPEGs (random crops/flips/brightness of 32 rendered 600×450 bases)."""
    folder = DATA / f"small_{n}_{w}x{h}"
    spec = {"n": n, "w": w, "h": h, "quality": 90, "version": 1}
    paths = [folder / f"ISIC_{24306 + i:07d}.jpg" for i in range(n)]
    if _complete(folder, spec):
        return paths
    _fresh(folder)
    log(f"generating {n} JPEGs of {w}×{h} into {folder} (once) …")
    bases = [render(600, 450, 1000 + k)[0] for k in range(32)]

    def make(i: int) -> None:
        rng = np.random.default_rng([7, i])
        base = bases[i % len(bases)]
        cw, ch = int(rng.integers(480, 601)), int(rng.integers(360, 451))
        x0, y0 = int(rng.integers(0, 601 - cw)), int(rng.integers(0, 451 - ch))
        crop = base[y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1]
        img = Image.fromarray(np.ascontiguousarray(crop)).resize((w, h), Image.Resampling.BILINEAR)
        arr = np.clip(np.asarray(img, np.float32) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)
        _jpeg(paths[i], arr)

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(make, range(n)))
    _finish(folder, spec)
    return paths


def _tiny_bytes(fmt: str, mode: str, value) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (8, 8), value).save(buf, format=fmt)
    return buf.getvalue()


def plan_layout(n_train: int = 10_015, log: Callable[[str], None] = print) -> Path:
    """The ISIC 2018 layout with ``n_train`` Task 3 training images (8×8 JPEGs) and real-sized other sets.

    Task 1-2 training: 2,594 images + masks; Task 1-2 validation 100 / test 1,000; Task 3 validation 193 /
    test 1,512 (the real ISIC 2018 counts); the Task 3 ground-truth and lesion-groupings CSVs follow the
    HAM10000 class counts (scaled when ``n_train`` is not 10,015), 1–3 images per lesion.
    """
    from lesionflow.isic import CLASSES, FOLDERS, GROUPINGS_CSV, LABEL_CSV, image_name, mask_name

    root = DATA / f"plan_{n_train}"
    counts = {"seg_train": 2594, "seg_validation": 100, "seg_test": 1000, "validation": 193, "test": 1512}
    spec = {"n_train": n_train, **counts, "version": 1}
    if _complete(root, spec):
        return root
    _fresh(root)
    log(f"generating the ISIC 2018 layout with {n_train} training images (8×8) into {root} (once) …")
    jpg = _tiny_bytes("JPEG", "RGB", (120, 80, 60))
    png = _tiny_bytes("PNG", "L", 255)

    def write_images(key: str, ids: list[str]) -> None:
        folder = root / FOLDERS[key]
        folder.mkdir(parents=True)
        for i in ids:
            (folder / image_name(i)).write_bytes(jpg)

    seg_ids = [f"ISIC_{i:07d}" for i in range(counts["seg_train"])]
    write_images("seg_train_images", seg_ids)
    masks = root / FOLDERS["seg_train_masks"]
    masks.mkdir()
    for i in seg_ids:
        (masks / mask_name(i)).write_bytes(png)
    write_images("seg_validation_images", [f"ISIC_{12000 + i:07d}" for i in range(counts["seg_validation"])])
    write_images("seg_test_images", [f"ISIC_{16100 + i:07d}" for i in range(counts["seg_test"])])

    train_ids = [f"ISIC_{24306 + i:07d}" for i in range(n_train)]
    write_images("train_images", train_ids)
    write_images("validation_images", [f"ISIC_{24306 + n_train + i:07d}" for i in range(counts["validation"])])
    write_images("test_images", [f"ISIC_{24306 + n_train + 300 + i:07d}" for i in range(counts["test"])])

    # Classes in HAM10000 proportions; lesions of 1-3 images of one class.
    total = sum(HAM_COUNTS.values())
    per_class = {c: max(1, math.floor(HAM_COUNTS[c] * n_train / total)) for c in CLASSES}
    per_class["NV"] += n_train - sum(per_class.values())
    rng = np.random.default_rng(5)
    classes = np.repeat(list(CLASSES), [per_class[c] for c in CLASSES])
    rng.shuffle(classes)
    by_class: dict[str, list[str]] = {c: [] for c in CLASSES}
    for image_id, c in zip(train_ids, classes):
        by_class[c].append(image_id)
    groups: list[tuple[str, str]] = []
    lesion = 0
    for c in CLASSES:
        ids = by_class[c]
        k = 0
        while k < len(ids):
            take = int(rng.choice([1, 1, 1, 2, 3]))
            for image_id in ids[k : k + take]:
                groups.append((image_id, f"HAM_{lesion:07d}"))
            lesion += 1
            k += take
    labels_dir = root / FOLDERS["train_labels"]
    labels_dir.mkdir()
    lines = ["image," + ",".join(CLASSES)]
    for image_id, c in zip(train_ids, classes):
        lines.append(image_id + "," + ",".join("1.0" if c == k else "0.0" for k in CLASSES))
    (labels_dir / LABEL_CSV["train"]).write_text("\n".join(lines) + "\n")
    lines = ["image,lesion_id,diagnosis_confirm_type"]
    lines += [f"{i},{g},histopathology" for i, g in sorted(groups)]
    (labels_dir / GROUPINGS_CSV).write_text("\n".join(lines) + "\n")
    _finish(root, spec, lesions=lesion)
    return root


def predictions(n: int = 100, size: int = 224, seed: int = 0) -> list[np.ndarray]:
    """``n`` noisy float32 probability maps like a U-Net's sigmoid output: one irregular lesion plus
    spatially correlated noise (1 px) whose strength varies from image to image (logit noise sd 2–8)."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(0.35, 0.65, 2)
        a, b = rng.uniform(0.12, 0.3, 2)
        theta = np.arctan2(y - cy, x - cx)
        r = np.hypot((x - cx) / a, (y - cy) / b) * (1 + 0.15 * np.sin(3 * theta + rng.uniform(0, 6)))
        noise = ndimage.gaussian_filter(rng.standard_normal((size, size)), 1.0)
        noise /= noise.std()
        logit = 6 * (1 - r) + rng.uniform(2, 8) * noise
        out.append((1 / (1 + np.exp(-logit))).astype(np.float32))
    return out
