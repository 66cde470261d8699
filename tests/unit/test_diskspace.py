"""A full disk or quota: one line naming the path, the free space and the need; nothing looks finished; a rerun
after making room gives exactly what an undisturbed run gives.

The full file systems are small tmpfs mounts of the tests' own (the tests run as root, as CI does).
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from lesionflow.diskspace import out_of_space, require_free, reserved_memmap, size_text
from lesionflow.errors import InputError

from support import ROOT, TESTS
from support.files import files_below

# ---------------------------------------------------------------------------------------------- the pieces


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.ENOSPC, "No space left on device"),
        OSError(errno.EDQUOT, "Disk quota exceeded"),
        OSError(
            "Can't synchronously write data (file write failed: ..., errno = 28, error message = 'No space left "
            "on device')"
        ),  # HDF5 through h5py, errno not set
        RuntimeError("saving failed"),  # raised from the real cause below
    ],
    ids=["ENOSPC", "EDQUOT", "h5py", "chained"],
)
def test_a_full_disk_is_recognised_however_it_is_raised(exc):
    if isinstance(exc, RuntimeError):
        try:
            try:
                raise OSError(errno.ENOSPC, "No space left on device")
            except OSError as cause:
                raise exc from cause
        except RuntimeError as raised:
            exc = raised
    assert out_of_space(exc)


@pytest.mark.parametrize(
    "exc",
    [OSError(errno.EACCES, "Permission denied"), ValueError("bad"), FileNotFoundError(errno.ENOENT, "No such file")],
)
def test_other_errors_are_not_taken_for_a_full_disk(exc):
    assert not out_of_space(exc)


def test_size_text():
    assert [size_text(n) for n in (12, 4_096, 3_200_000, 1.5e9)] == ["12 bytes", "4.1 kB", "3.2 MB", "1.5 GB"]


def test_require_free_names_the_path_the_free_space_and_the_need(small_disk, tmp_path):
    disk = small_disk(tmp_path / "fs", 64)
    require_free(disk.path / "not" / "yet", needed=10_000, what="a small file")  # the nearest folder counts
    with pytest.raises(InputError) as exc:
        require_free(disk.path / "cache", needed=2_000_000, what="the cache of 40 images at 128²")
    assert str(exc.value) == (
        f"{disk.path / 'cache'}: not enough free space: 65.5 kB free there, but the cache "
        "of 40 images at 128² needs about 2.0 MB; make room (or ask for a larger quota) and "
        "run again. Nothing was written"
    )


def test_reserved_memmap_reserves_its_blocks_or_leaves_nothing(small_disk, tmp_path, monkeypatch):
    disk = small_disk(tmp_path / "fs", 256)
    array = reserved_memmap(disk.path / "a.npy", (10, 32, 32, 3), np.uint8, what="ten images")
    assert os.stat(disk.path / "a.npy").st_blocks * 512 >= 10 * 32 * 32 * 3  # allocated, not sparse
    array[:] = 7
    array.flush()
    del array
    assert np.load(disk.path / "a.npy").sum() == 7 * 10 * 32 * 32 * 3
    # the space check passes (another job fills the disk just after it): the reservation fails, one line
    monkeypatch.setattr("lesionflow.diskspace.require_free", lambda *args, **kwargs: None)
    with pytest.raises(InputError, match=r"b\.npy: not enough free space: .* but 100 images needs about 1\.2 MB"):
        reserved_memmap(disk.path / "b.npy", (100, 64, 64, 3), np.uint8, what="100 images")
    assert files_below(disk.path) == ["a.npy"]


# ---------------------------------------------------------------------------------------------- training

TRAIN = textwrap.dedent('''
    """Train a small U-Net fold the way train_segmentation.py does, with its work folder on the disk given."""
    import sys
    from pathlib import Path

    import numpy as np

    from lesionflow import device
    from lesionflow.jobs import job

    out = Path(sys.argv[1])
    if sys.argv[2] == "skip-space-check":  # as if another job filled the disk just after the check
        import lesionflow.training
        lesionflow.training.require_free = lambda *args, **kwargs: None
    with job("train fold 0", out / "train.log", outputs=[out / "model.keras"]):
        from lesionflow.settings import Speed
        device.configure(threads=1, seed=3, speed=Speed(precision="float32", xla=False, deterministic=True))
        from lesionflow.cache import Cache
        from lesionflow.segmentation import train_fold
        import pandas as pd

        rng = np.random.default_rng(0)
        images = rng.integers(0, 255, (8, 64, 64, 3), dtype=np.uint8)
        masks = (images[..., 0] > 128).astype(np.uint8)
        index = pd.DataFrame({"image": [f"ISIC_{i:07d}" for i in range(8)], "height": 64, "width": 64})
        cache = Cache(images=images, index=index, masks=masks)
        sys.path.insert(0, sys.argv[3])  # the tests folder
        from support.stubs import training_settings
        settings = training_settings(
            "segmentation", image_size=64, seed=3,
            model=dict(encoder="mobilenetv3small", encoder_weights=None, decoder_filters=[16, 8, 8, 8, 8]),
            training=dict(epochs=2, batch_size=4, learning_rate=0.01, min_learning_rate=1e-6, lr_patience=2,
                          lr_factor=0.5, loss="bce",
                          augmentation={"flip": True, "rotate90": True, "shift": 0.0, "rotation_range": 0,
                                        "fill": "reflect"}),
            speed=dict(precision="float32", xla=False, deterministic=True),
        )
        train_fold(cache, folds=np.array([0, 0, 0, 0, 1, 1, 1, 1]), fold=0, settings=settings,
                   work_dir=out / "work", model_out=out / "model.keras", history_out=out / "history.csv")
''')


def train(folder: Path, how: str = "check-space") -> subprocess.CompletedProcess:
    script = folder.parent / "train.py"
    script.write_text(TRAIN)
    return subprocess.run(
        [sys.executable, str(script), str(folder), how, str(TESTS)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


def test_a_full_disk_while_training_is_one_line_and_a_rerun_after_making_room_is_exact(small_disk, tmp_path):
    roomy = tmp_path / "roomy"
    roomy.mkdir()
    assert train(roomy).returncode == 0
    disk = small_disk(tmp_path / "fs", 600)
    folder = disk.path / "fold_0"
    folder.mkdir()

    checked = train(folder)  # the checkpoints cannot fit: stopped before training
    assert checked.returncode == 1, checked.stderr
    errors = [line for line in checked.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: {folder / 'work'}: not enough free space: ")
    assert "this fold's checkpoints (backups, best and final model) needs about" in errors[0]
    assert "epoch" not in (folder / "train.log").read_text().lower()

    hit = train(folder, "skip-space-check")  # the disk fills up while the first epoch is committed
    assert hit.returncode == 1, hit.stderr  # exit status 1, not a crash
    errors = [line for line in hit.stderr.splitlines() if line.startswith("ERROR: ")]
    assert len(errors) == 1 and ": no space left (disk full or quota exceeded): " in errors[0], hit.stderr
    assert f"ERROR: {folder}" in errors[0]
    assert not (folder / "model.keras").exists() and not (folder / "history.csv").exists()

    disk.resize(64 * 1024)
    again = train(folder)
    assert again.returncode == 0, again.stderr
    assert (folder / "history.csv").read_bytes() == (roomy / "history.csv").read_bytes()
    from lesionflow.models import load_model

    ours, theirs = load_model(folder / "model.keras"), load_model(roomy / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(ours.get_weights(), theirs.get_weights()))
