"""The benchmark harness: rows, number formatting, the machine header, child-process measurement and the
loop that runs the selected benchmarks and prints one line per comparison. The benchmarks themselves are in
``run.py``."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------------------------------
# Output


@dataclass
class Row:
    name: str
    baseline: str = "—"
    ours: str = "—"
    ratio: str = "—"
    goal: str = ""
    status: str = ""  # met | NOT met | could not run | skipped | no goal
    why: str = ""  # why a goal is not met / could not run / skipped
    notes: str = ""
    figures: dict = field(default_factory=dict)

    def line(self) -> str:
        verdict = self.status if not self.why else f"{self.status}: {self.why}"
        goal = f"goal {self.goal}: {verdict}" if self.goal else verdict
        text = f"{self.name:<17} baseline {self.baseline:<16} ours {self.ours:<16} ratio {self.ratio:<8} {goal}"
        return text + (f"  ({self.notes})" if self.notes else "")


def log(msg: str) -> None:
    print(f"  … {msg}", file=sys.stderr, flush=True)


def sig(x: float, digits: int = 3) -> str:
    """``x`` with about ``digits`` significant digits, no exponent for ordinary magnitudes."""
    if x is None or not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
    return f"{x:.{decimals}f}"


def ratio_text(r: float) -> str:
    return f"{sig(r)}×"


def judge(row: Row, ok: bool, why: str) -> Row:
    row.status = "met" if ok else "NOT met"
    row.why = "" if ok else why
    return row


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------------
# Header


def header(argv: list[str]) -> dict:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024**2
    except OSError:
        pass
    versions = {"python": platform.python_version()}
    for dist in (
        "numpy",
        "pillow",
        "scikit-image",
        "scipy",
        "tensorflow-cpu",
        "tensorflow",
        "keras",
        "snakemake",
        "tf_keras",
    ):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if dist == "tf_keras":
                versions[dist] = "absent"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        commit += " (uncommitted changes)" if dirty else ""
    except Exception:
        commit = "unknown"
    return {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["python", "benchmarks/run.py", *argv]),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gib": round(ram, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions,
        "commit": commit,
    }


def print_header(h: dict) -> None:
    v = h["versions"]
    vs = ", ".join(f"{k} {val}" for k, val in v.items())
    print(f"lesionflow benchmarks — {h['date']} — {h['command']}")
    print(
        f"machine: {h['cpu']}, {h['cores']} cores ({h['usable_cores']} usable), {h['ram_gib']} GiB RAM, "
        f"load average at start {' '.join(f'{x:.2f}' for x in h['load_average'])}"
    )
    print(f"versions: {vs}; lesionflow at {h['commit']}")
    print("baseline and ours alternate within each row on the same inputs; ratios are of medians")
    print("-" * 100, flush=True)


def measure_child(cmd: list[str]) -> dict:
    """Run a worker; its own peak RSS (VmHWM) plus the peak of RSS minus file-backed pages, sampled."""
    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_anon = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_anon
        try:
            p = psutil.Process(proc.pid)
            while not stop.is_set():
                m = p.memory_info()
                peak_anon = max(peak_anon, m.rss - m.shared)
                stop.wait(0.02)
        except psutil.Error:
            pass

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, err = proc.communicate()
    stop.set()
    thread.join()
    if proc.returncode != 0:
        last = err.strip().splitlines()[-1] if err.strip() else proc.returncode
        raise RuntimeError(f"{' '.join(cmd[1:3])} failed: {last}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_anon_mb"] = peak_anon / 1e6
    result["peak_rss_mb"] = result["peak_rss_mb"] * 1024**2 / 1e6  # MiB → MB
    return result


def run_rows(selected: list[str], benches: dict[str, Callable], args, skip: Callable[[str], "Row | None"]) -> list[Row]:
    """Run each selected benchmark (``skip(name)`` may return a row that stands for it instead), printing every
    row as soon as it is known. A benchmark that raises gives a "could not run" row."""
    rows: list[Row] = []
    for name in selected:
        skipped = skip(name)
        if skipped is not None:
            rows.append(skipped)
        else:
            log(f"{name} …")
            t0 = time.perf_counter()
            try:
                result = benches[name](args)
            except Exception as exc:
                traceback.print_exc(file=sys.stderr)
                result = [Row(name, status="could not run", why=f"{type(exc).__name__}: {exc}"[:240])]
            log(f"{name} took {time.perf_counter() - t0:.0f} s")
            rows.extend(result)
        for row in rows:
            if not row.figures.get("printed"):
                print(row.line(), flush=True)
                row.figures["printed"] = True
    return rows


def write_json(path: Path, info: dict, rows: list[Row]) -> None:
    for row in rows:
        row.figures.pop("printed", None)
    path.write_text(json.dumps({"header": info, "rows": [asdict(r) for r in rows]}, indent=1, default=float))
