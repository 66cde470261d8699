"""Helpers shared by the tests (plain modules; the pytest fixtures stay in ``tests/conftest.py``).

Modules (import them by name, e.g. ``from support.stubs import segmenter``; this package imports none of them):

* :mod:`support.stubs`: stand-in networks for the prediction engine (``MapModel``, ``segmenter``,
  ``classifier``) and the demo config's settings (``demo_config``, ``training_settings``).
* :mod:`support.images`: small photo-like images (``textured_rgb``) and a rotated lesion with its mask.
* :mod:`support.datasets`: small ISIC-style image sets, labels and lesion groupings written to disk.
* :mod:`support.files`: files in folders (``touch``, ``files_below``) and small tmpfs disks (``SmallDisk``).
* :mod:`support.exports`: runs an exported SavedModel in an interpreter without this package.
* :mod:`support.workflow`: real Snakemake runs in a copy of the checkout; the session fixture ``demo_run``
  (registered for every test module by ``pytest_plugins`` in conftest.py).
* :mod:`support.slurm`: a real single-node SLURM cluster and the ``slurm_cluster`` fixture.

``ROOT`` is the repository's root, ``TESTS`` the tests folder (it holds this package).
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
