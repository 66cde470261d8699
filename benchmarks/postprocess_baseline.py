"""The original project's segmentation post-processing, kept as the baseline for benchmarks.

Faithful to the original (ISIC 2018 project, ``task1_post_process``): ``scipy.ndimage.gaussian_filter``
on the prediction in its own dtype when sigma > 0, ``> threshold``, ``skimage`` labelling (default
8-connectivity), then a Python loop over every label value that measures each component with
``(labels == i).sum()`` and keeps the first strictly largest. One image at a time, and without the
original's in-place overwrite of its input. ``lesionflow.postprocess.postprocess_mask`` must give the
identical result (tests/unit/test_postprocess.py checks it).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.measure import label


def postprocess_original(prob: np.ndarray, sigma: float, threshold: float) -> np.ndarray:
    """Smooth, threshold and keep the largest connected component the original's way (a loop)."""
    image = np.array(prob)  # a copy: the original wrote back into its input
    if sigma > 0.0:
        image = gaussian_filter(input=image, sigma=sigma)
    thresholded = image > threshold
    labels, num_labels = label(thresholded, return_num=True)
    best_label, best_size = -1, 0
    for label_value in range(0, num_labels + 1):
        if thresholded[labels == label_value].sum() == 0:  # background
            continue
        size = (labels == label_value).sum()
        if size > best_size:
            best_size, best_label = size, label_value
    if best_label == -1:  # nothing above the threshold
        return np.zeros(thresholded.shape, dtype=bool)
    return labels == best_label
