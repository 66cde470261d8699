"""Screenshot a Snakemake report (``snakemake --report report.html``) in headless Chromium.

    python docs/report_screenshot.py report.html docs/report.png --show mask_gallery_test.png

``--show`` opens one result (by file name) before the screenshot, as a click in its category would;
without it the report's start page (the workflow graph) is captured. ``--colours 256`` stores the PNG
with a palette, for a small file in the documentation. This is how ``docs/report.png`` is made.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Waits for the report's React app, then shows the wanted result in its category and subcategory.
_SHOW_RESULT = """<script>
(function show() {
  if (typeof app === "undefined" || !app) { setTimeout(show, 50); return; }
  const path = Object.keys(results).find(p => p.split("/").pop() === %(name)s);
  for (const [category, subcategories] of Object.entries(categories)) {
    for (const [subcategory, paths] of Object.entries(subcategories)) {
      if (paths.includes(path)) {
        app.setView({navbarMode: "subcategory", category: category, subcategory: subcategory,
                     content: results[path].mime_type.startsWith("image/") ? "img" : "html",
                     contentPath: results[path].data_uri, resultPath: path});
      }
    }
  }
})();
</script>
"""


def find_browser() -> str | None:
    """The path of a Chromium or Chrome executable on PATH, or None."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def screenshot(
    report: str | Path,
    out: str | Path,
    show: str | None = None,
    width: int = 1400,
    height: int = 820,
    browser: str | None = None,
    timeout: float = 120,
) -> Path:
    """Render ``report`` headless at ``width``×``height`` and write a PNG to ``out``; return ``out``."""
    import json

    browser = browser or find_browser()
    if browser is None:
        raise FileNotFoundError(f"no browser found (looked for {', '.join(BROWSERS)})")
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(report).resolve()
        if show is not None:
            text = page.read_text(encoding="utf-8")
            if f'"name": {json.dumps(show)}' not in text:
                raise ValueError(f"{report}: no result named {show!r} in the report")
            end = text.rfind("</body>")
            page = Path(tmp) / "report.html"
            page.write_text(text[:end] + _SHOW_RESULT % {"name": json.dumps(show)} + text[end:], encoding="utf-8")
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={Path(tmp) / 'profile'}",
                "--virtual-time-budget=5000",
                f"--window-size={width},{height}",
                f"--screenshot={shot}",
                page.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=timeout,
        )
        if not shot.is_file():
            raise RuntimeError(f"{browser} wrote no screenshot")
        shutil.move(shot, out)
    return out


def reduce_colours(path: str | Path, colours: int) -> None:
    """Store the PNG at ``path`` with a palette of ``colours`` colours (much smaller for a screenshot)."""
    from PIL import Image

    with Image.open(path) as img:
        small = img.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", help="the report's HTML file")
    parser.add_argument("out", help="the PNG to write")
    parser.add_argument("--show", help="file name of the result to open, e.g. mask_gallery_test.png")
    parser.add_argument("--size", default="1400x820", help="window size, WIDTHxHEIGHT (default 1400x820)")
    parser.add_argument("--colours", type=int, help="store with a palette of this many colours")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    screenshot(args.report, args.out, args.show, width, height)
    if args.colours:
        reduce_colours(args.out, args.colours)
    print(f"{args.out}: {Path(args.out).stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
