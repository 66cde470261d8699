"""lesionflow.postprocess: vectorised largest component, against a loop reference and the original."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from scipy import ndimage

from lesionflow.errors import InputError
from lesionflow.postprocess import bounding_box, largest_component, postprocess_mask

from support import ROOT

_BASELINE = ROOT / "benchmarks" / "postprocess_baseline.py"


def _load_baseline():
    spec = importlib.util.spec_from_file_location("postprocess_baseline", _BASELINE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _reference_largest(mask: np.ndarray) -> np.ndarray:
    """Plain loop: 8-connected components, first strictly largest in label (raster) order."""
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    best, best_size = 0, 0
    for value in range(1, count + 1):
        size = int(np.sum(labels == value))
        if size > best_size:
            best, best_size = value, size
    return labels == best if best else np.zeros(mask.shape, bool)


def _noisy_prediction(rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """A blurry lesion-like blob, a few smaller false-positive spots and speckle: float32 in [0, 1]."""
    yy, xx = np.mgrid[:size, :size]

    def disk(radius: float) -> np.ndarray:
        cy, cx = rng.uniform(0, size, 2)
        return 1.0 / (1.0 + np.exp((np.hypot(yy - cy, xx - cx) - radius) / 2.0))

    prob = 0.9 * disk(rng.uniform(0.1, 0.3) * size)
    for _ in range(rng.integers(3, 8)):
        prob = np.maximum(prob, 0.9 * disk(rng.uniform(0.02, 0.08) * size))
    prob += 0.5 * (rng.random((size, size)) - 0.5)
    return np.clip(prob, 0, 1).astype(np.float32)


@pytest.mark.parametrize("sigma, threshold", [(2.0, 0.5), (0.0, 0.5), (1.0, 0.4), (0.5, 0.6)])
def test_matches_reference_on_noisy_predictions(sigma, threshold):
    rng = np.random.default_rng(int(sigma * 10 + threshold * 100))
    for _ in range(8):
        prob = _noisy_prediction(rng, size=64)
        smoothed = ndimage.gaussian_filter(prob, sigma) if sigma else prob
        expected_all = smoothed > threshold
        assert np.array_equal(postprocess_mask(prob, sigma, threshold, largest_component=False), expected_all)
        result = postprocess_mask(prob, sigma, threshold)
        assert np.array_equal(result, _reference_largest(expected_all))
        assert result.dtype == bool and result.shape == prob.shape
        if sigma == 0.0:
            assert ndimage.label(expected_all, structure=np.ones((3, 3)))[1] > 1  # noise really leaves pieces


def test_identical_to_original_method():
    """The benchmark baseline (the original's loop) and the vectorised version agree exactly."""
    baseline = _load_baseline()
    rng = np.random.default_rng(2018)
    pieces = 0
    for _ in range(20):
        prob = _noisy_prediction(rng, size=96)
        original = baseline.postprocess_original(prob, 2.0, 0.5)
        ours = postprocess_mask(prob, sigma=2.0, threshold=0.5)
        assert original.dtype == bool and original.any()
        pieces += ndimage.label(postprocess_mask(prob, 2.0, 0.5, largest_component=False), structure=np.ones((3, 3)))[1]
        assert np.array_equal(ours, original)
    assert pieces > 40  # the largest-component step really chooses
    noisy = (rng.random((96, 96)) ** 3).astype(np.float32)  # many small pieces, sigma 0
    assert np.array_equal(baseline.postprocess_original(noisy, 0.0, 0.5), postprocess_mask(noisy, 0.0, 0.5))
    empty = np.zeros((96, 96), np.float32)
    assert not baseline.postprocess_original(empty, 2.0, 0.5).any()


def test_empty_and_single_pixel():
    assert not postprocess_mask(np.zeros((10, 12))).any()
    assert postprocess_mask(np.zeros((10, 12))).shape == (10, 12)
    one = np.zeros((10, 12))
    one[3, 4] = 1.0
    assert np.array_equal(postprocess_mask(one, sigma=0), one.astype(bool))
    assert not postprocess_mask(one, sigma=2.0).any()  # smoothed below the threshold
    assert bounding_box(one) == (slice(3, 4), slice(4, 5))
    assert bounding_box(np.zeros((5, 5), bool)) is None
    assert not largest_component(np.zeros((4, 4), np.uint8)).any()


def test_ties_pick_first_component_in_raster_order():
    mask = np.zeros((8, 10), bool)
    mask[5:7, 0:2] = True  # 4 pixels, first pixel at row 5
    mask[1:3, 7:9] = True  # 4 pixels, first pixel at row 1: wins
    expected = np.zeros_like(mask)
    expected[1:3, 7:9] = True
    assert np.array_equal(largest_component(mask), expected)
    assert np.array_equal(largest_component(mask[:, ::-1]), expected[:, ::-1])
    original = _load_baseline().postprocess_original(mask.astype(np.float32), 0.0, 0.5)
    assert np.array_equal(original, expected)  # the original's strict ">" loop keeps the first too
    mask[7, 9] = True  # a smaller third piece changes nothing
    assert np.array_equal(largest_component(mask), expected)


def test_threshold_is_strict():
    prob = np.full((6, 6), 0.5)
    prob[2:4, 2:4] = 0.51
    assert postprocess_mask(prob, sigma=0).sum() == 4
    assert not postprocess_mask(prob, sigma=0, threshold=0.51).any()
    assert np.array_equal(_load_baseline().postprocess_original(prob, 0.0, 0.5), postprocess_mask(prob, 0.0, 0.5))


def test_diagonal_pixels_are_connected():
    mask = np.eye(5, dtype=bool)
    mask[0, 4] = True
    assert largest_component(mask).sum() == 5


def test_integer_input_is_not_truncated():
    prob = np.zeros((20, 20), np.uint8)
    prob[5:15, 5:15] = 1
    result = postprocess_mask(prob, sigma=1.0, threshold=0.5)
    assert result[10, 10] and not result[0, 0]
    assert result.sum() == pytest.approx(100, abs=12)


def test_bounding_box_margin_and_clipping():
    mask = np.zeros((100, 80), bool)
    mask[20:40, 10:30] = True  # 20 × 20 box
    mask[90:92, 70:72] = True  # smaller component, ignored
    assert bounding_box(mask) == (slice(20, 40), slice(10, 30))
    assert bounding_box(mask, 0.1) == (slice(18, 42), slice(8, 32))
    assert bounding_box(mask, 0.25) == (slice(15, 45), slice(5, 35))
    assert bounding_box(mask, 1.0) == (slice(0, 60), slice(0, 50))  # clipped at the top and left
    corner = np.zeros((50, 60), np.uint8)
    corner[40:50, 45:60] = 255
    # 10 × 15 box: margins 5 and 7.5 -> 8 (half rounds up); clipped at the bottom and right
    assert bounding_box(corner, 0.5) == (slice(35, 50), slice(37, 60))
    image = np.arange(100 * 80).reshape(100, 80)
    assert image[bounding_box(mask)].shape == (20, 20)


def test_invalid_arguments():
    with pytest.raises(InputError):
        postprocess_mask(np.zeros((4, 4, 1)))
    with pytest.raises(InputError):
        postprocess_mask(np.zeros((4, 4)), sigma=-1)
    with pytest.raises(InputError):
        postprocess_mask(np.full((4, 4), np.nan))
    with pytest.raises(InputError):
        bounding_box(np.ones((4, 4), bool), margin_fraction=-0.1)


def test_fill_holes_closes_a_ring_but_not_an_open_arc():
    prob = np.zeros((40, 40))
    prob[5:35, 5:35] = 1.0
    prob[12:28, 12:28] = 0.0  # a ring: the pale centre of a lesion
    filled = postprocess_mask(prob, sigma=0, fill_holes=True)
    assert filled[12:28, 12:28].all() and filled.sum() == 30 * 30
    assert not postprocess_mask(prob, sigma=0, fill_holes=False)[12:28, 12:28].any()
    prob[12:20, 28:35] = 0.0  # the ring opened to the outside: nothing to fill
    assert not postprocess_mask(prob, sigma=0, fill_holes=True)[14:26, 14:26].any()


def test_resize_order_mask_thresholds_at_the_models_size_probability_at_full_size():
    from lesionflow.postprocess import PostProcess, full_size_mask

    def plus(value: float) -> np.ndarray:
        small = np.full((8, 8), 0.1, np.float32)
        small[2:6, 3:5] = value
        small[3:5, 2:6] = value
        return small

    settings = dict(sigma=0.0, threshold=0.5, largest_component=True, fill_holes=False)
    by_mask = {v: full_size_mask(plus(v), 64, 64, PostProcess(**settings, resize="mask")) for v in (0.6, 0.9)}
    by_map = {v: full_size_mask(plus(v), 64, 64, PostProcess(**settings, resize="probability")) for v in (0.6, 0.9)}
    # thresholded at 8×8 first, only which pixels pass matters; resized first, how sure they were matters too
    np.testing.assert_array_equal(by_mask[0.6], by_mask[0.9])
    assert by_map[0.6].sum() < by_map[0.9].sum()
    blocky = np.kron(plus(0.9) > 0.5, np.ones((8, 8), bool))  # each model pixel an 8×8 block
    assert (by_mask[0.9] != blocky).sum() < 0.05 * blocky.size  # the block mask, corners rounded by the resize
