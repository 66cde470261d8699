"""A full disk while the workflow caches a set: one line naming the path, the free space and the need; nothing
looks finished; a rerun after making room gives exactly what an undisturbed run gives.

The full file system is a small tmpfs mount of the test's own (the tests run as root, as CI does).
"""

from __future__ import annotations

import pytest
import yaml

from lesionflow.diskspace import size_text

from support.files import files_below
from support.workflow import REPO, TEST_CONFIG, copy_checkout, snakemake

# ---------------------------------------------------------------------------------------------- caching


@pytest.mark.workflow
def test_a_full_disk_while_caching_is_one_line_and_a_rerun_after_making_room_is_exact(small_disk, tmp_path):
    """`results/` on a file system with room for the checks and logs, not for the test set's cache."""
    full, roomy = copy_checkout(tmp_path / "full"), copy_checkout(tmp_path / "roomy")
    config = yaml.safe_load((REPO / TEST_CONFIG).read_text())
    target = "results/cache/test/images.npy"
    snakemake(roomy, "--cores", "2", target)
    disk = small_disk(full / "results", 160)  # the checks and logs fit; 14 images at 64² (172 kB) do not
    proc = snakemake(full, "--cores", "2", target, check=False)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ERROR: ")]
    assert proc.returncode != 0 and "Signals" not in proc.stderr
    assert len(errors) == 1, proc.stderr
    n = len(list((roomy / config["data_dir"] / "ISIC2018_Task3_Test_Input").glob("*.jpg")))
    assert errors[0].startswith("ERROR: results/cache/test: not enough free space: ")
    assert f"but the cache of {n} images at 64² needs about {size_text(128 + n * 64 * 64 * 3)}" in errors[0]
    assert not [f for f in files_below(disk.path) if f.startswith("cache/")]  # nothing half-written
    disk.resize(4096)
    snakemake(full, "--cores", "2", target)
    for name in ("images.npy", "index.csv"):
        assert (full / "results/cache/test" / name).read_bytes() == (roomy / "results/cache/test" / name).read_bytes()
