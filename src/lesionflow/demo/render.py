"""Rendering one planned image: the lesion on its canvas, skin, hairs, the dermatoscope's vignette, blur
and sensor noise, with the exact lesion mask."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .painters import EDGE, PAINTERS, LesionShape, jitter, mix, noise, smoothstep
from .plan import STREAM_IMAGE, PlannedImage

#: Skin tones to blend a patient's skin from (RGB).
SKIN_PALETTE = np.array(
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
    item: PlannedImage, seed: int, width: int, height: int, pad: int, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, LesionShape]:
    """The lesion's colour, opacity and coverage on a (padded) canvas, from the lesion's own seed only.

    Coverage is a narrow 0..1 ramp across the border; the lesion region (the mask) is coverage >= 0.5.
    Opacity is coverage times a slightly thinner pigment at the rim.
    """
    rng = np.random.default_rng([seed, item.lesion_stream, item.lesion_index])
    lesion = LesionShape(rng, item.class_name, width, height, pad, scale)
    canvas_width = int(round((width + 2 * pad) * scale))
    canvas_height = int(round((height + 2 * pad) * scale))
    fields = lesion.fields(canvas_width, canvas_height)
    pixel_size = max(0.5, scale * math.sqrt(width * height / (600 * 450)))  # feature size unit: a pixel at 600×450
    colour = PAINTERS[item.class_name](rng, lesion, fields, canvas_height, canvas_width, pixel_size)
    edge_width = rng.uniform(*EDGE[item.class_name]) * pixel_size
    coverage = np.clip(0.5 + fields.signed_distance / edge_width, 0.0, 1.0)
    rim = rng.uniform(0.7, 0.85)
    alpha = coverage * (rim + (1.0 - rim) * smoothstep(0.0, 0.15, fields.depth))
    return (
        np.clip(colour, 0, 255).astype(np.float32),
        alpha.astype(np.float32),
        coverage.astype(np.float32),
        lesion,
    )


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
    """A patient's skin colour: a random blend of two palette tones."""
    i, j = rng.choice(len(SKIN_PALETTE), 2, replace=False)
    return SKIN_PALETTE[i] + (SKIN_PALETTE[j] - SKIN_PALETTE[i]) * np.float32(rng.uniform())


def _skin(rng: np.random.Generator, tone: np.ndarray, height: int, width: int, pixel_size: float) -> np.ndarray:
    """Skin around the lesion: ``tone`` with soft shading, faint furrows and patchy redness."""
    base = tone * np.float32(rng.uniform(0.97, 1.03))
    big = max(height, width)
    shade = 1.0 + 0.045 * noise(rng, height, width, big / 2.5)
    furrows = 1.0 - (1.0 - smoothstep(0.0, 0.15, np.abs(noise(rng, height, width, 14 * pixel_size)))) * 0.04
    skin = base * (shade * furrows)[..., None]
    ery = np.clip(noise(rng, height, width, big / 5), 0, None) * rng.uniform(0.02, 0.07)
    skin = skin * (1.0 + ery[..., None] * np.array([0.25, -0.45, -0.35], dtype=np.float32))
    return skin.astype(np.float32)


def _hairs(rng: np.random.Generator, height: int, width: int, pixel_size: float) -> np.ndarray | None:
    """A 0..1 layer of curved hairs across the image, or None (no hairs) for about 45 % of images."""
    if rng.random() < 0.45:
        return None
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    diag = math.hypot(width, height)
    t = np.linspace(0, 1, 24)[:, None]
    for _ in range(int(rng.integers(1, 14))):
        p0 = rng.uniform([-0.1 * width, -0.1 * height], [1.1 * width, 1.1 * height])
        ang = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(0.25, 0.9) * diag
        p2 = p0 + length * np.array([math.cos(ang), math.sin(ang)])
        p1 = (p0 + p2) / 2 + rng.normal(0, 0.12 * length, 2)
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        draw.line(
            [tuple(p) for p in curve],
            fill=int(rng.integers(170, 256)),
            width=max(1, int(round(rng.uniform(1.0, 3.2) * pixel_size))),
            joint="curve",
        )
    layer = layer.filter(ImageFilter.GaussianBlur(0.5 * pixel_size))
    return np.asarray(layer, dtype=np.float32) / 255.0


def _vignette(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The dermatoscope's round field of view: 1 inside, dark towards the corners."""
    hd = math.hypot(width, height) / 2
    cx, cy = width / 2 + rng.normal(0, 0.02 * width), height / 2 + rng.normal(0, 0.02 * height)
    y, x = np.ogrid[0:height, 0:width]
    dist = np.sqrt(((x - cx) ** 2).astype(np.float32) + ((y - cy) ** 2).astype(np.float32)) / hd
    radius = rng.uniform(0.80, 0.97)
    fall = rng.uniform(0.05, 0.12)
    floor = rng.uniform(0.02, 0.10)
    v = smoothstep(radius, radius - fall, dist)
    return (floor + (1 - floor) * v).astype(np.float32)


def render_image(item: PlannedImage, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The image (H×W×3 uint8) and its exact lesion mask (H×W bool) of ``item``, drawn with ``seed``."""
    w, h = item.size
    scale = min(1.0, 1000.0 / max(w, h))  # huge Task 1 images: draw at ≤1000 px, then upsample
    rw, rh = int(round(w * scale)), int(round(h * scale))
    pixel_size = max(0.5, scale * math.sqrt(w * h / (600 * 450)))
    irng = np.random.default_rng([seed, STREAM_IMAGE, int(item.image_id[5:])])

    pad = int(round(0.12 * max(w, h))) if item.group_size > 1 else 0
    colour, alpha, coverage, lesion = _render_lesion(item, seed, w, h, pad, scale)
    coeffs = None
    if item.variant > 0:  # re-imaged lesion: slightly rotated, scaled and shifted
        rot = math.radians(irng.uniform(-15, 15))
        zoom = irng.uniform(0.9, 1.1)
        ox, oy = (lesion.centre_x - pad) * scale, (lesion.centre_y - pad) * scale
        qx, qy = lesion.centre_x * scale, lesion.centre_y * scale
        tx, ty = irng.normal(0, 0.03 * rw), irng.normal(0, 0.03 * rh)
        c, s = math.cos(rot) / zoom, math.sin(rot) / zoom
        # output (x, y) -> canvas: q + R(-rot)/zoom · ((x, y) - o - t)
        coeffs = (c, s, qx - c * (ox + tx) - s * (oy + ty), -s, c, qy + s * (ox + tx) - c * (oy + ty))
    colour, alpha, coverage = _warp([colour, alpha, coverage], (rw, rh), coeffs, int(round(pad * scale)))

    tone = _skin_tone(np.random.default_rng([seed, item.lesion_stream, item.lesion_index, 1]))  # the patient's skin
    skin = _skin(irng, tone, rh, rw, pixel_size)
    img = skin + (colour - skin) * alpha[..., None]
    hair = _hairs(irng, rh, rw, pixel_size)
    if hair is not None:
        img = mix(img, jitter(irng, (40, 28, 22), 0.2, 4), hair * 0.9)
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
