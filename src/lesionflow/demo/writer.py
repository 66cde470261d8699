"""Writing the demo data set into ``data_dir``: the files, the generator's marker, and the command line.

The generator writes only into a folder that is new, empty, or marked as its own (:data:`MARKER`), and
never replaces, moves or deletes a file its marker does not list.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from ..errors import InputError
from ..isic import CLASSES, FOLDERS, GROUPINGS_CSV, LABEL_CSV, image_name, mask_name
from ..owned import Manifest, WrittenFile, files_in, read_manifest, write_manifest
from .plan import GroupingRow, plan_demo
from .render import render_image
from .spec import DemoSpec

JPEG_QUALITY = 90

#: The generator's marker in ``data_dir``: the files it wrote there (see :mod:`lesionflow.owned`).
MARKER = ".lesionflow-demo"
_STAGING_PREFIX = ".lesionflow-demo-staging-"
_WRITTEN_BY = "lesionflow demo generator"


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _save_image(path: Path, pil: Image.Image, fmt: str, **kw: Any) -> None:
    _write_atomic(path, lambda tmp: pil.save(tmp, format=fmt, **kw))


def _write_labels(path: Path, rows: list[tuple[str, str]]) -> None:
    lines = ["image," + ",".join(CLASSES)]
    for image_id, class_name in sorted(rows):
        lines.append(image_id + "," + ",".join("1.0" if c == class_name else "0.0" for c in CLASSES))
    _write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n"))


def _write_groupings(path: Path, rows: list[GroupingRow]) -> None:
    lines = ["image,lesion_id,diagnosis_confirm_type"] + [",".join(r) for r in rows]
    _write_atomic(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n", encoding="utf-8", newline="\n"))


def _written_folders(spec: DemoSpec) -> list[str]:
    keys = [
        "seg_train_images",
        "seg_train_masks",
        "seg_validation_images",
        "seg_test_images",
        "train_images",
        "train_labels",
        "validation_images",
        "test_images",
        "test_labels",
        "test_masks",
    ]
    return keys + (["validation_labels"] if spec.validation_ground_truth else [])


def planned_files(spec: DemoSpec | None = None) -> dict[str, list[str]]:
    """The file names :func:`generate_demo` writes for ``spec``, per ``isic.FOLDERS`` key, without drawing.

    Lets a workflow know the demo's images (and declare them as outputs) before they exist.
    """
    spec = spec or DemoSpec()
    files: dict[str, list[str]] = {key: [] for key in _written_folders(spec)}
    for item in plan_demo(spec).images:
        files[item.folder].append(image_name(item.image_id))
        if item.mask_folder:
            files[item.mask_folder].append(mask_name(item.image_id))
    files["train_labels"] += [LABEL_CSV["train"], GROUPINGS_CSV]
    files["test_labels"].append(LABEL_CSV["test"])
    if spec.validation_ground_truth:
        files["validation_labels"].append(LABEL_CSV["validation"])
    return {key: sorted(names) for key, names in files.items()}


def _generators_own(name: str) -> bool:
    """Top-level names in ``data_dir`` that only the generator makes: its marker (and the marker's
    temporary file while it is written) and its staging folders."""
    return name == MARKER or name.startswith(f".{MARKER}.tmp") or name.startswith(_STAGING_PREFIX)


def _planned_paths(spec: DemoSpec) -> list[str]:
    """The files :func:`generate_demo` writes for ``spec``, relative to ``data_dir``."""
    return [f"{FOLDERS[key]}/{name}" for key, names in planned_files(spec).items() for name in names]


@dataclass(frozen=True)
class DemoFolder:
    """What a ``data_dir`` holds, as the demo generator sees it.

    ``manifest`` lists what the generator wrote there before (None: no marker). ``users_files`` is a
    sample of the files it did not write, in a folder without a marker: a folder holding any is the user's
    data, which the generator never writes into.
    """

    path: Path
    manifest: Manifest | None
    users_files: tuple[str, ...] = ()

    @property
    def holds_users_data(self) -> bool:
        return self.manifest is None and bool(self.users_files)

    def refusal(self) -> str:
        """The one line that says why the generator leaves this folder alone, and what to do."""
        return (
            f"{self.path}: holds data that the demo generator did not write (e.g. {self.users_files[0]}); "
            "nothing was changed. Give the demo an empty or new folder, or set demo.generate: false to use "
            "this data as it is"
        )


def inspect_data_dir(data_dir: str | Path, spec: DemoSpec) -> DemoFolder:
    """Whether the generator may write ``spec``'s files into ``data_dir``, without changing anything.

    It may when the folder does not exist, holds no file, or carries the generator's marker; in a marked
    folder, a file the spec would write that the marker does not list is an :class:`InputError` naming it
    (replacing it would destroy someone's data). Other files in a marked folder are left as they are.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        if data_dir.exists() or data_dir.is_symlink():
            raise InputError("data_dir is not a folder (config key data_dir); nothing was changed", data_dir)
        return DemoFolder(data_dir, None)
    manifest = read_manifest(data_dir, MARKER)
    if manifest is None:
        sample = tuple(itertools.islice(files_in(data_dir, skip=_generators_own), 3))
        return DemoFolder(data_dir, None, sample)
    for relative in _planned_paths(spec):
        path = data_dir / relative
        if (path.exists() or path.is_symlink()) and not manifest.lists(relative):
            raise InputError(
                "the demo generator would replace this file, but it did not write it; nothing was "
                "changed. Move the file away, or set demo.generate: false to use data_dir as it is",
                path,
            )
    return DemoFolder(data_dir, manifest)


def generate_demo(data_dir: str | Path, spec: DemoSpec | None = None) -> dict[str, Any]:
    """Draw the demo data set into ``data_dir`` in the official ISIC 2018 layout; return a summary.

    Writes only into a folder that does not exist, holds no file, or carries the generator's marker
    (:func:`inspect_data_dir`; otherwise an :class:`InputError` and nothing changes). Everything is drawn
    into a hidden staging folder first, so a failure while drawing changes nothing; then the marker is
    updated to name both the old and the new files, the new files are moved to their final names one by
    one, the files of an earlier demo that this spec does not write are deleted (their folders only once
    empty), and the marker is rewritten to name the new files. Files the marker does not list are never
    replaced, moved or deleted. The summary holds the number of
    images per set and per class.
    """
    spec = spec or DemoSpec()
    data_dir = Path(data_dir)
    folder = inspect_data_dir(data_dir, spec)
    if folder.holds_users_data:
        raise InputError(folder.refusal())
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f"{_STAGING_PREFIX}*"):  # left by a killed run of the generator
        shutil.rmtree(stale, ignore_errors=True)
    plan = plan_demo(spec)
    groupings = plan.groupings
    staging = data_dir / f"{_STAGING_PREFIX}{os.getpid()}"
    labels: dict[str, list[tuple[str, str]]] = {s: [] for s in ("train", "validation", "test")}
    per_class: dict[str, dict[str, int]] = {s: {c: 0 for c in CLASSES} for s in labels}
    per_set: dict[str, int] = {}
    written = _written_folders(spec)
    try:
        for key in written:
            (staging / FOLDERS[key]).mkdir(parents=True)
        for item in plan.images:
            image, mask = render_image(item, spec.seed)
            _save_image(
                staging / FOLDERS[item.folder] / image_name(item.image_id),
                Image.fromarray(image),
                "JPEG",
                quality=JPEG_QUALITY,
                optimize=False,
                subsampling=2,
            )
            if item.mask_folder:
                _save_image(
                    staging / FOLDERS[item.mask_folder] / mask_name(item.image_id),
                    Image.fromarray(mask.astype(np.uint8) * 255),
                    "PNG",
                )
            set_key = item.folder[: -len("_images")]
            per_set[set_key] = per_set.get(set_key, 0) + 1
            if set_key in labels:
                labels[set_key].append((item.image_id, item.class_name))
                per_class[set_key][item.class_name] += 1
        for set_key in ("train", "test") + (("validation",) if spec.validation_ground_truth else ()):
            _write_labels(staging / FOLDERS[f"{set_key}_labels"] / LABEL_CSV[set_key], labels[set_key])
        _write_groupings(staging / FOLDERS["train_labels"] / GROUPINGS_CSV, groupings.get("train", []))
        _move_into_place(staging, data_dir, old=folder.manifest, spec=spec)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    lesions = {}
    for _, lesion_id, _ in groupings.get("train", []):
        lesions[lesion_id] = lesions.get(lesion_id, 0) + 1
    return {
        "data_dir": str(data_dir),
        "seed": spec.seed,
        "images": {
            k: per_set.get(k, 0) for k in ("seg_train", "seg_validation", "seg_test", "train", "validation", "test")
        },
        "classes": per_class,
        "train_lesions": len(lesions),
        "train_lesions_with_several_images": sum(1 for n in lesions.values() if n > 1),
        "validation_ground_truth": spec.validation_ground_truth,
    }


def _move_into_place(staging: Path, data_dir: Path, old: Manifest | None, spec: DemoSpec) -> None:
    """Move the staged files to their final names, delete the earlier demo's leftovers, record both."""
    new = _planned_paths(spec)
    previous = dict(old.files) if old else {}
    details = {"spec": asdict(spec)}
    staged = {relative: WrittenFile.of(staging / relative) for relative in new}
    # First name the new files too, so that a kill from here on leaves every file of ours listed.
    write_manifest(data_dir, MARKER, Manifest(_WRITTEN_BY, {**previous, **staged}, details))
    final = {}
    for relative in new:
        target = data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, target)  # same inode: size, time and contents as recorded
        final[relative] = staged[relative]
    for relative in sorted(set(previous) - set(new)):
        (data_dir / relative).unlink(missing_ok=True)
    for name in {relative.split("/", 1)[0] for relative in previous} - {relative.split("/", 1)[0] for relative in new}:
        _remove_if_empty(data_dir / name)
    write_manifest(data_dir, MARKER, Manifest(_WRITTEN_BY, final, details))


def _remove_if_empty(folder: Path) -> None:
    """Remove an ISIC folder of an earlier demo once it holds nothing (the generator makes no sub-folders)."""
    if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
        folder.rmdir()


def main(argv: list[str] | None = None) -> int:
    """Command line: draw the default demo data set into DATA_DIR."""
    package_doc = sys.modules[__package__].__doc__ or ""  # its first line describes the command
    parser = argparse.ArgumentParser(prog="python -m lesionflow.demo", description=package_doc.split("\n", 1)[0])
    parser.add_argument("data_dir", type=Path, help="folder to write the ISIC 2018 layout into")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--validation-ground-truth", action="store_true", help="also write the Task 3 validation ground-truth CSV"
    )
    args = parser.parse_args(argv)
    try:
        spec = DemoSpec(seed=args.seed, validation_ground_truth=args.validation_ground_truth)
        start = time.perf_counter()
        summary = generate_demo(args.data_dir, spec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary, indent=2))
    return 0
