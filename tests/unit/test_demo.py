"""Tests of the demo-data generator: layout, CSVs, masks, groupings, determinism and class appearance."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import ndimage

from lesionflow import demo
from lesionflow.demo import DemoSpec, generate_demo
from lesionflow.demo import plan as demo_plan
from lesionflow.demo import writer as demo_writer
from lesionflow.errors import InputError
from lesionflow.isic import CLASSES, FOLDERS, GROUPINGS_CSV, ID_PATTERN, IMAGE_SUFFIX, LABEL_CSV, MASK_SUFFIX

SMALL_COUNTS = {"MEL": 3, "NV": 3, "BCC": 2, "AKIEC": 2, "BKL": 2, "DF": 2, "VASC": 2}
SMALL = DemoSpec(
    seg_train=5, seg_validation=1, seg_test=1, seg_large=1, train_counts=SMALL_COUNTS, validation=7, test=14, seed=7
)
TINY = dict(
    seg_train=2,
    seg_validation=0,
    seg_test=1,
    seg_large=0,
    train_counts={"MEL": 2, "NV": 1, "BCC": 1, "AKIEC": 1, "BKL": 1, "DF": 1, "VASC": 1},
    validation=1,
    test=2,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    data_dir = tmp_path_factory.mktemp("demo") / "data"
    return data_dir, generate_demo(data_dir, SMALL)


def _ids(folder: Path, suffix: str = IMAGE_SUFFIX) -> list[str]:
    return sorted(p.name[: -len(suffix)] for p in folder.iterdir() if p.name.endswith(suffix))


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _labels(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


# ---------------------------------------------------------------------------------------------- spec


def test_default_spec_matches_the_documented_demo():
    spec = DemoSpec()
    assert (spec.seg_train, spec.seg_validation, spec.seg_test, spec.seg_large) == (60, 4, 4, 2)
    assert spec.train_counts == {"MEL": 18, "NV": 48, "BCC": 14, "AKIEC": 12, "BKL": 16, "DF": 10, "VASC": 10}
    assert (spec.validation, spec.test, spec.width, spec.height) == (21, 35, 600, 450)
    assert spec.validation_ground_truth is False


def test_from_dict_takes_a_subset_of_keys():
    spec = DemoSpec.from_dict({"seed": 3, "test": 9, "train_counts": 2})
    assert spec.seed == 3 and spec.test == 9 and spec.seg_train == 60
    assert spec.train_counts == {c: 2 for c in CLASSES}
    assert DemoSpec.from_dict(None) == DemoSpec()


def test_from_dict_rejects_an_unknown_key_naming_it():
    with pytest.raises(InputError, match="seg_trian"):
        DemoSpec.from_dict({"seg_train": 3, "seg_trian": 4})


@pytest.mark.parametrize(
    "settings, words",
    [
        ({"train_counts": {**SMALL_COUNTS, "SCC": 1}}, "SCC"),
        ({"train_counts": {"MEL": 1}}, "missing"),
        ({"test": -1}, "test"),
        ({"width": "600"}, "width"),
        ({"seg_large": 5, "seg_train": 2}, "seg_large"),
        ({"validation_ground_truth": "yes"}, "validation_ground_truth"),
    ],
)
def test_bad_settings_raise_input_error(settings, words):
    with pytest.raises(InputError, match=words):
        DemoSpec.from_dict(settings)


# ---------------------------------------------------------------------------------------------- layout


def test_layout_and_file_names(small):
    data_dir, summary = small
    expected = {FOLDERS[k] for k in FOLDERS if k != "validation_labels"} | {demo.MARKER}
    assert {p.name for p in data_dir.iterdir()} == expected  # no staging or temporary leftovers
    assert [p.name for p in data_dir.rglob(".*")] == [demo.MARKER]
    counts = {
        "seg_train_images": 5,
        "seg_train_masks": 5,
        "seg_validation_images": 1,
        "seg_test_images": 1,
        "train_images": sum(SMALL_COUNTS.values()),
        "validation_images": 7,
        "test_images": 14,
        "test_masks": 14,
    }
    all_ids: list[str] = []
    for key, n in counts.items():
        folder = data_dir / FOLDERS[key]
        suffix = MASK_SUFFIX if key.endswith("masks") else IMAGE_SUFFIX
        names = [p.name for p in folder.iterdir()]
        assert len(names) == n, key
        assert all(name.endswith(suffix) and ID_PATTERN.match(name[: -len(suffix)]) for name in names), key
        if not key.endswith("masks"):
            all_ids += _ids(folder)
    assert len(all_ids) == len(set(all_ids)), "image ids must be unique across all sets"
    assert _ids(data_dir / FOLDERS["seg_train_masks"], MASK_SUFFIX) == _ids(data_dir / FOLDERS["seg_train_images"])
    assert _ids(data_dir / FOLDERS["test_masks"], MASK_SUFFIX) == _ids(data_dir / FOLDERS["test_images"])
    assert sorted(p.name for p in (data_dir / FOLDERS["train_labels"]).iterdir()) == sorted(
        [LABEL_CSV["train"], GROUPINGS_CSV]
    )
    assert [p.name for p in (data_dir / FOLDERS["test_labels"]).iterdir()] == [LABEL_CSV["test"]]
    assert summary["images"] == {
        "seg_train": 5,
        "seg_validation": 1,
        "seg_test": 1,
        "train": 16,
        "validation": 7,
        "test": 14,
    }


def test_planned_files_are_exactly_the_files_written(small):
    data_dir, _ = small
    planned = demo.planned_files(SMALL)
    assert set(planned) == {k for k in FOLDERS if k != "validation_labels"}
    for key, names in planned.items():
        assert names == sorted(p.name for p in (data_dir / FOLDERS[key]).iterdir()), key
    with_vgt = demo.planned_files(DemoSpec(validation_ground_truth=True, **TINY))
    assert with_vgt["validation_labels"] == [LABEL_CSV["validation"]]


@pytest.mark.parametrize("set_name", ["train", "test"])
def test_label_csvs_are_official_one_hot(small, set_name):
    data_dir, summary = small
    path = data_dir / FOLDERS[f"{set_name}_labels"] / LABEL_CSV[set_name]
    assert path.read_text().splitlines()[0] == "image,MEL,NV,BCC,AKIEC,BKL,DF,VASC"
    df = _labels(path)
    assert list(df.columns) == ["image", *CLASSES]
    assert all(df[c].dtype == np.float64 for c in CLASSES)
    values = df[list(CLASSES)].to_numpy()
    assert set(np.unique(values)) == {0.0, 1.0}
    assert (values.sum(axis=1) == 1.0).all()
    assert re.search(r"^ISIC_\d{7},(0\.0|1\.0)(,(0\.0|1\.0)){6}$", path.read_text().splitlines()[1])
    assert sorted(df.image) == _ids(data_dir / FOLDERS[f"{set_name}_images"])
    counts = dict(zip(CLASSES, values.sum(axis=0).astype(int)))
    assert counts == summary["classes"][set_name]
    if set_name == "train":
        assert counts == SMALL_COUNTS
    else:
        assert counts == {c: 2 for c in CLASSES}  # proportional, every class present


def test_class_allocation_keeps_every_class_and_proportions():
    counts = demo_plan.allocate(35, DemoSpec().train_counts, 1)
    assert sum(counts.values()) == 35 and min(counts.values()) >= 1
    assert counts["NV"] == max(counts.values())
    few = demo_plan.allocate(3, DemoSpec().train_counts, 1)  # too few for all: largest remainders win
    assert few == {"MEL": 1, "NV": 1, "BCC": 0, "AKIEC": 0, "BKL": 1, "DF": 0, "VASC": 0}
    assert demo_plan.allocate(10, {"MEL": 1.0, "NV": 0}, 1) == {**{c: 0 for c in CLASSES}, "MEL": 10}


def test_lesion_groupings(small):
    data_dir, summary = small
    groups = pd.read_csv(data_dir / FOLDERS["train_labels"] / GROUPINGS_CSV)
    assert list(groups.columns) == ["image", "lesion_id", "diagnosis_confirm_type"]
    labels = _labels(data_dir / FOLDERS["train_labels"] / LABEL_CSV["train"])
    assert sorted(groups.image) == sorted(labels.image) and groups.image.is_unique
    assert groups.lesion_id.str.fullmatch(r"HAM_\d{7}").all()
    assert set(groups.diagnosis_confirm_type) <= {"histopathology", "follow_up", "consensus", "confocal"}
    cls = labels.set_index("image")[list(CLASSES)].idxmax(axis=1)
    per_lesion = groups.assign(cls=groups.image.map(cls)).groupby("lesion_id")
    assert (per_lesion.size() > 1).any()
    assert (per_lesion.cls.nunique() == 1).all(), "all images of a lesion must share its class"
    assert (per_lesion.diagnosis_confirm_type.nunique() == 1).all()
    assert summary["train_lesions"] == groups.lesion_id.nunique()


def test_images_of_one_lesion_are_similar_but_not_identical(small):
    data_dir, _ = small
    groups = pd.read_csv(data_dir / FOLDERS["train_labels"] / GROUPINGS_CSV)
    folder = data_dir / FOLDERS["train_images"]

    def small_rgb(image_id):
        return np.asarray(Image.open(folder / f"{image_id}.jpg").resize((60, 45)), dtype=np.float32)

    lesion = groups.groupby("lesion_id").image.apply(list)
    pairs = [v[:2] for v in lesion if len(v) > 1]
    firsts = [v[0] for v in lesion]
    same = [np.abs(small_rgb(a) - small_rgb(b)).mean() for a, b in pairs]
    other = [np.abs(small_rgb(a) - small_rgb(b)).mean() for a, b in zip(firsts, firsts[1:])]
    assert min(same) > 0.5
    assert np.median(same) < np.median(other)


# ---------------------------------------------------------------------------------------------- images


def test_masks_are_binary_single_channel_and_sized_like_their_images(small):
    data_dir, _ = small
    for img_key, mask_key in (("seg_train_images", "seg_train_masks"), ("test_images", "test_masks")):
        for image_id in _ids(data_dir / FOLDERS[img_key]):
            with Image.open(data_dir / FOLDERS[img_key] / f"{image_id}{IMAGE_SUFFIX}") as img:
                assert img.mode == "RGB" and img.format == "JPEG"
                size = img.size
            with Image.open(data_dir / FOLDERS[mask_key] / f"{image_id}{MASK_SUFFIX}") as m:
                assert m.mode == "L" and m.format == "PNG" and m.size == size
                mask = np.asarray(m)
            assert set(np.unique(mask).tolist()) == {0, 255}
            assert 0.1 < (mask == 255).mean() < 0.7  # the lesion is a sizeable part of the image


def test_task1_sizes_vary_and_task3_sizes_are_fixed(small):
    data_dir, _ = small
    sizes = []
    for key in ("seg_train_images", "seg_validation_images", "seg_test_images"):
        sizes += [Image.open(p).size for p in (data_dir / FOLDERS[key]).iterdir()]
    assert any(w > h for w, h in sizes) and any(h > w for w, h in sizes)
    assert sum(max(s) > 2000 for s in sizes) == 1  # seg_large=1
    assert len(set(sizes)) >= 5
    for key in ("train_images", "validation_images", "test_images"):
        assert {Image.open(p).size for p in (data_dir / FOLDERS[key]).iterdir()} == {(600, 450)}


def test_dermatoscope_vignette_darkens_the_corners(small):
    data_dir, _ = small
    for p in (data_dir / FOLDERS["test_images"]).iterdir():
        rgb = np.asarray(Image.open(p), dtype=np.float32).mean(axis=2)
        assert rgb[:15, :15].mean() < 0.5 * rgb[200:250, 10:60].mean()


def test_lesion_colours_differ_between_classes(small):
    data_dir, _ = small
    labels = _labels(data_dir / FOLDERS["test_labels"] / LABEL_CSV["test"])
    cls = labels.set_index("image")[list(CLASSES)].idxmax(axis=1)
    means: dict[str, list[np.ndarray]] = {c: [] for c in CLASSES}
    for image_id, c in cls.items():
        rgb = np.asarray(Image.open(data_dir / FOLDERS["test_images"] / f"{image_id}.jpg"), dtype=np.float32)
        mask = np.asarray(Image.open(data_dir / FOLDERS["test_masks"] / f"{image_id}{MASK_SUFFIX}")) == 255
        inner = ndimage.binary_erosion(mask, iterations=6)  # away from the soft border
        means[c].append(rgb[inner].mean(axis=0))
    m = {c: np.mean(v, axis=0) for c, v in means.items()}
    lum = {c: m[c] @ np.array([0.299, 0.587, 0.114]) for c in CLASSES}
    red = {c: m[c][0] / (m[c][1] + 1) for c in CLASSES}
    assert lum["MEL"] < lum["NV"] - 15  # melanoma darker than a nevus
    assert lum["NV"] < lum["BKL"] - 15  # keratosis lighter tan
    assert red["VASC"] > red["NV"] + 1.0  # vascular lesions red-purple
    assert red["AKIEC"] > red["NV"] + 0.2  # actinic keratosis red, despite its white scale
    blue_vs_green = {c: m[c][2] - m[c][1] for c in CLASSES}
    assert blue_vs_green["BCC"] > blue_vs_green["NV"] + 20  # BCC pink, nevus brown
    assert blue_vs_green["VASC"] > 15  # red-purple


# ---------------------------------------------------------------------------------------------- behaviour


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate_demo(a, DemoSpec(seed=1, **TINY))
    generate_demo(b, DemoSpec(seed=1, **TINY))
    generate_demo(c, DemoSpec(seed=2, **TINY))
    ta, tb, tc = _tree(a), _tree(b), _tree(c)
    assert len(ta) > 20
    assert ta == tb
    images = [k for k in ta if k.endswith(IMAGE_SUFFIX)]
    assert sorted(ta) == sorted(tc)  # same ids and layout ...
    assert all(ta[k] != tc[k] for k in images)  # ... but every image drawn differently


def test_regenerating_replaces_folders_and_validation_ground_truth_option(tmp_path):
    spec = DemoSpec(seed=1, validation_ground_truth=True, **{**TINY, "validation": 7})
    generate_demo(tmp_path, spec)
    vpath = tmp_path / FOLDERS["validation_labels"] / LABEL_CSV["validation"]
    v = _labels(vpath)
    assert list(v.columns) == ["image", *CLASSES] and len(v) == 7
    assert sorted(v.image) == _ids(tmp_path / FOLDERS["validation_images"])
    (tmp_path / "README.md").write_text("mine")
    generate_demo(tmp_path, DemoSpec(seed=2, **{**TINY, "seg_train": 1, "validation": 1}))
    assert not vpath.parent.exists(), "a stale validation ground truth must not survive"
    assert len(list((tmp_path / FOLDERS["seg_train_images"]).iterdir())) == 1
    assert len(list((tmp_path / FOLDERS["validation_images"]).iterdir())) == 1
    assert (tmp_path / "README.md").read_text() == "mine"


def test_a_failure_leaves_the_previous_data_untouched(tmp_path, monkeypatch):
    generate_demo(tmp_path, DemoSpec(seed=1, **TINY))
    before = _tree(tmp_path)
    calls = {"n": 0}
    real = demo_writer.render_image

    def failing(item, seed):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("disk full")
        return real(item, seed)

    monkeypatch.setattr(demo_writer, "render_image", failing)
    with pytest.raises(RuntimeError, match="disk full"):
        generate_demo(tmp_path, DemoSpec(seed=5, **TINY))
    assert _tree(tmp_path) == before  # the marker included
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [demo.MARKER]  # no staging left


def test_command_line_passes_seed(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake(data_dir, spec):
        seen.update(data_dir=data_dir, spec=spec)
        return {"images": {}}

    monkeypatch.setattr(demo_writer, "generate_demo", fake)
    assert demo.main([str(tmp_path / "d"), "--seed", "3"]) == 0
    assert seen["data_dir"] == tmp_path / "d" and seen["spec"] == DemoSpec(seed=3)
    assert '"images"' in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- the user's data


def _manifest(root: Path) -> dict[str, str]:
    """SHA-256 of every file below ``root`` and a marker for every folder: what must not change."""
    entries = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        entries[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return entries


def _users_isic_folder(root: Path) -> Path:
    """An ISIC-layout folder the generator did not write (no marker), with a note of the user's."""
    generate_demo(root, DemoSpec(seed=11, **TINY))
    (root / demo.MARKER).unlink()
    (root / "notes.txt").write_text("downloaded 2018-07-01\n")
    return root


def test_a_folder_with_users_data_is_refused_and_left_as_it_is(tmp_path):
    data_dir = _users_isic_folder(tmp_path / "isic")
    before = _manifest(data_dir)
    with pytest.raises(InputError) as exc:
        generate_demo(data_dir, DemoSpec(seed=1, **TINY))
    message = str(exc.value)
    assert message.startswith(f"{data_dir}: holds data that the demo generator did not write")
    assert "nothing was changed" in message and "demo.generate: false" in message and "\n" not in message
    assert _manifest(data_dir) == before


def test_one_file_of_the_users_is_enough_to_refuse(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "scan.jpg").write_bytes(b"mine")
    with pytest.raises(InputError, match="sub/scan.jpg"):
        generate_demo(tmp_path / "d", DemoSpec(seed=1, **TINY))
    assert _manifest(tmp_path / "d") == {"sub": "dir", "sub/scan.jpg": hashlib.sha256(b"mine").hexdigest()}


def test_an_empty_folder_is_written_and_marked(tmp_path):
    (tmp_path / "d" / "empty").mkdir(parents=True)
    generate_demo(tmp_path / "d", DemoSpec(seed=1, **TINY))
    marker = json.loads((tmp_path / "d" / demo.MARKER).read_text())
    written = {k for k, v in _manifest(tmp_path / "d").items() if v != "dir"} - {demo.MARKER}
    assert set(marker["files"]) == written
    assert marker["details"]["spec"]["seed"] == 1
    path = tmp_path / "d" / FOLDERS["test_labels"] / LABEL_CSV["test"]
    assert (
        marker["files"][f"{FOLDERS['test_labels']}/{LABEL_CSV['test']}"]["sha256"]
        == hashlib.sha256(path.read_bytes()).hexdigest()
    )


def test_data_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "d").write_text("not a folder")
    with pytest.raises(InputError, match="data_dir is not a folder"):
        generate_demo(tmp_path / "d", DemoSpec(seed=1, **TINY))
    assert (tmp_path / "d").read_text() == "not a folder"


def test_a_file_at_a_demo_name_that_the_generator_did_not_write_is_never_replaced(tmp_path):
    generate_demo(tmp_path, DemoSpec(seed=1, **TINY))
    csv = tmp_path / FOLDERS["train_labels"] / LABEL_CSV["train"]
    marker = json.loads((tmp_path / demo.MARKER).read_text())  # the user's own CSV under the same name
    del marker["files"][f"{FOLDERS['train_labels']}/{LABEL_CSV['train']}"]
    (tmp_path / demo.MARKER).write_text(json.dumps(marker))
    before = _manifest(tmp_path)
    with pytest.raises(InputError) as exc:
        generate_demo(tmp_path, DemoSpec(seed=2, **TINY))
    assert str(exc.value).startswith(f"{csv}: the demo generator would replace this file, but it did not write it")
    assert "nothing was changed" in str(exc.value)
    assert _manifest(tmp_path) == before


def test_an_unreadable_marker_stops_before_anything_changes(tmp_path):
    generate_demo(tmp_path, DemoSpec(seed=1, **TINY))
    (tmp_path / demo.MARKER).write_text("{ not json")
    before = _manifest(tmp_path)
    with pytest.raises(InputError, match="unreadable marker"):
        generate_demo(tmp_path, DemoSpec(seed=2, **TINY))
    assert _manifest(tmp_path) == before


def test_regenerating_keeps_what_the_user_added_and_removes_only_its_own(tmp_path):
    generate_demo(tmp_path, DemoSpec(seed=1, **{**TINY, "seg_train": 3}))
    old_images = set(_ids(tmp_path / FOLDERS["seg_train_images"]))
    new_spec = DemoSpec(seed=4, **{**TINY, "seg_train": 1})
    planned = {n[: -len(IMAGE_SUFFIX)] for n in demo.planned_files(new_spec)["seg_train_images"]}
    dropped = sorted(old_images - planned)
    assert len(dropped) == 2
    mine = tmp_path / FOLDERS["seg_train_images"] / "my_note.txt"
    mine.write_text("keep me")
    (tmp_path / "my_folder").mkdir()
    (tmp_path / "my_folder" / f"{dropped[0]}{IMAGE_SUFFIX}").write_bytes(b"mine too")
    generate_demo(tmp_path, new_spec)
    assert mine.read_text() == "keep me"
    assert (tmp_path / "my_folder" / f"{dropped[0]}{IMAGE_SUFFIX}").read_bytes() == b"mine too"
    assert set(_ids(tmp_path / FOLDERS["seg_train_images"])) == planned  # the dropped demo images are gone
    marker = json.loads((tmp_path / demo.MARKER).read_text())
    assert not [name for name in marker["files"] if "my_" in name]


def test_a_kill_while_moving_files_into_place_leaves_every_file_listed(tmp_path, monkeypatch):
    generate_demo(tmp_path, DemoSpec(seed=1, **TINY))
    real_replace, moves = os.replace, {"n": 0}

    def killed_after_three(src, dst):
        if ".lesionflow-demo-staging-" in str(src):
            moves["n"] += 1
            if moves["n"] > 3:
                raise KeyboardInterrupt  # as a kill would stop it, between two files
        return real_replace(src, dst)

    monkeypatch.setattr(demo_writer.os, "replace", killed_after_three)
    with pytest.raises(KeyboardInterrupt):
        generate_demo(tmp_path, DemoSpec(seed=2, **{**TINY, "test": 3}))
    monkeypatch.undo()
    listed = set(json.loads((tmp_path / demo.MARKER).read_text())["files"])
    present = {k for k, v in _manifest(tmp_path).items() if v != "dir"} - {demo.MARKER}
    assert present <= listed  # the next run may replace or delete each of them
    generate_demo(tmp_path, DemoSpec(seed=2, **{**TINY, "test": 3}))
    fresh = tmp_path / "fresh"
    generate_demo(fresh, DemoSpec(seed=2, **{**TINY, "test": 3}))
    theirs = {k: v for k, v in _manifest(fresh).items() if k != demo.MARKER}
    ours = {k: v for k, v in _manifest(tmp_path).items() if k != demo.MARKER and not k.startswith("fresh")}
    assert ours == theirs


def test_command_line_refuses_the_users_folder_with_one_line(tmp_path, capsys):
    data_dir = _users_isic_folder(tmp_path / "isic")
    before = _manifest(data_dir)
    assert demo.main([str(data_dir)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds data that the demo generator did not write" in err[0]
    assert _manifest(data_dir) == before
