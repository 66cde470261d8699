"""Embedded demo data: synthetic dermoscopy images in the official ISIC 2018 folder layout.

The demo lets the whole workflow run on a laptop CPU without downloading ISIC data. Every image is drawn
procedurally (numpy, Pillow, scipy only): a skin-tone background, an irregular lesion whose colour and
structure follow its diagnosis, hairs, the dermatoscope's dark round vignette, blur and sensor noise.
The lesion region is known exactly, so the segmentation masks are exact. The seven classes differ the way
real ones do (melanoma dark and multi-toned, nevus uniform brown, BCC pink with branching vessels, ...),
strongly enough that small networks learn them from a hundred images.

Output is deterministic: the same :class:`DemoSpec` (seed included) gives byte-identical files, because
each lesion and each image draws from its own generator seeded by ``(seed, stream, index)``.

Command line: ``python -m lesionflow.demo DATA_DIR [--seed N]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .errors import InputError
from .isic import CLASSES, FOLDERS, GROUPINGS_CSV, LABEL_CSV, image_name, mask_name
from .owned import Manifest, WrittenFile, files_in, read_manifest, write_manifest

#: Training images per class: HAM10000-like imbalance, but every class has enough images to learn.
DEFAULT_TRAIN_COUNTS: dict[str, int] = {
    "MEL": 18,
    "NV": 48,
    "BCC": 14,
    "AKIEC": 12,
    "BKL": 16,
    "DF": 10,
    "VASC": 10,
}

#: Relative class frequencies of the Task 1 (segmentation) images: mostly nevi, melanomas, keratoses.
_SEG_CLASS_WEIGHTS: dict[str, float] = {
    "MEL": 0.22,
    "NV": 0.45,
    "BCC": 0.07,
    "AKIEC": 0.05,
    "BKL": 0.13,
    "DF": 0.04,
    "VASC": 0.04,
}

#: How the diagnosis was confirmed, per class (values and rough proportions as in HAM10000).
_CONFIRM_TYPES: dict[str, dict[str, float]] = {
    "MEL": {"histopathology": 1.0},
    "NV": {"follow_up": 0.5, "histopathology": 0.3, "consensus": 0.1, "confocal": 0.1},
    "BCC": {"histopathology": 1.0},
    "AKIEC": {"histopathology": 1.0},
    "BKL": {"histopathology": 0.5, "consensus": 0.3, "confocal": 0.2},
    "DF": {"histopathology": 0.6, "consensus": 0.4},
    "VASC": {"consensus": 0.5, "histopathology": 0.5},
}

# Random streams (second element of every seed sequence); keep them distinct and stable.
_STREAM_PLAN, _STREAM_SEG_LESION, _STREAM_T3_LESION, _STREAM_IMAGE = 1, 2, 3, 4

_JPEG_QUALITY = 90
_FIRST_TASK3_ID = 24306  # the real HAM10000 images start at ISIC_0024306


@dataclass(frozen=True)
class DemoSpec:
    """How much demo data to draw, and how.

    ``train_counts`` is the number of Task 3 training images per class; validation and test sets follow
    the same class proportions, with every class present when the set has at least seven images.
    Task 1 images get varied sizes (landscape and portrait, 500-1000 px on the long side) and
    ``seg_large`` of the training ones are over 2000 px on the long side.
    """

    seg_train: int = 60
    seg_validation: int = 4
    seg_test: int = 4
    seg_large: int = 2
    train_counts: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_TRAIN_COUNTS))
    validation: int = 21
    test: int = 35
    width: int = 600
    height: int = 450
    validation_ground_truth: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("seg_train", "seg_validation", "seg_test", "seg_large", "validation", "test", "seed"):
            _check_int(name, getattr(self, name), minimum=0)
        for name in ("width", "height"):
            _check_int(name, getattr(self, name), minimum=64)
        if self.seg_large > self.seg_train:
            raise InputError(f"seg_large ({self.seg_large}) is more than seg_train ({self.seg_train})")
        if not isinstance(self.validation_ground_truth, bool):
            raise InputError(
                f"demo setting 'validation_ground_truth' must be true or false, got {self.validation_ground_truth!r}"
            )
        counts = self.train_counts
        if isinstance(counts, int) and not isinstance(counts, bool):
            counts = {c: counts for c in CLASSES}
        if not isinstance(counts, Mapping):
            raise InputError("train_counts must be a mapping of class to image count, or one count for all")
        unknown = [k for k in counts if k not in CLASSES]
        if unknown:
            raise InputError(f"train_counts: unknown class {unknown[0]!r} (classes: {', '.join(CLASSES)})")
        missing = [c for c in CLASSES if c not in counts]
        if missing:
            raise InputError(f"train_counts: class {missing[0]!r} is missing (give a count for every class)")
        for c in CLASSES:
            _check_int(f"train_counts.{c}", counts[c], minimum=0)
        if sum(counts[c] for c in CLASSES) == 0:
            raise InputError("train_counts: at least one training image is needed")
        object.__setattr__(self, "train_counts", {c: int(counts[c]) for c in CLASSES})

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> "DemoSpec":
        """A spec from a (config) mapping holding any subset of the field names; others keep defaults."""
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        for key in d:
            if key not in names:
                raise InputError(f"unknown demo setting {key!r} (known: {', '.join(sorted(names))})")
        return cls(**d)


def _check_int(name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"demo setting {name!r} must be an integer, got {value!r}")
    if value < minimum:
        raise InputError(f"demo setting {name!r} must be at least {minimum}, got {value}")


# --------------------------------------------------------------------------------------------------
# Planning: ids, classes, sizes and lesion groups (cheap, no pixels).


@dataclass
class _Item:
    folder: str  # FOLDERS key of the image folder
    image_id: str
    cls: str
    size: tuple[int, int]  # (width, height)
    lesion: int  # lesion seed index (stream depends on task)
    stream: int
    variant: int = 0  # 0: the lesion's first image; >0: a re-render of the same lesion
    group_size: int = 1
    mask_folder: str | None = None


def _allocate(total: int, weights: Mapping[str, float], min_each: int) -> dict[str, int]:
    """Split ``total`` over classes in proportion to ``weights`` (largest remainder), ``min_each`` floor."""
    present = [c for c in CLASSES if weights.get(c, 0) > 0]
    counts = {c: 0 for c in CLASSES}
    if total <= 0 or not present:
        return counts
    floor = min_each if total >= min_each * len(present) else 0
    for c in present:
        counts[c] = floor
    rest = total - floor * len(present)
    wsum = sum(weights[c] for c in present)
    quotas = {c: rest * weights[c] / wsum for c in present}
    for c in present:
        counts[c] += int(quotas[c])
    left = total - sum(counts.values())
    order = sorted(present, key=lambda c: (-(quotas[c] - int(quotas[c])), CLASSES.index(c)))
    for c in order[:left]:
        counts[c] += 1
    return counts


def _seg_size(rng: np.random.Generator, large: bool, portrait: bool) -> tuple[int, int]:
    aspect = float(rng.choice([4 / 3, 3 / 2, 1.0, 1.25, 16 / 10]))
    long_side = int(rng.integers(2048, 2601)) if large else int(rng.integers(500, 1001))
    short_side = max(64, int(round(long_side / aspect)))
    return (short_side, long_side) if portrait else (long_side, short_side)


def _plan(spec: DemoSpec) -> tuple[list[_Item], dict[str, list[tuple[str, str, str]]]]:
    """Every image to draw, and the Task 3 training lesion groupings (image, lesion_id, confirm type)."""
    rng = np.random.default_rng([spec.seed, _STREAM_PLAN])
    items: list[_Item] = []
    next_id = 0

    def new_id() -> str:
        nonlocal next_id
        image_id = f"ISIC_{next_id:07d}"
        next_id += 1
        return image_id

    seg_classes = list(_SEG_CLASS_WEIGHTS)
    seg_p = np.array([_SEG_CLASS_WEIGHTS[c] for c in seg_classes])
    seg_p = seg_p / seg_p.sum()
    large_at = {int((k + 0.5) * spec.seg_train / spec.seg_large) for k in range(spec.seg_large)}
    for key, n in (
        ("seg_train_images", spec.seg_train),
        ("seg_validation_images", spec.seg_validation),
        ("seg_test_images", spec.seg_test),
    ):
        for i in range(n):
            large = key == "seg_train_images" and i in large_at
            portrait = i % 4 == 1 or (large and i != min(large_at))
            image_id = new_id()
            items.append(
                _Item(
                    folder=key,
                    image_id=image_id,
                    cls=str(rng.choice(seg_classes, p=seg_p)),
                    size=_seg_size(rng, large, portrait),
                    lesion=int(image_id[5:]),
                    stream=_STREAM_SEG_LESION,
                    mask_folder="seg_train_masks" if key == "seg_train_images" else None,
                )
            )

    next_id = max(next_id, _FIRST_TASK3_ID)
    size = (spec.width, spec.height)
    train_counts = dict(spec.train_counts)
    sets = {
        "train": train_counts,
        "validation": _allocate(spec.validation, train_counts, 1),
        "test": _allocate(spec.test, train_counts, 1),
    }
    groupings: dict[str, list[tuple[str, str, str]]] = {}
    lesion_index = 0
    for set_name in ("train", "validation", "test"):
        # One entry per lesion: (class, number of images); training lesions may have 2-3 images.
        lesions: list[tuple[str, int]] = []
        for c in CLASSES:
            left = sets[set_name][c]
            first = True
            while left > 0:
                k = 1
                if set_name == "train" and left >= 2 and (first or rng.random() < 0.2):
                    k = int(min(left, rng.choice([2, 2, 3])))
                lesions.append((c, k))
                left -= k
                first = False
        slots = [(li, j) for li, (_, k) in enumerate(lesions) for j in range(k)]
        order = rng.permutation(len(slots))  # ids must not reveal the class
        ham = None
        if set_name == "train":  # HAM10000-style lesion ids, unique
            ham = rng.choice(max(10_000, 2 * len(lesions)), size=len(lesions), replace=False)
        confirm = [str(rng.choice(list(_CONFIRM_TYPES[c]), p=list(_CONFIRM_TYPES[c].values()))) for c, _ in lesions]
        rows = []
        for pos in order:
            li, j = slots[pos]
            c, k = lesions[li]
            image_id = new_id()
            items.append(
                _Item(
                    folder=f"{set_name}_images",
                    image_id=image_id,
                    cls=c,
                    size=size,
                    lesion=lesion_index + li,
                    stream=_STREAM_T3_LESION,
                    variant=j,
                    group_size=k,
                    mask_folder="test_masks" if set_name == "test" else None,
                )
            )
            if ham is not None:
                rows.append((image_id, f"HAM_{int(ham[li]):07d}", confirm[li]))
        lesion_index += len(lesions)
        if ham is not None:
            groupings[set_name] = sorted(rows)
    return items, groupings


# --------------------------------------------------------------------------------------------------
# Drawing primitives.


def _noise(rng: np.random.Generator, h: int, w: int, feature_px: float) -> np.ndarray:
    """Smooth zero-mean, unit-variance noise with blobs about ``feature_px`` across (bicubic upsampling)."""
    feature_px = max(2.0, float(feature_px))
    gh, gw = int(math.ceil(h / feature_px)) + 3, int(math.ceil(w / feature_px)) + 3
    grid = rng.standard_normal((gh, gw), dtype=np.float32)
    box = (1.0, 1.0, 1.0 + w / feature_px, 1.0 + h / feature_px)
    out = np.asarray(Image.fromarray(grid).resize((w, h), Image.Resampling.BICUBIC, box=box))
    out = out - out.mean()
    return out / (out.std() + 1e-6)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _mix(a: np.ndarray, b: Any, t: np.ndarray) -> np.ndarray:
    """Blend colour image ``a`` towards colour ``b`` by weight ``t`` (H×W)."""
    t = t[..., None]
    return a + (np.asarray(b, dtype=np.float32) - a) * t


def _jitter(
    rng: np.random.Generator, rgb: tuple[float, float, float], bright: float = 0.08, shift: float = 5.0
) -> np.ndarray:
    """``rgb`` with a random brightness (±``bright``) and per-channel tint (``shift`` percent, ≤ 2 sd)."""
    tint = 1.0 + np.clip(rng.normal(0, shift / 100, 3), -0.02 * shift, 0.02 * shift)
    c = np.asarray(rgb, dtype=np.float32) * rng.uniform(1 - bright, 1 + bright) * tint
    return np.clip(c, 0, 255).astype(np.float32)


def _dots(rng: np.random.Generator, h: int, w: int, pts: np.ndarray, radius: tuple[float, float]) -> np.ndarray:
    """A 0..1 layer of soft round dots centred on ``pts`` (N×2, x/y pixels)."""
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    for x, y in pts:
        r = rng.uniform(*radius)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    layer = layer.filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(layer, dtype=np.float32) / 255.0


class _Lesion:
    """The lesion's geometry on a canvas: an irregular, rotated, elongated blob.

    ``rho / f(theta) < 1`` inside; ``depth`` is 0 on the border and 1 at the centre; ``sdist`` is an
    approximate signed distance to the border in pixels (positive inside).
    """

    def __init__(self, rng: np.random.Generator, cls: str, w: int, h: int, pad: int, scale: float) -> None:
        area_lo, area_hi, irregular, kmax = _SHAPE[cls]
        area = rng.uniform(area_lo, area_hi) * w * h  # of the image, not the padded canvas
        self.elong = rng.uniform(1.0, 1.35 if cls != "NV" else 1.15)
        self.a = math.sqrt(area * self.elong / math.pi)
        self.b = self.a / self.elong
        self.angle = (0.0 if w >= h else math.pi / 2) + rng.normal(0, 0.3)
        self.cx = pad + w / 2 + rng.uniform(-0.07, 0.07) * w
        self.cy = pad + h / 2 + rng.uniform(-0.07, 0.07) * h
        theta = np.linspace(-math.pi, math.pi, 4097, dtype=np.float64)
        f = np.ones_like(theta)
        for k in range(2, kmax + 1):
            amp = irregular * rng.normal() / k**0.9
            f += amp * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
        f = np.maximum(f, 0.35)
        f /= math.sqrt(np.mean(f[:-1] ** 2))  # keep the requested area
        self.table = f.astype(np.float32)
        self.scale = scale  # canvas pixels per image pixel (below 1 for large Task 1 images)

    def fields(self, cw: int, ch: int) -> dict[str, np.ndarray]:
        s = self.scale
        y, x = np.mgrid[0:ch, 0:cw].astype(np.float32)
        x = (x + 0.5) / s - self.cx
        y = (y + 0.5) / s - self.cy
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        uu = (x * ca + y * sa) / self.a
        vv = (-x * sa + y * ca) / self.b
        rho = np.hypot(uu, vv)
        idx = ((np.arctan2(vv, uu) + math.pi) * (4096 / (2 * math.pi))).astype(np.int32)
        f = self.table[np.clip(idx, 0, 4096)]
        depth = np.clip(1.0 - rho / f, 0.0, 1.0)
        sdist = (f - rho) * math.sqrt(self.a * self.b) * s
        return {"uu": uu, "vv": vv, "rho": rho, "depth": depth, "sdist": sdist}


# area fraction range of the image, border irregularity, highest harmonic
_SHAPE: dict[str, tuple[float, float, float, int]] = {
    "MEL": (0.30, 0.55, 0.16, 12),
    "NV": (0.20, 0.45, 0.04, 4),
    "BCC": (0.22, 0.45, 0.09, 8),
    "AKIEC": (0.22, 0.50, 0.09, 8),
    "BKL": (0.25, 0.55, 0.07, 6),
    "DF": (0.16, 0.24, 0.04, 4),
    "VASC": (0.20, 0.40, 0.12, 6),
}

#: Border softness in pixels (at 600×450) per class.
_EDGE: dict[str, tuple[float, float]] = {
    "MEL": (1.5, 3.0),
    "NV": (2.0, 4.0),
    "BCC": (2.0, 4.0),
    "AKIEC": (2.5, 5.0),
    "BKL": (1.0, 2.5),
    "DF": (3.0, 5.0),
    "VASC": (1.5, 3.0),
}


def _lesion_points(rng: np.random.Generator, les: _Lesion, n: int, rmin: float, rmax: float) -> np.ndarray:
    """``n`` random canvas points (x, y) at normalised radius ``rmin..rmax`` of the lesion."""
    t = rng.uniform(0, 2 * math.pi, n)
    idx = ((t) * (4096 / (2 * math.pi))).astype(int)
    r = rng.uniform(rmin, rmax, n) * les.table[np.clip(idx, 0, 4096)]
    t = t - math.pi
    u, v = r * np.cos(t) * les.a, r * np.sin(t) * les.b
    ca, sa = math.cos(les.angle), math.sin(les.angle)
    x = (les.cx + u * ca - v * sa) * les.scale
    y = (les.cy + u * sa + v * ca) * les.scale
    return np.stack([x, y], axis=1)


# --------------------------------------------------------------------------------------------------
# Per-class lesion colour and structure. Each returns the lesion's colour over the whole canvas
# (float32 H×W×3, 0..255); outside the lesion it is hidden by the alpha.


def _paint_mel(rng, les, fl, h, w, px):
    d = fl["depth"]
    L = math.sqrt(les.a * les.b) * les.scale
    light = _jitter(rng, (128, 82, 58))
    dark = _jitter(rng, (76, 48, 38))
    black = _jitter(rng, (36, 27, 27), 0.1, 3)
    bluegrey = _jitter(rng, (108, 110, 126), 0.06, 4)
    gdir = rng.uniform(0, 2 * math.pi)
    grad = (fl["uu"] * math.cos(gdir) + fl["vv"] * math.sin(gdir)) * 0.8  # asymmetric colour
    col = np.broadcast_to(light, (h, w, 3)).astype(np.float32)
    col = _mix(col, dark, _smoothstep(-0.6, 0.6, _noise(rng, h, w, L / 3) + 1.4 * d - 0.3 + 0.4 * grad))
    n1 = _noise(rng, h, w, L / 2.5) + 0.5 * _noise(rng, h, w, L / 8)
    col = _mix(col, black, _smoothstep(0.1, 1.1, n1 + grad) * 0.9)
    veil = _smoothstep(0.7, 1.5, _noise(rng, h, w, L / 3) + 0.5 * d - 0.5 * grad)
    col = _mix(col, bluegrey, veil * rng.uniform(0.6, 0.85))
    # atypical network at the periphery, irregular dots and globules
    net = 1.0 - _smoothstep(0.0, 0.22, np.abs(_noise(rng, h, w, L / 9)))
    col = col * (1.0 - 0.4 * (net * (1.0 - _smoothstep(0.25, 0.55, d))))[..., None]
    pts = _lesion_points(rng, les, int(rng.integers(15, 45)), 0.55, 0.97)
    col = _mix(col, black, _dots(rng, h, w, pts, (1.5 * px, 4.5 * px)) * 0.9)
    if rng.random() < 0.4:  # regression: whitish scar-like area
        reg = _smoothstep(1.0, 1.7, _noise(rng, h, w, L / 4)) * _smoothstep(0.1, 0.3, d)
        col = _mix(col, _jitter(rng, (200, 182, 182)), reg * 0.7)
    return col


def _paint_nv(rng, les, fl, h, w, px):
    d = fl["depth"]
    L = math.sqrt(les.a * les.b) * les.scale
    brown = _jitter(rng, (152, 96, 64), 0.10, 4)
    col = brown * (1.0 - 0.16 * _smoothstep(0.0, 0.8, d) + 0.05 * _noise(rng, h, w, L / 2))[..., None]
    col = np.ascontiguousarray(col, dtype=np.float32)
    # regular pigment network, faint towards the periphery
    net = 1.0 - _smoothstep(0.0, 0.25, np.abs(_noise(rng, h, w, L / 11)))
    col = col * (1.0 - rng.uniform(0.12, 0.22) * net * _smoothstep(0.0, 0.25, d))[..., None]
    if rng.random() < 0.4:  # globular pattern
        pts = _lesion_points(rng, les, int(rng.integers(20, 60)), 0.0, 0.75)
        col = _mix(col, brown * 0.7, _dots(rng, h, w, pts, (2.0 * px, 4.0 * px)) * 0.7)
    return col


def _vessel_layer(rng: np.random.Generator, les: _Lesion, h: int, w: int, px: float) -> np.ndarray:
    """Arborising (tree-like branching) vessels: bright red lines, thick trunks to thin twigs."""
    L = math.sqrt(les.a * les.b) * les.scale
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    stack = []
    for x, y in _lesion_points(rng, les, int(rng.integers(3, 7)), 0.1, 0.7):
        stack.append((x, y, rng.uniform(0, 2 * math.pi), L * rng.uniform(0.25, 0.45), 3.2 * px, 3))
    while stack:
        x, y, ang, length, width, depth = stack.pop()
        pts = [(x, y)]
        for _ in range(4):
            ang += rng.normal(0, 0.35)
            x, y = x + math.cos(ang) * length / 4, y + math.sin(ang) * length / 4
            pts.append((x, y))
        draw.line(pts, fill=255, width=max(1, int(round(width))), joint="curve")
        if depth > 0:
            for side in (-1, 1):
                stack.append(
                    (x, y, ang + side * rng.uniform(0.3, 0.9), length * 0.65, max(1.0, width * 0.65), depth - 1)
                )
    layer = layer.filter(ImageFilter.GaussianBlur(0.5 * px))
    return np.asarray(layer, dtype=np.float32) / 255.0


def _paint_bcc(rng, les, fl, h, w, px):
    d = fl["depth"]
    L = math.sqrt(les.a * les.b) * les.scale
    pink = _jitter(rng, (214, 136, 162), 0.06, 4)
    col = pink * (1.0 + 0.05 * _noise(rng, h, w, L / 3))[..., None]
    col = np.ascontiguousarray(col, dtype=np.float32)
    pearl = _smoothstep(0.6, 1.6, _noise(rng, h, w, L / 4)) * 0.6
    col = _mix(col, _jitter(rng, (240, 212, 220), 0.03, 3), pearl)
    if rng.random() < 0.7:  # blue-grey ovoid nests
        pts = _lesion_points(rng, les, int(rng.integers(2, 6)), 0.1, 0.7)
        nests = (
            np.asarray(
                Image.fromarray((_dots(rng, h, w, pts, (0.05 * L, 0.1 * L)) * 255).astype(np.uint8)).filter(
                    ImageFilter.GaussianBlur(0.02 * L)
                ),
                dtype=np.float32,
            )
            / 255.0
        )
        col = _mix(col, _jitter(rng, (105, 105, 135), 0.05, 4), nests * 0.75)
    if rng.random() < 0.3:  # ulceration: dark red-brown crust
        ulc = _smoothstep(1.2, 1.6, _noise(rng, h, w, L / 5)) * _smoothstep(0.2, 0.4, d)
        col = _mix(col, _jitter(rng, (120, 45, 40)), ulc)
    col = _mix(col, _jitter(rng, (185, 25, 45), 0.06, 4), _vessel_layer(rng, les, h, w, px) * 0.95)
    return col


def _paint_akiec(rng, les, fl, h, w, px):
    L = math.sqrt(les.a * les.b) * les.scale
    red = _jitter(rng, (204, 72, 58), 0.07, 4)
    col = red * (1.0 + 0.07 * _noise(rng, h, w, L / 3))[..., None]
    col = np.ascontiguousarray(col, dtype=np.float32)
    # surface scale: white-yellow flakes in a speckled, patchy layer
    speck = _noise(rng, h, w, 3.0 * px) + 0.9 * _noise(rng, h, w, L / 4)
    col = _mix(col, _jitter(rng, (238, 224, 196), 0.03, 3), _smoothstep(0.9, 1.6, speck) * 0.9)
    # strawberry pattern: white follicular openings and dotted vessels
    pts = _lesion_points(rng, les, int(rng.integers(25, 60)), 0.0, 0.9)
    col = _mix(col, (245, 236, 222), _dots(rng, h, w, pts, (1.5 * px, 3.0 * px)) * 0.85)
    pts = _lesion_points(rng, les, int(rng.integers(30, 80)), 0.0, 0.9)
    col = _mix(col, (150, 28, 34), _dots(rng, h, w, pts, (0.8 * px, 1.8 * px)) * 0.8)
    return col


def _paint_bkl(rng, les, fl, h, w, px):
    L = math.sqrt(les.a * les.b) * les.scale
    tan = _jitter(rng, (190, 146, 100), 0.08, 5)
    col = tan * (1.0 + 0.06 * _noise(rng, h, w, L / 3) + 0.05 * _noise(rng, h, w, 2.5 * px))[..., None]
    col = np.ascontiguousarray(col, dtype=np.float32)
    # cerebriform surface: dark fissures between pale gyri
    n = _noise(rng, h, w, L / 6) + 0.3 * _noise(rng, h, w, L / 15)
    fissure = 1.0 - _smoothstep(0.05, 0.5, np.abs(n))
    col = col * (0.92 + 0.16 * _smoothstep(0.3, 1.5, np.abs(n)))[..., None]  # raised gyri
    col = _mix(col, tan * np.float32(0.55), fissure * 0.85)
    # milia-like cysts (white) and comedo-like openings (dark)
    pts = _lesion_points(rng, les, int(rng.integers(6, 20)), 0.0, 0.85)
    col = _mix(col, (240, 232, 210), _dots(rng, h, w, pts, (2.0 * px, 4.0 * px)) * 0.9)
    pts = _lesion_points(rng, les, int(rng.integers(4, 14)), 0.0, 0.85)
    col = _mix(col, (95, 65, 45), _dots(rng, h, w, pts, (2.0 * px, 3.5 * px)) * 0.85)
    return col


def _paint_df(rng, les, fl, h, w, px):
    d = fl["depth"]
    L = math.sqrt(les.a * les.b) * les.scale
    ring = _jitter(rng, (150, 100, 70), 0.08, 4)
    centre = _jitter(rng, (240, 226, 220), 0.03, 3)
    col = ring * (1.0 + 0.05 * _noise(rng, h, w, L / 3))[..., None]
    col = np.ascontiguousarray(col, dtype=np.float32)
    net = 1.0 - _smoothstep(0.0, 0.3, np.abs(_noise(rng, h, w, L / 8)))
    col = col * (1.0 - 0.2 * net)[..., None]
    col = col * (1.0 + 0.12 * (1.0 - _smoothstep(0.0, 0.3, d)))[..., None]  # ring fades outwards
    lo = rng.uniform(0.3, 0.45)
    patch = _smoothstep(lo, lo + 0.35, d + 0.15 * _noise(rng, h, w, L / 3))
    return _mix(col, centre, patch * 0.95)


def _paint_vasc(rng, les, fl, h, w, px):
    L = math.sqrt(les.a * les.b) * les.scale
    lagoon = _jitter(rng, (140, 28, 72), 0.08, 4)
    deep = _jitter(rng, (92, 18, 58), 0.08, 4)
    septa = _jitter(rng, (205, 140, 160), 0.04, 3)
    col = _mix(
        np.broadcast_to(lagoon, (h, w, 3)).astype(np.float32), deep, _smoothstep(-0.5, 1.0, _noise(rng, h, w, L / 3))
    )
    lob = np.abs(_noise(rng, h, w, L / 5) + 0.25 * _noise(rng, h, w, L / 12))
    col = _mix(col, septa, (1.0 - _smoothstep(0.0, 0.22, lob)) * 0.8)
    return col * (0.93 + 0.12 * _smoothstep(0.0, 1.2, lob))[..., None]


_PAINT: dict[str, Callable[..., np.ndarray]] = {
    "MEL": _paint_mel,
    "NV": _paint_nv,
    "BCC": _paint_bcc,
    "AKIEC": _paint_akiec,
    "BKL": _paint_bkl,
    "DF": _paint_df,
    "VASC": _paint_vasc,
}

_SKIN_PALETTE = np.array(
    [
        (240, 210, 196),
        (234, 194, 176),
        (228, 184, 160),
        (219, 170, 145),
        (210, 160, 134),
        (232, 190, 182),
        (224, 176, 150),
    ],
    dtype=np.float32,
)


def _render_lesion(
    item: _Item, seed: int, w: int, h: int, pad: int, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Lesion]:
    """The lesion's colour, opacity and coverage on a (padded) canvas, from the lesion's own seed only.

    Coverage is a narrow 0..1 ramp across the border; the lesion region (the mask) is coverage >= 0.5.
    Opacity is coverage times a slightly thinner pigment at the rim.
    """
    rng = np.random.default_rng([seed, item.stream, item.lesion])
    les = _Lesion(rng, item.cls, w, h, pad, scale)
    cw, ch = int(round((w + 2 * pad) * scale)), int(round((h + 2 * pad) * scale))
    fl = les.fields(cw, ch)
    px = max(0.5, scale * math.sqrt(w * h / (600 * 450)))  # feature size unit: a pixel at 600×450
    colour = _PAINT[item.cls](rng, les, fl, ch, cw, px)
    ew = rng.uniform(*_EDGE[item.cls]) * px
    coverage = np.clip(0.5 + fl["sdist"] / ew, 0.0, 1.0)
    rim = rng.uniform(0.7, 0.85)
    alpha = coverage * (rim + (1.0 - rim) * _smoothstep(0.0, 0.15, fl["depth"]))
    return (np.clip(colour, 0, 255).astype(np.float32), alpha.astype(np.float32), coverage.astype(np.float32), les)


def _warp(
    arrays: list[np.ndarray], out_wh: tuple[int, int], coeffs: tuple[float, ...] | None, offset: int
) -> list[np.ndarray]:
    """Take each canvas layer into image space: crop the padding, or an affine transform (bilinear)."""
    w, h = out_wh
    if coeffs is None:
        return [a[offset : offset + h, offset : offset + w] for a in arrays]
    out = []
    for a in arrays:
        chans = a[..., None] if a.ndim == 2 else a
        res = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(chans[..., c])).transform(
                    (w, h), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR
                )
            )
            for c in range(chans.shape[-1])
        ]
        out.append(res[0] if a.ndim == 2 else np.stack(res, axis=-1))
    return out


def _skin_tone(rng: np.random.Generator) -> np.ndarray:
    i, j = rng.choice(len(_SKIN_PALETTE), 2, replace=False)
    return _SKIN_PALETTE[i] + (_SKIN_PALETTE[j] - _SKIN_PALETTE[i]) * np.float32(rng.uniform())


def _skin(rng: np.random.Generator, tone: np.ndarray, h: int, w: int, px: float) -> np.ndarray:
    """Skin around the lesion: ``tone`` with soft shading, faint furrows and patchy redness."""
    base = tone * np.float32(rng.uniform(0.97, 1.03))
    big = max(h, w)
    shade = 1.0 + 0.045 * _noise(rng, h, w, big / 2.5)
    furrows = 1.0 - (1.0 - _smoothstep(0.0, 0.15, np.abs(_noise(rng, h, w, 14 * px)))) * 0.04
    skin = base * (shade * furrows)[..., None]
    ery = np.clip(_noise(rng, h, w, big / 5), 0, None) * rng.uniform(0.02, 0.07)
    skin = skin * (1.0 + ery[..., None] * np.array([0.25, -0.45, -0.35], dtype=np.float32))
    return skin.astype(np.float32)


def _hairs(rng: np.random.Generator, h: int, w: int, px: float) -> np.ndarray | None:
    if rng.random() < 0.45:
        return None
    layer = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(layer)
    diag = math.hypot(w, h)
    t = np.linspace(0, 1, 24)[:, None]
    for _ in range(int(rng.integers(1, 14))):
        p0 = rng.uniform([-0.1 * w, -0.1 * h], [1.1 * w, 1.1 * h])
        ang = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(0.25, 0.9) * diag
        p2 = p0 + length * np.array([math.cos(ang), math.sin(ang)])
        p1 = (p0 + p2) / 2 + rng.normal(0, 0.12 * length, 2)
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        draw.line(
            [tuple(p) for p in curve],
            fill=int(rng.integers(170, 256)),
            width=max(1, int(round(rng.uniform(1.0, 3.2) * px))),
            joint="curve",
        )
    layer = layer.filter(ImageFilter.GaussianBlur(0.5 * px))
    return np.asarray(layer, dtype=np.float32) / 255.0


def _vignette(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The dermatoscope's round field of view: 1 inside, dark towards the corners."""
    hd = math.hypot(w, h) / 2
    cx, cy = w / 2 + rng.normal(0, 0.02 * w), h / 2 + rng.normal(0, 0.02 * h)
    y, x = np.ogrid[0:h, 0:w]
    dist = np.sqrt(((x - cx) ** 2).astype(np.float32) + ((y - cy) ** 2).astype(np.float32)) / hd
    radius = rng.uniform(0.80, 0.97)
    fall = rng.uniform(0.05, 0.12)
    floor = rng.uniform(0.02, 0.10)
    v = _smoothstep(radius, radius - fall, dist)
    return (floor + (1 - floor) * v).astype(np.float32)


def _render(item: _Item, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The image (H×W×3 uint8) and its exact lesion mask (H×W bool)."""
    w, h = item.size
    scale = min(1.0, 1000.0 / max(w, h))  # huge Task 1 images: draw at ≤1000 px, then upsample
    rw, rh = int(round(w * scale)), int(round(h * scale))
    px = max(0.5, scale * math.sqrt(w * h / (600 * 450)))
    irng = np.random.default_rng([seed, _STREAM_IMAGE, int(item.image_id[5:])])

    pad = int(round(0.12 * max(w, h))) if item.group_size > 1 else 0
    colour, alpha, coverage, les = _render_lesion(item, seed, w, h, pad, scale)
    coeffs = None
    if item.variant > 0:  # re-imaged lesion: slightly rotated, scaled and shifted
        rot = math.radians(irng.uniform(-15, 15))
        zoom = irng.uniform(0.9, 1.1)
        ox, oy = (les.cx - pad) * scale, (les.cy - pad) * scale
        qx, qy = les.cx * scale, les.cy * scale
        tx, ty = irng.normal(0, 0.03 * rw), irng.normal(0, 0.03 * rh)
        c, s = math.cos(rot) / zoom, math.sin(rot) / zoom
        # output (x, y) -> canvas: q + R(-rot)/zoom · ((x, y) - o - t)
        coeffs = (c, s, qx - c * (ox + tx) - s * (oy + ty), -s, c, qy + s * (ox + tx) - c * (oy + ty))
    colour, alpha, coverage = _warp([colour, alpha, coverage], (rw, rh), coeffs, int(round(pad * scale)))

    tone = _skin_tone(np.random.default_rng([seed, item.stream, item.lesion, 1]))  # the patient's skin
    skin = _skin(irng, tone, rh, rw, px)
    img = skin + (colour - skin) * alpha[..., None]
    hair = _hairs(irng, rh, rw, px)
    if hair is not None:
        img = _mix(img, _jitter(irng, (40, 28, 22), 0.2, 4), hair * 0.9)
    cast = irng.uniform(0.93, 1.05) * (1 + irng.normal(0, 0.025, 3))
    img = img * _vignette(irng, rh, rw)[..., None] * cast.astype(np.float32)
    pil = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8))
    if scale < 1.0:
        pil = pil.resize((w, h), Image.Resampling.BICUBIC)
        coverage = np.asarray(Image.fromarray(coverage).resize((w, h), Image.Resampling.BILINEAR))
    pil = pil.filter(ImageFilter.GaussianBlur(irng.uniform(0.5, 1.1) / min(1.0, scale * 1.5)))
    out = np.asarray(pil).astype(np.int16)
    out = out + (irng.standard_normal((h, w, 1), dtype=np.float32) * irng.uniform(1.5, 3.5)).astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8), coverage >= 0.5


# --------------------------------------------------------------------------------------------------
# Writing.


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_image(path: Path, pil: Image.Image, fmt: str, **kw: Any) -> None:
    _write_atomic(path, lambda tmp: pil.save(tmp, format=fmt, **kw))


def _write_labels(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["image," + ",".join(CLASSES)]
    for image_id, cls in sorted(rows):
        lines.append(image_id + "," + ",".join("1.0" if c == cls else "0.0" for c in CLASSES))
    _write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n"))


def _write_groupings(path: Path, rows: list[tuple[str, str, str]]) -> None:
    lines = ["image,lesion_id,diagnosis_confirm_type"] + [",".join(r) for r in rows]
    _write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n"))


def _written_folders(spec: DemoSpec) -> list[str]:
    keys = [
        "seg_train_images",
        "seg_train_masks",
        "seg_validation_images",
        "seg_test_images",
        "train_images",
        "train_labels",
        "validation_images",
        "test_images",
        "test_labels",
        "test_masks",
    ]
    return keys + (["validation_labels"] if spec.validation_ground_truth else [])


def planned_files(spec: DemoSpec | None = None) -> dict[str, list[str]]:
    """The file names :func:`generate_demo` writes for ``spec``, per ``isic.FOLDERS`` key, without drawing.

    Lets a workflow know the demo's images (and declare them as outputs) before they exist.
    """
    spec = spec or DemoSpec()
    items, _ = _plan(spec)
    files: dict[str, list[str]] = {key: [] for key in _written_folders(spec)}
    for item in items:
        files[item.folder].append(image_name(item.image_id))
        if item.mask_folder:
            files[item.mask_folder].append(mask_name(item.image_id))
    files["train_labels"] += [LABEL_CSV["train"], GROUPINGS_CSV]
    files["test_labels"].append(LABEL_CSV["test"])
    if spec.validation_ground_truth:
        files["validation_labels"].append(LABEL_CSV["validation"])
    return {key: sorted(names) for key, names in files.items()}


#: The generator's marker in ``data_dir``: the files it wrote there (see :mod:`lesionflow.owned`).
MARKER = ".lesionflow-demo"
_STAGING_PREFIX = ".lesionflow-demo-staging-"
_WRITTEN_BY = "lesionflow demo generator"


def _generators_own(name: str) -> bool:
    """Top-level names in ``data_dir`` that only the generator makes: its marker (and the marker's
    temporary file while it is written) and its staging folders."""
    return name == MARKER or name.startswith(f".{MARKER}.tmp") or name.startswith(_STAGING_PREFIX)


def _planned_paths(spec: DemoSpec) -> list[str]:
    """The files :func:`generate_demo` writes for ``spec``, relative to ``data_dir``."""
    return [f"{FOLDERS[key]}/{name}" for key, names in planned_files(spec).items() for name in names]


@dataclass(frozen=True)
class DemoFolder:
    """What a ``data_dir`` holds, as the demo generator sees it.

    ``manifest`` lists what the generator wrote there before (None: no marker). ``users_files`` is a
    sample of the files it did not write, in a folder without a marker: a folder holding any is the user's
    data, which the generator never writes into.
    """

    path: Path
    manifest: Manifest | None
    users_files: tuple[str, ...] = ()

    @property
    def holds_users_data(self) -> bool:
        return self.manifest is None and bool(self.users_files)

    def refusal(self) -> str:
        """The one line that says why the generator leaves this folder alone, and what to do."""
        return (
            f"{self.path}: holds data that the demo generator did not write (e.g. {self.users_files[0]}); "
            "nothing was changed. Give the demo an empty or new folder, or set demo.generate: false to use "
            "this data as it is"
        )


def inspect_data_dir(data_dir: str | Path, spec: DemoSpec) -> DemoFolder:
    """Whether the generator may write ``spec``'s files into ``data_dir``, without changing anything.

    It may when the folder does not exist, holds no file, or carries the generator's marker; in a marked
    folder, a file the spec would write that the marker does not list is an :class:`InputError` naming it
    (replacing it would destroy someone's data). Other files in a marked folder are left as they are.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        if data_dir.exists() or data_dir.is_symlink():
            raise InputError("data_dir is not a folder (config key data_dir); nothing was changed", data_dir)
        return DemoFolder(data_dir, None)
    manifest = read_manifest(data_dir, MARKER)
    if manifest is None:
        sample = tuple(itertools.islice(files_in(data_dir, skip=_generators_own), 3))
        return DemoFolder(data_dir, None, sample)
    for relative in _planned_paths(spec):
        path = data_dir / relative
        if (path.exists() or path.is_symlink()) and not manifest.lists(relative):
            raise InputError(
                "the demo generator would replace this file, but it did not write it; nothing was "
                "changed. Move the file away, or set demo.generate: false to use data_dir as it is",
                path,
            )
    return DemoFolder(data_dir, manifest)


def generate_demo(data_dir: str | Path, spec: DemoSpec | None = None) -> dict[str, Any]:
    """Draw the demo data set into ``data_dir`` in the official ISIC 2018 layout; return a summary.

    Writes only into a folder that does not exist, holds no file, or carries the generator's marker
    (:func:`inspect_data_dir`; otherwise an :class:`InputError` and nothing changes). Everything is drawn
    into a hidden staging folder first, so a failure while drawing changes nothing; then the marker is
    updated to name both the old and the new files, the new files are moved to their final names one by
    one, the files of an earlier demo that this spec does not write are deleted (their folders only once
    empty), and the marker is rewritten to name the new files. Files the marker does not list are never
    replaced, moved or deleted. The summary holds the number of
    images per set and per class.
    """
    spec = spec or DemoSpec()
    data_dir = Path(data_dir)
    folder = inspect_data_dir(data_dir, spec)
    if folder.holds_users_data:
        raise InputError(folder.refusal())
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f"{_STAGING_PREFIX}*"):  # left by a killed run of the generator
        shutil.rmtree(stale, ignore_errors=True)
    items, groupings = _plan(spec)
    staging = data_dir / f"{_STAGING_PREFIX}{os.getpid()}"
    labels: dict[str, list[tuple[str, str]]] = {s: [] for s in ("train", "validation", "test")}
    per_class: dict[str, dict[str, int]] = {s: {c: 0 for c in CLASSES} for s in labels}
    per_set: dict[str, int] = {}
    written = _written_folders(spec)
    try:
        for key in written:
            (staging / FOLDERS[key]).mkdir(parents=True)
        for item in items:
            image, mask = _render(item, spec.seed)
            _save_image(
                staging / FOLDERS[item.folder] / image_name(item.image_id),
                Image.fromarray(image),
                "JPEG",
                quality=_JPEG_QUALITY,
                optimize=False,
                subsampling=2,
            )
            if item.mask_folder:
                _save_image(
                    staging / FOLDERS[item.mask_folder] / mask_name(item.image_id),
                    Image.fromarray(mask.astype(np.uint8) * 255),
                    "PNG",
                )
            set_key = item.folder[: -len("_images")]
            per_set[set_key] = per_set.get(set_key, 0) + 1
            if set_key in labels:
                labels[set_key].append((item.image_id, item.cls))
                per_class[set_key][item.cls] += 1
        for set_key in ("train", "test") + (("validation",) if spec.validation_ground_truth else ()):
            _write_labels(staging / FOLDERS[f"{set_key}_labels"] / LABEL_CSV[set_key], labels[set_key])
        _write_groupings(staging / FOLDERS["train_labels"] / GROUPINGS_CSV, groupings.get("train", []))
        _move_into_place(staging, data_dir, old=folder.manifest, spec=spec)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    lesions = {}
    for _, lesion_id, _ in groupings.get("train", []):
        lesions[lesion_id] = lesions.get(lesion_id, 0) + 1
    return {
        "data_dir": str(data_dir),
        "seed": spec.seed,
        "images": {
            k: per_set.get(k, 0) for k in ("seg_train", "seg_validation", "seg_test", "train", "validation", "test")
        },
        "classes": per_class,
        "train_lesions": len(lesions),
        "train_lesions_with_several_images": sum(1 for n in lesions.values() if n > 1),
        "validation_ground_truth": spec.validation_ground_truth,
    }


def _move_into_place(staging: Path, data_dir: Path, old: Manifest | None, spec: DemoSpec) -> None:
    """Move the staged files to their final names, delete the earlier demo's leftovers, record both."""
    new = _planned_paths(spec)
    previous = dict(old.files) if old else {}
    details = {"spec": asdict(spec)}
    staged = {relative: WrittenFile.of(staging / relative) for relative in new}
    # First name the new files too, so that a kill from here on leaves every file of ours listed.
    write_manifest(data_dir, MARKER, Manifest(_WRITTEN_BY, {**previous, **staged}, details))
    final = {}
    for relative in new:
        target = data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, target)  # same inode: size, time and contents as recorded
        final[relative] = staged[relative]
    for relative in sorted(set(previous) - set(new)):
        (data_dir / relative).unlink(missing_ok=True)
    for name in {relative.split("/", 1)[0] for relative in previous} - {relative.split("/", 1)[0] for relative in new}:
        _remove_if_empty(data_dir / name)
    write_manifest(data_dir, MARKER, Manifest(_WRITTEN_BY, final, details))


def _remove_if_empty(folder: Path) -> None:
    """Remove an ISIC folder of an earlier demo once it holds nothing (the generator makes no sub-folders)."""
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    """Command line: draw the default demo data set into DATA_DIR."""
    parser = argparse.ArgumentParser(prog="python -m lesionflow.demo", description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path, help="folder to write the ISIC 2018 layout into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--validation-ground-truth", action="store_true", help="also write the Task 3 validation ground-truth CSV"
    )
    args = parser.parse_args(argv)
    try:
        spec = DemoSpec(seed=args.seed, validation_ground_truth=args.validation_ground_truth)
        start = time.perf_counter()
        summary = generate_demo(args.data_dir, spec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
