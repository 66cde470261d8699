"""The prediction engine: ensemble description, TTA and its inverses, fold averaging, chunks, atomic outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from lesionflow import isic
from lesionflow.errors import InputError
from lesionflow.postprocess import PostProcess
from lesionflow.predictor import (
    ClassCombination,
    EnsembleSpec,
    Predictor,
    class_probabilities,
    describe_ensemble,
    evaluate_masks,
    held_out_probabilities,
    write_masks,
)
from lesionflow.tta import DIHEDRAL, inverse_transform, transform

from support.stubs import MEAN_PROBABILITY, PLAIN, MapModel, classifier, dark_is_lesion, segmenter

SIZE = 16


def _images(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, SIZE, SIZE, 3), dtype=np.uint8)


def _constant(value: float) -> MapModel:
    return MapModel(lambda batch: np.full((*batch.shape[:3], 1), value, np.float32))


def _corner_detector(batch: np.ndarray) -> np.ndarray:
    """Not equivariant: how bright the top-left corner is, as class probabilities (depends on orientation)."""
    corner = batch[:, :4, :4].mean(axis=(1, 2, 3)) / 255.0
    prob = np.full((len(batch), len(isic.CLASSES)), 0.1, np.float32)
    prob[:, 0] += corner
    return prob / prob.sum(axis=1, keepdims=True)


# ------------------------------------------------------------------------------------ TTA transforms


def test_the_eight_transforms_are_distinct_and_each_inverse_undoes_its_transform():
    x = np.arange(2 * 5 * 5 * 3).reshape(2, 5, 5, 3)
    seen = set()
    for k, flip in DIHEDRAL:
        moved = transform(x, k, flip)
        seen.add(moved.tobytes())
        assert np.array_equal(inverse_transform(moved, k, flip), x)
        assert np.array_equal(inverse_transform(transform(x[..., 0], k, flip), k, flip), x[..., 0])  # N×H×W too
    assert len(DIHEDRAL) == 8 and len(seen) == 8


def test_tta_of_a_per_pixel_model_gives_its_own_map_back():
    """Every transformed prediction is turned back before averaging: a per-pixel model is unchanged by TTA."""
    images = _images(3)
    plain = segmenter([MapModel(dark_is_lesion)], SIZE, tta=False).predict(images)
    tta = segmenter([MapModel(dark_is_lesion)], SIZE, tta=True).predict(images)
    np.testing.assert_allclose(tta, plain, atol=1e-5)
    np.testing.assert_allclose(plain, dark_is_lesion(images.astype(np.float32))[..., 0], atol=1e-5)


def test_tta_averages_a_model_over_all_eight_orientations():
    images = _images(2, seed=1)
    model = MapModel(_corner_detector)
    got = classifier([model], SIZE, tta=True).predict(images)
    expected = np.mean([_corner_detector(transform(images.astype(np.float32), k, f)) for k, f in DIHEDRAL], axis=0)
    np.testing.assert_allclose(got, expected / expected.sum(axis=1, keepdims=True), rtol=1e-6)
    assert model.calls == 8
    assert not np.allclose(got, classifier([MapModel(_corner_detector)], SIZE).predict(images))


# ---------------------------------------------------------------------------------- fold averaging


def test_segmentation_folds_are_averaged_in_logit_space():
    prob = segmenter([_constant(0.9), _constant(0.5)], SIZE).predict(_images(1))
    np.testing.assert_allclose(prob, 0.75, rtol=1e-5)  # sigmoid((logit(0.9) + 0) / 2) = 0.75, not 0.7


def _votes_for(column: int, others: float = 0.0) -> MapModel:
    """A classifier that gives every image ``column`` (probability 1) and ``others`` to each other class."""

    def model(batch):
        prob = np.full((len(batch), len(isic.CLASSES)), others, np.float32)
        prob[:, column] = 1.0
        return prob

    return MapModel(model)


def test_classifier_folds_are_averaged_as_probabilities():
    prob = class_probabilities(classifier([_votes_for(0), _votes_for(2)], SIZE), _images(3))
    np.testing.assert_allclose(prob, np.tile([0.5, 0, 0.5, 0, 0, 0, 0], (3, 1)))


def test_logit_combination_is_the_softmax_of_mean_logits_and_small_probabilities_drop_to_zero():
    first = np.array([0.7, 0.2, 0.0995, 0.0005, 0, 0, 0], np.float64)
    second = np.array([0.1, 0.6, 0.2995, 0.0005, 0, 0, 0], np.float64)
    first[4:], second[4:] = 1e-12, 1e-12

    def fixed(row):
        return MapModel(lambda batch: np.tile(row, (len(batch), 1)))

    as_probabilities = classifier([fixed(first), fixed(second)], SIZE).predict(_images(1))[0]
    logits = ClassCombination(ensemble="logits", min_probability=0.0)
    as_logits = classifier([fixed(first), fixed(second)], SIZE, combination=logits).predict(_images(1))[0]
    geometric = np.sqrt(first * second)
    np.testing.assert_allclose(as_probabilities, (first + second) / 2 / ((first + second) / 2).sum(), rtol=1e-9)
    np.testing.assert_allclose(as_logits, geometric / geometric.sum(), rtol=1e-6)  # softmax of mean log-probs
    assert as_logits[0] < as_probabilities[0]  # a fold's confident vote counts for less

    floored = ClassCombination(ensemble="probabilities", min_probability=0.001)
    kept = classifier([fixed(first), fixed(second)], SIZE, combination=floored).predict(_images(1))[0]
    assert (kept[3:] == 0).all() and kept[:3].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(kept[:3], as_probabilities[:3] / as_probabilities[:3].sum(), rtol=1e-9)


def test_chunks_give_what_one_pass_gives_and_keep_the_order():
    images = _images(7, seed=2)
    predictor = classifier([MapModel(_corner_detector)], SIZE, chunk_size=3)
    parts = list(predictor.chunks(images))
    assert [list(rows) for rows, _ in parts] == [[0, 1, 2], [3, 4, 5], [6]]
    np.testing.assert_allclose(np.concatenate([p for _, p in parts]), predictor.predict(images), rtol=1e-6)


def test_each_held_out_image_is_predicted_by_its_own_folds_model_only():
    ids = [f"ISIC_{i:07d}" for i in range(5)]
    folds = np.array([0, 1, 0, 1, 1])

    folds_models = classifier([_votes_for(3, others=0.01), _votes_for(5, others=0.01)], SIZE)
    table = held_out_probabilities(folds_models, _images(5), ids, folds)
    table = table.set_index("image").loc[ids]
    assert table["fold"].tolist() == folds.tolist()
    assert table[list(isic.CLASSES)].to_numpy().argmax(axis=1).tolist() == [3, 5, 3, 5, 5]


def test_wrong_image_size_is_refused():
    with pytest.raises(ValueError, match="N×16×16×3"):
        segmenter([_constant(0.5)], SIZE).predict(_images(1)[:, :8, :8])


# ---------------------------------------------------------------------------------------- outputs


def _disk_images(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    images = np.full((n, SIZE, SIZE, 3), 220, np.uint8)
    images[:, (yy - 8) ** 2 + (xx - 8) ** 2 < 16] = 30
    return images


def test_masks_are_full_size_and_a_failure_leaves_the_previous_folder_as_it_was(tmp_path):
    index = pd.DataFrame({"image": ["a", "b", "c"], "height": [40, 50, 60], "width": [30, 45, 60]})
    out = tmp_path / "masks"
    names = ["a.png", "b.png", "c.png"]
    assert write_masks(segmenter([MapModel(dark_is_lesion)], SIZE), _disk_images(3), index, out, names) == 3
    for name, h, w in zip(names, index["height"], index["width"]):
        with Image.open(out / name) as mask:
            assert mask.size == (w, h) and set(np.unique(np.asarray(mask)).tolist()) == {0, 255}
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    calls = []

    def dies_on_the_second_chunk(batch):
        calls.append(len(batch))
        if len(calls) > 1:
            raise MemoryError("out of memory")
        return dark_is_lesion(batch)

    dying = segmenter([MapModel(dies_on_the_second_chunk)], SIZE, chunk_size=2)
    with pytest.raises(MemoryError):
        write_masks(dying, _disk_images(3), index, out, names)
    assert calls == [2, 1]
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous masks, untouched
    assert [p.name for p in tmp_path.iterdir()] == ["masks"]  # no half-written folder left behind


def test_evaluation_scores_each_fold_against_the_full_size_truth(tmp_path):
    index = pd.DataFrame({"image": ["a", "b"], "height": [32, 32], "width": [32, 32]})
    truth_paths = []
    for name in index["image"]:
        truth = np.zeros((32, 32), np.uint8)
        yy, xx = np.mgrid[0:32, 0:32]
        truth[(yy - 16) ** 2 + (xx - 16) ** 2 < 64] = 255
        Image.fromarray(truth).save(tmp_path / f"{name}.png")
        truth_paths.append(tmp_path / f"{name}.png")
    good, empty = MapModel(dark_is_lesion), _constant(0.01)
    scores = evaluate_masks(segmenter([good, empty], SIZE), _disk_images(2), index, np.array([0, 1]), truth_paths)
    assert scores["fold"].tolist() == [0, 1] and scores["image"].tolist() == ["a", "b"]
    assert scores.loc[0, "jaccard"] > 0.8 and scores.loc[1, "jaccard"] == 0.0
    assert good.calls == 1 and empty.calls == 1  # each image through its own fold's model only


# ----------------------------------------------------------------------------------- ensemble.json


def test_the_ensemble_describes_itself_and_reads_back(tmp_path):
    models = [tmp_path / "segmentation" / f"fold_{k}" / "model.keras" for k in range(3)]
    post = PostProcess(sigma=1.5, threshold=0.4, largest_component=True, fill_holes=True, resize="mask")
    spec_path = tmp_path / "segmentation" / "ensemble.json"
    models[0].parent.mkdir(parents=True)
    spec = describe_ensemble(
        "segmentation", models, spec_path, image_size=64, encoder="densenet121", tta=True, postprocess=post
    )
    data = json.loads(spec_path.read_text())
    assert data["folds"] == [0, 1, 2] and data["models"] == [f"fold_{k}/model.keras" for k in range(3)]
    assert data["postprocess"] == {
        "sigma": 1.5,
        "threshold": 0.4,
        "largest_component": True,
        "fill_holes": True,
        "resize": "mask",
    }
    assert data["input"] == {"dtype": "uint8", "shape": ["N", 64, 64, 3], "colour_order": "RGB"}
    assert EnsembleSpec.read(spec_path) == spec

    cls_path = tmp_path / "classification" / "ensemble.json"
    cls_path.parent.mkdir()
    describe_ensemble(
        "classification",
        [tmp_path / "classification/fold_0/model.keras"],
        cls_path,
        image_size=32,
        encoder="densenet121",
        tta=False,
        combination=ClassCombination(ensemble="logits", min_probability=0.001),
    )
    described = json.loads(cls_path.read_text())
    assert described["classes"] == list(isic.CLASSES) and "postprocess" not in described
    assert described["combination"] == {"ensemble": "logits", "min_probability": 0.001}
    assert EnsembleSpec.read(cls_path).combination == ClassCombination(ensemble="logits", min_probability=0.001)


def test_an_ensemble_reusing_another_folders_models_refers_to_them_there(tmp_path, monkeypatch):
    import lesionflow.models

    results = tmp_path / "results"
    models = [results / "segmentation" / f"fold_{k}" / "model.keras" for k in range(2)]
    spec_path = results / "experiments" / "post" / "segmentation" / "ensemble.json"
    spec_path.parent.mkdir(parents=True)
    describe_ensemble("segmentation", models, spec_path, image_size=8, encoder="x", tta=False, postprocess=PLAIN)
    described = json.loads(spec_path.read_text())["models"]
    assert described == [f"../../../segmentation/fold_{k}/model.keras" for k in range(2)]

    loaded = []
    monkeypatch.setattr(lesionflow.models, "load_model", lambda path, image_size: loaded.append(path) or object())
    moved = tmp_path / "moved"
    results.rename(moved)  # relative paths: the results folder moves as a whole
    predictor = Predictor.load(moved / "experiments" / "post" / "segmentation" / "ensemble.json")
    assert [path.resolve() for path in loaded] == [moved / f"segmentation/fold_{k}/model.keras" for k in range(2)]
    assert predictor.spec.folds == (0, 1)


def test_a_broken_ensemble_file_is_named(tmp_path):
    path = tmp_path / "ensemble.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="ensemble.json.*not a readable ensemble description"):
        EnsembleSpec.read(path)
    with pytest.raises(ValueError, match="post-processing"):
        EnsembleSpec(
            stage="classification",
            folds=(0,),
            models=("fold_0/model.keras",),
            image_size=8,
            encoder="x",
            tta=False,
            postprocess=PLAIN,
            combination=MEAN_PROBABILITY,
        )
