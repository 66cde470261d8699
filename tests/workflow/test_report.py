"""`snakemake --report` after a finished run: every figure and table, filed by stage, and a browser renders it."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.workflow import REPO, copy_run, snakemake

pytestmark = pytest.mark.workflow

# What the report of .test/config.yaml holds (2 folds per stage; of the Task 3 sets only the demo's test set
# has ground truth, masks and labels): (category, subcategory) -> file names.
EXPECTED = {
    ("Segmentation", "Training curves"): {f"segmentation_training_curves_fold_{k}.png" for k in (0, 1)},
    ("Segmentation", "Scores"): {"segmentation_scores.html", "jaccard_histogram.png"},
    ("Segmentation", "Mask gallery"): {f"mask_gallery_{s}.png" for s in ("train", "validation", "test")},
    ("Classification", "Training curves"): {f"classification_training_curves_fold_{k}.png" for k in (0, 1)},
    ("Classification", "Scores"): {"classification_scores.html", "classification_per_class.html"},
    ("Classification", "Masked images"): {"masked_samples.png"},
    ("Classification", "Confusion and ROC"): {
        f"{kind}_{source}.png" for kind in ("confusion", "roc") for source in ("folds", "test")
    },
    ("Provenance", "Segmentation"): {"segmentation_provenance.html"},
    ("Provenance", "Classification"): {"classification_provenance.html"},
}
ALL_NAMES = set().union(*EXPECTED.values())


def _screenshot_tool():
    spec = importlib.util.spec_from_file_location("report_screenshot", REPO / "docs/report_screenshot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _js_value(page: str, name: str):
    """The JSON value of ``var <name>`` in the report's HTML: a data block of its own ``<script id=...>``."""
    found = re.search(r'<script id="[\w-]+">\s*var ' + re.escape(name) + r" = ", page)
    assert found, f"no data block 'var {name}' in the report"
    return json.JSONDecoder().raw_decode(page, found.end())[0]


def _is_blank(path: Path) -> bool:
    with Image.open(path) as img:
        pixels = np.asarray(img.convert("RGB"))
    return len(np.unique(pixels.reshape(-1, 3), axis=0)) < 2


def _chromium(tool) -> str:
    """A headless-capable browser; installs Debian's chromium with apt-get when there is none."""
    found = tool.find_browser()
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        pytest.skip("no chromium and cannot install it (apt-get needs root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "-o", "DPkg::Lock::Timeout=300", "install", "-y", "chromium"]
    proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1500)
    if proc.returncode != 0:  # an empty or stale package list: refresh once, then retry
        subprocess.run(
            ["apt-get", "-o", "DPkg::Lock::Timeout=300", "update"], capture_output=True, env=env, timeout=600
        )
        proc = subprocess.run(install, capture_output=True, text=True, env=env, timeout=1500)
    found = tool.find_browser()
    if proc.returncode != 0 or not found:
        pytest.skip(f"chromium could not be installed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
    return found


@pytest.fixture(scope="module")
def report_run(demo_run, tmp_path_factory) -> Path:
    """A copy of the finished test run with report.html and report.zip built by Snakemake."""
    run = copy_run(demo_run, tmp_path_factory.mktemp("report") / "run")
    snakemake(run, "--report", "report.html")
    snakemake(run, "--report", "report.zip")
    return run


def test_report_files_every_figure_under_its_stage(report_run):
    page = (report_run / "report.html").read_text(encoding="utf-8")
    categories = _js_value(page, "categories")
    found = {
        (cat, sub): {Path(p).name for p in paths} for cat, subs in categories.items() for sub, paths in subs.items()
    }
    assert found == EXPECTED

    results = _js_value(page, "results")
    by_name = {entry["name"]: entry for entry in results.values()}
    assert set(by_name) == ALL_NAMES
    for name, entry in by_name.items():
        assert entry["mime_type"] == ("image/png" if name.endswith(".png") else "text/html"), name
        assert len(entry["caption"]) > 80 and "{{" not in entry["caption"] and "{%" not in entry["caption"], name
    # captions are filled in per result
    assert "fold 1" in by_name["classification_training_curves_fold_1.png"]["caption"]
    assert "ground-truth outline" in by_name["mask_gallery_test.png"]["caption"]
    assert "no ground-truth masks" in by_name["mask_gallery_validation.png"]["caption"]
    assert "held-out folds" in by_name["confusion_folds.png"]["caption"]
    assert "fold ensemble" in by_name["roc_test.png"]["caption"]
    assert "fold ensemble" not in by_name["roc_folds.png"]["caption"]
    assert by_name["segmentation_training_curves_fold_0.png"]["labels"] == {"fold": "0"}
    # Snakemake's own parts are there too: the workflow graph and the run times of the jobs
    graph = _js_value(page, "rulegraph_spec")
    nodes = {n["rule"] for d in graph["data"] if d["name"] == "node-data" for n in d["values"]}
    assert {"train_segmentation", "train_classifier", "plot_mask_gallery", "plot_confusion"} <= nodes
    timed = {r["rule"] for r in _js_value(page, "runtimes_spec")["data"]["values"]}
    assert {"train_segmentation", "evaluate_classifier", "plot_training_curves"} <= timed


def test_report_zip_holds_every_figure_readable(report_run, tmp_path):
    with zipfile.ZipFile(report_run / "report.zip") as archive:
        archive.extractall(tmp_path)
        names = archive.namelist()
    assert "report/report.html" in names
    raw = {Path(n).name: tmp_path / n for n in names if n.startswith("report/data/raw/")}
    assert set(raw) == ALL_NAMES
    for name, path in raw.items():
        if name.endswith(".png"):
            with Image.open(path) as img:
                assert img.format == "PNG" and img.width >= 600, name
            assert not _is_blank(path), name
    # the tables show the run's numbers
    metrics = json.loads((report_run / "results/metrics/segmentation.json").read_text())
    scores = raw["segmentation_scores.html"].read_text()
    assert f"<td>{round(metrics['mean']['jaccard'], 4)}</td>" in scores
    assert "held-out fold 1" in scores and "set test" in scores
    classification = json.loads((report_run / "results/metrics/classification.json").read_text())
    pooled = raw["classification_scores.html"].read_text()
    assert f"<td>{round(classification['all_folds']['accuracy'], 4)}</td>" in pooled
    provenance = json.loads((report_run / "results/classification/fold_1/provenance.json").read_text())
    table = raw["classification_provenance.html"].read_text()
    assert provenance["data_sha256"] in table and "settings.model.encoder" in table


def test_report_renders_in_a_headless_browser(report_run, tmp_path):
    tool = _screenshot_tool()
    browser = _chromium(tool)
    start = tool.screenshot(report_run / "report.html", tmp_path / "start.png", browser=browser)
    gallery = tool.screenshot(
        report_run / "report.html", tmp_path / "gallery.png", show="mask_gallery_test.png", browser=browser
    )
    for shot in (start, gallery):
        assert shot.stat().st_size > 20_000
        with Image.open(shot) as img:
            assert img.size == (1400, 820)
        assert not _is_blank(shot)
    with Image.open(start) as a, Image.open(gallery) as b:
        start_px, gallery_px = np.asarray(a.convert("RGB")), np.asarray(b.convert("RGB"))
    # the opened result (photographs with contours) fills the page: far more colours than the graph page
    assert np.mean(np.any(start_px != gallery_px, axis=-1)) > 0.3
    colours = lambda px: len(np.unique(px.reshape(-1, 3), axis=0))  # noqa: E731
    assert colours(gallery_px) > 5 * colours(start_px)
