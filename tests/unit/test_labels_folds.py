"""Ground-truth and groupings CSVs (strict), and folds (seeded; no lesion on both sides)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lesionflow.errors import InputError
from lesionflow.folds import grouped_stratified_kfold, kfold, read_folds
from lesionflow.isic import CLASSES
from lesionflow.labels import read_ground_truth, read_groupings

IDS = [f"ISIC_{i:07d}" for i in range(6)]


def write_truth(path, ids=IDS, classes=None, columns=None):
    classes = classes or [i % 7 for i in range(len(ids))]
    rows = np.eye(7)[classes]
    table = pd.DataFrame(rows, columns=list(CLASSES))
    table.insert(0, "image", ids)
    if columns is not None:
        table = table[columns]
    table.to_csv(path, index=False)
    return path


def test_ground_truth_reads_one_hot(tmp_path):
    truth = read_ground_truth(write_truth(tmp_path / "gt.csv"), IDS)
    assert list(truth.columns) == list(CLASSES) and truth.index.tolist() == IDS
    assert (truth.to_numpy().sum(axis=1) == 1).all()


def test_missing_class_column(tmp_path):
    path = write_truth(tmp_path / "gt.csv", columns=["image", *CLASSES[:-1]])
    with pytest.raises(InputError, match=r"gt.csv: missing column\(s\) VASC"):
        read_ground_truth(path)


def test_extra_column(tmp_path):
    path = write_truth(tmp_path / "gt.csv")
    table = pd.read_csv(path)
    table["SCC"] = 0.0
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"unexpected column\(s\) SCC"):
        read_ground_truth(path)


def test_row_with_two_labels_names_the_row(tmp_path):
    path = write_truth(tmp_path / "gt.csv")
    table = pd.read_csv(path)
    table.loc[3, "NV"] = 1.0
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match=r"row 5 \(ISIC_0000003\) is not one-hot"):
        read_ground_truth(path)


def test_label_without_image_and_image_without_label(tmp_path):
    path = write_truth(tmp_path / "gt.csv")
    with pytest.raises(InputError, match="label for image ISIC_0000005 which does not exist"):
        read_ground_truth(path, IDS[:5])
    with pytest.raises(InputError, match="image ISIC_0000099 has no label"):
        read_ground_truth(path, [*IDS, "ISIC_0000099"])


def test_id_that_could_leave_data_dir_is_refused(tmp_path):
    path = write_truth(tmp_path / "gt.csv", ids=[*IDS[:5], "../../etc/passwd"])
    with pytest.raises(InputError, match=r"row 7.*not an ISIC image id"):
        read_ground_truth(path)


def test_groupings_without_lesion_id(tmp_path):
    path = tmp_path / "groups.csv"
    pd.DataFrame({"image": IDS, "lesion": IDS}).to_csv(path, index=False)
    with pytest.raises(InputError, match="groups.csv: missing column 'lesion_id'"):
        read_groupings(path, IDS)


def test_images_missing_from_groupings_are_their_own_lesion(tmp_path):
    path = tmp_path / "groups.csv"
    pd.DataFrame({"image": IDS[:4], "lesion_id": ["L1", "L1", "L2", "L3"]}).to_csv(path, index=False)
    groups = read_groupings(path, IDS)
    assert groups[:4] == ["L1", "L1", "L2", "L3"]
    assert len(set(groups[4:])) == 2 and not set(groups[4:]) & set(groups[:4])


def test_kfold_is_seeded_and_covers_every_image():
    ids = [f"ISIC_{i:07d}" for i in range(50)]
    a, b, c = kfold(ids, 5, 1), kfold(ids, 5, 1), kfold(ids, 5, 2)
    assert a.equals(b) and not a.equals(c)
    assert sorted(a["fold"].value_counts().tolist()) == [10] * 5


def test_grouped_folds_keep_each_lesion_on_one_side():
    rng = np.random.default_rng(0)
    n = 300
    groups = [f"HAM_{g:07d}" for g in rng.integers(0, 150, n)]
    lesion_class = {g: rng.integers(0, 7) for g in set(groups)}
    labels = np.array([lesion_class[g] for g in groups])
    ids = [f"ISIC_{i:07d}" for i in range(n)]
    folds = grouped_stratified_kfold(ids, labels, groups, 5, seed=3)
    assert folds.groupby("lesion_id")["fold"].nunique().max() == 1
    for k in range(5):  # every class on both sides of every split
        held = labels[folds["fold"].to_numpy() == k]
        assert set(held) == set(range(7))


def test_read_folds_requires_every_image(tmp_path):
    kfold(IDS, 3, 0).to_csv(tmp_path / "folds.csv", index=False)
    assert len(read_folds(tmp_path / "folds.csv", IDS)) == 6
    with pytest.raises(InputError, match="have no fold"):
        read_folds(tmp_path / "folds.csv", [*IDS, "ISIC_0000100"])
