"""Run an exported SavedModel in a fresh interpreter in which ``import lesionflow`` fails."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

# Runs an export in a fresh interpreter in which `import lesionflow` fails, as on a machine without it.
LOAD_AND_RUN = textwrap.dedent("""
    import importlib.abc, sys
    class NoLesionflow(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "lesionflow":
                raise ImportError("lesionflow is not installed here")
    sys.meta_path.insert(0, NoLesionflow())
    import numpy as np, tensorflow as tf
    export, images, out = sys.argv[1:4]
    model = tf.saved_model.load(export)
    np.save(out, model.serve(tf.constant(np.load(images))).numpy())
""")


def run_export(export: Path, images: np.ndarray, tmp_path: Path) -> np.ndarray:
    np.save(tmp_path / "x.npy", images)
    proc = subprocess.run(
        [sys.executable, "-c", LOAD_AND_RUN, str(export), str(tmp_path / "x.npy"), str(tmp_path / "y.npy")],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": ""},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(tmp_path / "y.npy")
