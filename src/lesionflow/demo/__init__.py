"""Embedded demo data: synthetic dermoscopy images in the official ISIC 2018 folder layout.

The demo lets the whole workflow run on a laptop CPU without downloading ISIC data. Every image is drawn
procedurally (numpy, Pillow, scipy only): a skin-tone background, an irregular lesion whose colour and
structure follow its diagnosis, hairs, the dermatoscope's dark round vignette, blur and sensor noise.
The lesion region is known exactly, so the segmentation masks are exact. The seven classes differ the way
real ones do (melanoma dark and multi-toned, nevus uniform brown, BCC pink with branching vessels, ...),
strongly enough that small networks learn them from a hundred images.

Output is deterministic: the same :class:`DemoSpec` (seed included) gives byte-identical files, because
each lesion and each image draws from its own generator seeded by ``(seed, stream, index)``.

Command line: ``python -m lesionflow.demo DATA_DIR [--seed N]``.

Modules, in the order the data is made: :mod:`.spec` (what to draw: :class:`DemoSpec`), :mod:`.plan` (every
image's id, class, size and random streams, without drawing), :mod:`.painters` (noise helpers, the lesion's
geometry and one painter per class), :mod:`.render` (one planned image with skin, hairs and vignette) and
:mod:`.writer` (the files, the generator's marker in ``data_dir``, and the command line).
"""

from .plan import DemoPlan, PlannedImage, plan_demo
from .render import render_image
from .spec import DEFAULT_TRAIN_COUNTS, DemoSpec
from .writer import MARKER, DemoFolder, generate_demo, inspect_data_dir, main, planned_files

__all__ = [
    "DEFAULT_TRAIN_COUNTS",
    "MARKER",
    "DemoFolder",
    "DemoPlan",
    "DemoSpec",
    "PlannedImage",
    "generate_demo",
    "inspect_data_dir",
    "main",
    "plan_demo",
    "planned_files",
    "render_image",
]
