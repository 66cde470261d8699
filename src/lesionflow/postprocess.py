"""Post-processing of segmentation outputs: smooth, threshold, keep the largest lesion, find its box.

The original project looped over every connected component to find the largest one; here the image
is labelled once and the component sizes come from one ``np.bincount``. Components are 8-connected
(``skimage.measure.label``'s default in 2-D, which the original used; ``scipy.ndimage.label``'s own
default is 4-connectivity). When two components tie for the largest, the one whose first pixel
comes first in row-major order wins, as in the original's strict ``>`` loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
from PIL import Image
from scipy import ndimage

from .errors import InputError

#: 8-connectivity in 2-D.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class PostProcess:
    """The config's ``segmentation.postprocess`` section (its defaults live in the schema)."""

    sigma: float
    threshold: float
    largest_component: bool
    fill_holes: bool
    resize: str  # probability: upsample the map, then threshold; mask: threshold at S×S, upsample the mask

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "PostProcess":
        return cls(
            sigma=float(section["sigma"]),
            threshold=float(section["threshold"]),
            largest_component=bool(section["largest_component"]),
            fill_holes=bool(section["fill_holes"]),
            resize=str(section["resize"]),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _check_2d(array: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (H×W), got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InputError(f"{name} must be numeric or boolean, got dtype {array.dtype}")
    return array


def _largest(foreground: np.ndarray) -> np.ndarray:
    """Largest 8-connected component of a 2-D boolean array (all False if there is none)."""
    labels, count = ndimage.label(foreground, structure=_EIGHT_CONNECTED)
    if count <= 1:
        return labels.astype(bool)
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    sizes[0] = 0  # background
    return labels == int(np.argmax(sizes))  # argmax: first (lowest, raster-order) label on ties


def largest_component(mask: np.ndarray) -> np.ndarray:
    """Boolean mask of the largest 8-connected component of ``mask`` (non-zero = foreground).

    An empty mask gives an all-False mask of the same shape.
    """
    mask = _check_2d(mask, "mask")
    return _largest(mask.astype(bool, copy=False))


def postprocess_mask(
    prob: np.ndarray,
    sigma: float = 2.0,
    threshold: float = 0.5,
    largest_component: bool = True,
    fill_holes: bool = False,
) -> np.ndarray:
    """Turn an H×W probability map into a boolean lesion mask.

    Gaussian smoothing (``scipy.ndimage.gaussian_filter``, default reflect mode; ``sigma=0`` skips it),
    then ``> threshold``, then (optionally) only the largest 8-connected component is kept and (optionally)
    its holes filled (a lesion is one solid region; pale centres are often missed otherwise). Float
    input is filtered in its own precision (as the original did); other dtypes are cast to float64.
    """
    prob = _check_2d(prob, "prob")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise InputError(f"sigma must be a finite number >= 0, got {sigma!r}")
    if not math.isfinite(threshold):
        raise InputError(f"threshold must be finite, got {threshold!r}")
    if not np.issubdtype(prob.dtype, np.floating):
        prob = prob.astype(np.float64)
    elif np.isnan(prob).any():
        raise InputError("prob contains NaN values")
    smoothed = ndimage.gaussian_filter(prob, sigma=sigma) if sigma > 0 else prob
    foreground = smoothed > threshold
    if largest_component:
        foreground = _largest(foreground)
    return ndimage.binary_fill_holes(foreground) if fill_holes else foreground


def bounding_box(mask: np.ndarray, margin_fraction: float = 0.0) -> tuple[slice, slice] | None:
    """Row and column slices of the largest component's bounding box, or None if ``mask`` is empty.

    The box is widened on each side by ``margin_fraction`` × its own height (rows) or width (columns),
    rounded half up to whole pixels, then clipped to the image. ``image[bounding_box(mask)]`` crops it.
    """
    if not (math.isfinite(margin_fraction) and margin_fraction >= 0):
        raise InputError(f"margin_fraction must be a finite number >= 0, got {margin_fraction!r}")
    component = largest_component(mask)
    rows = np.flatnonzero(component.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(component.any(axis=0))
    height, width = component.shape
    spans = []
    for first, last, size in ((rows[0], rows[-1] + 1, height), (cols[0], cols[-1] + 1, width)):
        pad = math.floor(margin_fraction * (last - first) + 0.5)
        spans.append(slice(int(max(0, first - pad)), int(min(size, last + pad))))
    return spans[0], spans[1]


def full_size_mask(prob: np.ndarray, height: int, width: int, settings: PostProcess) -> np.ndarray:
    """The boolean lesion mask at an image's full (``height``, ``width``) size from its S×S probability map.

    ``settings.resize``: ``probability`` smooths the map at S×S (``sigma``), resizes it bilinearly to full
    size, then thresholds, keeps the largest lesion and fills its holes there; ``mask`` (the original
    project's order) smooths, thresholds and keeps the largest lesion at S×S, then resizes that 0/255 mask
    bilinearly and thresholds it at 128 (and fills holes at full size when ``fill_holes``).
    """
    prob = _check_2d(prob, "prob").astype(np.float32, copy=False)
    if settings.resize == "mask":
        small = postprocess_mask(
            prob, sigma=settings.sigma, threshold=settings.threshold, largest_component=settings.largest_component
        )
        grey = Image.fromarray(small.astype(np.uint8) * 255, mode="L")
        full = np.asarray(grey.resize((width, height), Image.Resampling.BILINEAR)) >= 128
        return ndimage.binary_fill_holes(full) if settings.fill_holes else full
    if settings.sigma > 0:
        prob = ndimage.gaussian_filter(prob, settings.sigma)
    full = np.asarray(Image.fromarray(prob, mode="F").resize((width, height), Image.Resampling.BILINEAR))
    return postprocess_mask(
        full,
        sigma=0.0,
        threshold=settings.threshold,
        largest_component=settings.largest_component,
        fill_holes=settings.fill_holes,
    )
