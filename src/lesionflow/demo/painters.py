"""Drawing a lesion: smooth noise and colour helpers, the lesion's geometry, and one painter per class.

Painters work on a canvas (the image, padded for lesions imaged more than once, and drawn at most about
1000 px across). Sizes of features are given in units of ``pixel_size``: the size of one pixel of a
600×450 image, in canvas pixels, so structures look alike at every image size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# --------------------------------------------------------------------------------------------------
# Drawing primitives.


def noise(rng: np.random.Generator, height: int, width: int, feature_px: float) -> np.ndarray:
    """Smooth zero-mean, unit-variance noise with blobs about ``feature_px`` across (bicubic upsampling)."""
    feature_px = max(2.0, float(feature_px))
    gh, gw = int(math.ceil(height / feature_px)) + 3, int(math.ceil(width / feature_px)) + 3
    grid = rng.standard_normal((gh, gw), dtype=np.float32)
    box = (1.0, 1.0, 1.0 + width / feature_px, 1.0 + height / feature_px)
    out = np.asarray(Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC, box=box))
    out = out - out.mean()
    return out / (out.std() + 1e-6)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """0 below ``e0``, 1 beyond ``e1`` (either may be the larger), a smooth cubic ramp between."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def mix(a: np.ndarray, b: Any, t: np.ndarray) -> np.ndarray:
    """Blend colour image ``a`` towards colour ``b`` by weight ``t`` (H×W)."""
    t = t[..., None]
    return a + (np.asarray(b, dtype=np.float32) - a) * t


def jitter(
    rng: np.random.Generator, rgb: tuple[float, float, float], bright: float = 0.08, shift: float = 5.0
) -> np.ndarray:
    """``rgb`` with a random brightness (±``bright``) and per-channel tint (``shift`` percent, ≤ 2 sd)."""
    tint = 1.0 + np.clip(rng.normal(0, shift / 100, 3), -0.02 * shift, 0.02 * shift)
    c = np.asarray(rgb, dtype=np.float32) * rng.uniform(1 - bright, 1 + bright) * tint
    return np.clip(c, 0, 255).astype(np.float32)


def dots(
    rng: np.random.Generator, height: int, width: int, points: np.ndarray, radius: tuple[float, float]
) -> np.ndarray:
    """A 0..1 layer of soft round dots centred on ``points`` (N×2, x/y pixels), radii drawn from ``radius``."""
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    for x, y in points:
        r = rng.uniform(*radius)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    layer = layer.filter(ImageFilter.GaussianBlur(0.6))
    return np.asarray(layer, dtype=np.float32) / 255.0


# --------------------------------------------------------------------------------------------------
# The lesion's geometry.

#: Per class: area fraction range of the image, border irregularity, highest harmonic of the border.
SHAPE: dict[str, tuple[float, float, float, int]] = {
    "MEL": (0.30, 0.55, 0.16, 12),
    "NV": (0.20, 0.45, 0.04, 4),
    "BCC": (0.22, 0.45, 0.09, 8),
    "AKIEC": (0.22, 0.50, 0.09, 8),
    "BKL": (0.25, 0.55, 0.07, 6),
    "DF": (0.16, 0.24, 0.04, 4),
    "VASC": (0.20, 0.40, 0.12, 6),
}

#: Border softness in pixels (at 600×450) per class.
EDGE: dict[str, tuple[float, float]] = {
    "MEL": (1.5, 3.0),
    "NV": (2.0, 4.0),
    "BCC": (2.0, 4.0),
    "AKIEC": (2.5, 5.0),
    "BKL": (1.0, 2.5),
    "DF": (3.0, 5.0),
    "VASC": (1.5, 3.0),
}


@dataclass(frozen=True)
class LesionFields:
    """Per-pixel maps of a lesion on a canvas (float32, canvas height × width).

    ``u`` and ``v`` are coordinates along the lesion's long and short axes, in units of the semi-axes;
    ``rho`` is their radius (``rho / f(theta) < 1`` inside); ``depth`` is 0 on the border and 1 at the
    centre; ``signed_distance`` approximates the distance to the border in canvas pixels (positive inside).
    """

    u: np.ndarray
    v: np.ndarray
    rho: np.ndarray
    depth: np.ndarray
    signed_distance: np.ndarray


class LesionShape:
    """The lesion's geometry on a canvas: an irregular, rotated, elongated blob.

    Lengths are in image pixels, with the canvas padding ``pad`` included in the centre; ``scale`` is
    canvas pixels per image pixel (below 1 for large Task 1 images).
    """

    def __init__(
        self, rng: np.random.Generator, class_name: str, width: int, height: int, pad: int, scale: float
    ) -> None:
        area_lo, area_hi, irregular, kmax = SHAPE[class_name]
        area = rng.uniform(area_lo, area_hi) * width * height  # of the image, not the padded canvas
        self.elongation = rng.uniform(1.0, 1.35 if class_name != "NV" else 1.15)
        self.semi_major = math.sqrt(area * self.elongation / math.pi)
        self.semi_minor = self.semi_major / self.elongation
        self.angle = (0.0 if width >= height else math.pi / 2) + rng.normal(0, 0.3)
        self.centre_x = pad + width / 2 + rng.uniform(-0.07, 0.07) * width
        self.centre_y = pad + height / 2 + rng.uniform(-0.07, 0.07) * height
        theta = np.linspace(-math.pi, math.pi, 4097, dtype=np.float64)
        f = np.ones_like(theta)
        for k in range(2, kmax + 1):
            amp = irregular * rng.normal() / k**0.9
            f += amp * np.cos(k * theta + rng.uniform(0, 2 * math.pi))
        f = np.maximum(f, 0.35)
        f /= math.sqrt(np.mean(f[:-1] ** 2))  # keep the requested area
        #: The border's radius f(theta) relative to the ellipse, at 4097 angles from -pi to pi.
        self.radius_table = f.astype(np.float32)
        self.scale = scale

    @property
    def radius_px(self) -> float:
        """The lesion's mean radius (geometric mean of the semi-axes) in canvas pixels."""
        return math.sqrt(self.semi_major * self.semi_minor) * self.scale

    def fields(self, canvas_width: int, canvas_height: int) -> LesionFields:
        s = self.scale
        y, x = np.mgrid[0:canvas_height, 0:canvas_width].astype(np.float32)
        x = (x + 0.5) / s - self.centre_x
        y = (y + 0.5) / s - self.centre_y
        ca, sa = math.cos(self.angle), math.sin(self.angle)
        u = (x * ca + y * sa) / self.semi_major
        v = (-x * sa + y * ca) / self.semi_minor
        rho = np.hypot(u, v)
        idx = ((np.arctan2(v, u) + math.pi) * (4096 / (2 * math.pi))).astype(np.int32)
        f = self.radius_table[np.clip(idx, 0, 4096)]
        depth = np.clip(1.0 - rho / f, 0.0, 1.0)
        signed_distance = (f - rho) * math.sqrt(self.semi_major * self.semi_minor) * s
        return LesionFields(u=u, v=v, rho=rho, depth=depth, signed_distance=signed_distance)


def lesion_points(rng: np.random.Generator, lesion: LesionShape, n: int, rmin: float, rmax: float) -> np.ndarray:
    """``n`` random canvas points (x, y) at normalised radius ``rmin..rmax`` of the lesion."""
    t = rng.uniform(0, 2 * math.pi, n)
    idx = ((t) * (4096 / (2 * math.pi))).astype(int)
    r = rng.uniform(rmin, rmax, n) * lesion.radius_table[np.clip(idx, 0, 4096)]
    t = t - math.pi
    u, v = r * np.cos(t) * lesion.semi_major, r * np.sin(t) * lesion.semi_minor
    ca, sa = math.cos(lesion.angle), math.sin(lesion.angle)
    x = (lesion.centre_x + u * ca - v * sa) * lesion.scale
    y = (lesion.centre_y + u * sa + v * ca) * lesion.scale
    return np.stack([x, y], axis=1)


# --------------------------------------------------------------------------------------------------
# Per-class lesion colour and structure. Each returns the lesion's colour over the whole canvas
# (float32 height × width × 3, 0..255); outside the lesion it is hidden by the alpha.


def paint_mel(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Melanoma: dark, multi-toned and asymmetric; blue-grey veil, atypical network, irregular dots."""
    depth = fields.depth
    radius = lesion.radius_px
    light = jitter(rng, (128, 82, 58))
    dark = jitter(rng, (76, 48, 38))
    black = jitter(rng, (36, 27, 27), 0.1, 3)
    bluegrey = jitter(rng, (108, 110, 126), 0.06, 4)
    gdir = rng.uniform(0, 2 * math.pi)
    grad = (fields.u * math.cos(gdir) + fields.v * math.sin(gdir)) * 0.8  # asymmetric colour
    colour = np.broadcast_to(light, (height, width, 3)).astype(np.float32)
    colour = mix(
        colour, dark, smoothstep(-0.6, 0.6, noise(rng, height, width, radius / 3) + 1.4 * depth - 0.3 + 0.4 * grad)
    )
    n1 = noise(rng, height, width, radius / 2.5) + 0.5 * noise(rng, height, width, radius / 8)
    colour = mix(colour, black, smoothstep(0.1, 1.1, n1 + grad) * 0.9)
    veil = smoothstep(0.7, 1.5, noise(rng, height, width, radius / 3) + 0.5 * depth - 0.5 * grad)
    colour = mix(colour, bluegrey, veil * rng.uniform(0.6, 0.85))
    # atypical network at the periphery, irregular dots and globules
    net = 1.0 - smoothstep(0.0, 0.22, np.abs(noise(rng, height, width, radius / 9)))
    colour = colour * (1.0 - 0.4 * (net * (1.0 - smoothstep(0.25, 0.55, depth))))[..., None]
    points = lesion_points(rng, lesion, int(rng.integers(15, 45)), 0.55, 0.97)
    colour = mix(colour, black, dots(rng, height, width, points, (1.5 * pixel_size, 4.5 * pixel_size)) * 0.9)
    if rng.random() < 0.4:  # regression: whitish scar-like area
        reg = smoothstep(1.0, 1.7, noise(rng, height, width, radius / 4)) * smoothstep(0.1, 0.3, depth)
        colour = mix(colour, jitter(rng, (200, 182, 182)), reg * 0.7)
    return colour


def paint_nv(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Nevus: uniform brown, a regular pigment network, sometimes globules."""
    depth = fields.depth
    radius = lesion.radius_px
    brown = jitter(rng, (152, 96, 64), 0.10, 4)
    colour = (
        brown * (1.0 - 0.16 * smoothstep(0.0, 0.8, depth) + 0.05 * noise(rng, height, width, radius / 2))[..., None]
    )
    colour = np.ascontiguousarray(colour, dtype=np.float32)
    # regular pigment network, faint towards the periphery
    net = 1.0 - smoothstep(0.0, 0.25, np.abs(noise(rng, height, width, radius / 11)))
    colour = colour * (1.0 - rng.uniform(0.12, 0.22) * net * smoothstep(0.0, 0.25, depth))[..., None]
    if rng.random() < 0.4:  # globular pattern
        points = lesion_points(rng, lesion, int(rng.integers(20, 60)), 0.0, 0.75)
        colour = mix(colour, brown * 0.7, dots(rng, height, width, points, (2.0 * pixel_size, 4.0 * pixel_size)) * 0.7)
    return colour


def vessel_layer(
    rng: np.random.Generator, lesion: LesionShape, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Arborising (tree-like branching) vessels: bright red lines, thick trunks to thin twigs."""
    radius = lesion.radius_px
    layer = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(layer)
    stack = []
    for x, y in lesion_points(rng, lesion, int(rng.integers(3, 7)), 0.1, 0.7):
        stack.append((x, y, rng.uniform(0, 2 * math.pi), radius * rng.uniform(0.25, 0.45), 3.2 * pixel_size, 3))
    while stack:
        x, y, ang, length, line_width, levels = stack.pop()
        points = [(x, y)]
        for _ in range(4):
            ang += rng.normal(0, 0.35)
            x, y = x + math.cos(ang) * length / 4, y + math.sin(ang) * length / 4
            points.append((x, y))
        draw.line(points, fill=255, width=max(1, int(round(line_width))), joint="curve")
        if levels > 0:
            for side in (-1, 1):
                stack.append(
                    (x, y, ang + side * rng.uniform(0.3, 0.9), length * 0.65, max(1.0, line_width * 0.65), levels - 1)
                )
    layer = layer.filter(ImageFilter.GaussianBlur(0.5 * pixel_size))
    return np.asarray(layer, dtype=np.float32) / 255.0


def paint_bcc(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Basal cell carcinoma: pink and pearly, blue-grey nests, sometimes ulcerated, arborising vessels."""
    depth = fields.depth
    radius = lesion.radius_px
    pink = jitter(rng, (214, 136, 162), 0.06, 4)
    colour = pink * (1.0 + 0.05 * noise(rng, height, width, radius / 3))[..., None]
    colour = np.ascontiguousarray(colour, dtype=np.float32)
    pearl = smoothstep(0.6, 1.6, noise(rng, height, width, radius / 4)) * 0.6
    colour = mix(colour, jitter(rng, (240, 212, 220), 0.03, 3), pearl)
    if rng.random() < 0.7:  # blue-grey ovoid nests
        points = lesion_points(rng, lesion, int(rng.integers(2, 6)), 0.1, 0.7)
        nests = (
            np.asarray(
                Image.fromarray(
                    (dots(rng, height, width, points, (0.05 * radius, 0.1 * radius)) * 255).astype(np.uint8)
                ).filter(ImageFilter.GaussianBlur(0.02 * radius)),
                dtype=np.float32,
            )
            / 255.0
        )
        colour = mix(colour, jitter(rng, (105, 105, 135), 0.05, 4), nests * 0.75)
    if rng.random() < 0.3:  # ulceration: dark red-brown crust
        ulc = smoothstep(1.2, 1.6, noise(rng, height, width, radius / 5)) * smoothstep(0.2, 0.4, depth)
        colour = mix(colour, jitter(rng, (120, 45, 40)), ulc)
    vessel_red = jitter(rng, (185, 25, 45), 0.06, 4)  # drawn before the vessels: keep this order
    colour = mix(colour, vessel_red, vessel_layer(rng, lesion, height, width, pixel_size) * 0.95)
    return colour


def paint_akiec(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Actinic keratosis / intraepithelial carcinoma: red, white-yellow scale, strawberry pattern."""
    radius = lesion.radius_px
    red = jitter(rng, (204, 72, 58), 0.07, 4)
    colour = red * (1.0 + 0.07 * noise(rng, height, width, radius / 3))[..., None]
    colour = np.ascontiguousarray(colour, dtype=np.float32)
    # surface scale: white-yellow flakes in a speckled, patchy layer
    speck = noise(rng, height, width, 3.0 * pixel_size) + 0.9 * noise(rng, height, width, radius / 4)
    colour = mix(colour, jitter(rng, (238, 224, 196), 0.03, 3), smoothstep(0.9, 1.6, speck) * 0.9)
    # strawberry pattern: white follicular openings and dotted vessels
    points = lesion_points(rng, lesion, int(rng.integers(25, 60)), 0.0, 0.9)
    colour = mix(colour, (245, 236, 222), dots(rng, height, width, points, (1.5 * pixel_size, 3.0 * pixel_size)) * 0.85)
    points = lesion_points(rng, lesion, int(rng.integers(30, 80)), 0.0, 0.9)
    colour = mix(colour, (150, 28, 34), dots(rng, height, width, points, (0.8 * pixel_size, 1.8 * pixel_size)) * 0.8)
    return colour


def paint_bkl(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Benign keratosis: tan, cerebriform fissures and gyri, milia-like cysts and comedo-like openings."""
    radius = lesion.radius_px
    tan = jitter(rng, (190, 146, 100), 0.08, 5)
    colour = (
        tan
        * (1.0 + 0.06 * noise(rng, height, width, radius / 3) + 0.05 * noise(rng, height, width, 2.5 * pixel_size))[
            ..., None
        ]
    )
    colour = np.ascontiguousarray(colour, dtype=np.float32)
    # cerebriform surface: dark fissures between pale gyri
    n = noise(rng, height, width, radius / 6) + 0.3 * noise(rng, height, width, radius / 15)
    fissure = 1.0 - smoothstep(0.05, 0.5, np.abs(n))
    colour = colour * (0.92 + 0.16 * smoothstep(0.3, 1.5, np.abs(n)))[..., None]  # raised gyri
    colour = mix(colour, tan * np.float32(0.55), fissure * 0.85)
    # milia-like cysts (white) and comedo-like openings (dark)
    points = lesion_points(rng, lesion, int(rng.integers(6, 20)), 0.0, 0.85)
    colour = mix(colour, (240, 232, 210), dots(rng, height, width, points, (2.0 * pixel_size, 4.0 * pixel_size)) * 0.9)
    points = lesion_points(rng, lesion, int(rng.integers(4, 14)), 0.0, 0.85)
    colour = mix(colour, (95, 65, 45), dots(rng, height, width, points, (2.0 * pixel_size, 3.5 * pixel_size)) * 0.85)
    return colour


def paint_df(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Dermatofibroma: a brown ring with a fine network around a white central patch."""
    depth = fields.depth
    radius = lesion.radius_px
    ring = jitter(rng, (150, 100, 70), 0.08, 4)
    centre = jitter(rng, (240, 226, 220), 0.03, 3)
    colour = ring * (1.0 + 0.05 * noise(rng, height, width, radius / 3))[..., None]
    colour = np.ascontiguousarray(colour, dtype=np.float32)
    net = 1.0 - smoothstep(0.0, 0.3, np.abs(noise(rng, height, width, radius / 8)))
    colour = colour * (1.0 - 0.2 * net)[..., None]
    colour = colour * (1.0 + 0.12 * (1.0 - smoothstep(0.0, 0.3, depth)))[..., None]  # ring fades outwards
    lo = rng.uniform(0.3, 0.45)
    patch = smoothstep(lo, lo + 0.35, depth + 0.15 * noise(rng, height, width, radius / 3))
    return mix(colour, centre, patch * 0.95)


def paint_vasc(
    rng: np.random.Generator, lesion: LesionShape, fields: LesionFields, height: int, width: int, pixel_size: float
) -> np.ndarray:
    """Vascular lesion: red-purple lagoons separated by pale septa."""
    radius = lesion.radius_px
    lagoon = jitter(rng, (140, 28, 72), 0.08, 4)
    deep = jitter(rng, (92, 18, 58), 0.08, 4)
    septa = jitter(rng, (205, 140, 160), 0.04, 3)
    colour = mix(
        np.broadcast_to(lagoon, (height, width, 3)).astype(np.float32),
        deep,
        smoothstep(-0.5, 1.0, noise(rng, height, width, radius / 3)),
    )
    lob = np.abs(noise(rng, height, width, radius / 5) + 0.25 * noise(rng, height, width, radius / 12))
    colour = mix(colour, septa, (1.0 - smoothstep(0.0, 0.22, lob)) * 0.8)
    return colour * (0.93 + 0.12 * smoothstep(0.0, 1.2, lob))[..., None]


#: A painter: (rng, lesion, fields, canvas height, canvas width, pixel_size) -> the lesion's colour.
Painter = Callable[[np.random.Generator, LesionShape, LesionFields, int, int, float], np.ndarray]

#: The painter of each class.
PAINTERS: dict[str, Painter] = {
    "MEL": paint_mel,
    "NV": paint_nv,
    "BCC": paint_bcc,
    "AKIEC": paint_akiec,
    "BKL": paint_bkl,
    "DF": paint_df,
    "VASC": paint_vasc,
}
