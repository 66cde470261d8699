"""A job's log: start line, one-line summary of what it wrote, and one clear line for bad input."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_job(tmp_path, body: str) -> subprocess.CompletedProcess:
    script = tmp_path / "job.py"
    header = (
        "from pathlib import Path\n"
        "from lesionflow.errors import InputError\n"
        "from lesionflow.jobs import job\n"
        f"out = Path({str(tmp_path)!r})\n"
        'with job("demo job", out / "logs" / "job.log", outputs=[out / "a.txt", out / "masks"]) as log:\n'
    )
    script.write_text(header + textwrap.indent(textwrap.dedent(body).strip() + "\n", "    "))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True)


def test_log_starts_and_ends_with_a_summary_of_what_was_written(tmp_path):
    proc = run_job(
        tmp_path,
        """
        (out / "a.txt").write_text("x" * 2_000_000)
        (out / "masks").mkdir()
        for i in range(3):
            (out / "masks" / f"{i}.png").write_bytes(b"")
        print("keras progress")
    """,
    )
    assert proc.returncode == 0, proc.stderr
    lines = (tmp_path / "logs/job.log").read_text().splitlines()
    assert "job demo job started at" in lines[0]
    assert "keras progress" in lines  # the library's stdout goes to the job's log
    assert "job demo job finished at" in lines[-1]
    assert lines[-1].endswith(f"wrote {tmp_path}/a.txt (2.0 MB), {tmp_path}/masks/ (3 files)")


def test_bad_input_ends_the_job_with_one_error_line(tmp_path):
    proc = run_job(
        tmp_path,
        """
        raise InputError("row 3: not one-hot", "labels.csv")
    """,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["ERROR: labels.csv: row 3: not one-hot"]
    assert "failed: labels.csv: row 3: not one-hot" in (tmp_path / "logs/job.log").read_text()
