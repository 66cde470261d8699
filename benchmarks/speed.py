#!/usr/bin/env python
"""Training and prediction speed of the isic2018 networks under each speed setting (config `speed`).

    python benchmarks/speed.py                  # DenseNet169 U-Net and DenseNet201 classifier at 224² (a GPU)
    python benchmarks/speed.py --quick          # the same networks at 64², fewer images (a CPU: minutes)
    python benchmarks/speed.py --json out.json  # also write the figures as JSON
    python benchmarks/speed.py --quick --networks classifier --only float32,mixed_bfloat16  # some of them

Each network and setting is timed in its own process (``benchmarks/workers.py encoder``: TensorFlow's
deterministic ops cannot be turned off again within a process), with random inputs and random weights:
images/s of one training epoch after a warm-up step, and of one prediction pass after a warm-up batch. The
first step's time (tracing, and XLA compiling) is shown apart. Speed only: whether a setting keeps quality
is a question for a real training run. The header names the device and the Keras backend.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import header  # noqa: E402

NETWORKS = [("unet", "densenet169"), ("classifier", "densenet201")]  # config/isic2018.yaml's encoders
# Each setting against float32 with deterministic ops (the schema's defaults), one change at a time;
# XLA needs deterministic ops off (Keras turns it off otherwise).
SETTINGS = {
    "float32": {"precision": "float32", "xla": False, "deterministic": True},
    "float32, non-deterministic": {"precision": "float32", "xla": False, "deterministic": False},
    "float32, XLA": {"precision": "float32", "xla": True, "deterministic": False},
    "mixed_bfloat16": {"precision": "mixed_bfloat16", "xla": False, "deterministic": True},
    "mixed_float16": {"precision": "mixed_float16", "xla": False, "deterministic": True},
    "mixed_float16, non-det., XLA": {"precision": "mixed_float16", "xla": True, "deterministic": False},
}


def measure(kind: str, encoder: str, size: int, n: int, speed: dict) -> dict:
    """One network under one setting, in a fresh process; its JSON record, or the error's last line."""
    proc = subprocess.run(
        [sys.executable, str(HERE / "workers.py"), "encoder", kind, encoder, str(size), str(n), json.dumps(speed)],
        capture_output=True,
        text=True,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true", help="64×64 images, 32 per network (a CPU)")
    parser.add_argument("--only", default="", help="comma-separated setting names (default: all)")
    parser.add_argument("--networks", default="", help="comma-separated: unet, classifier (default: both)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    size, n = (64, 32) if args.quick else (224, 256)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()] or list(SETTINGS)
    head = header(argv)
    head["command"] = " ".join(["python", "benchmarks/speed.py", *argv])
    print(f"lesionflow speed settings — {head['date']} — {head['command']}")
    print(
        f"machine: {head['cpu']}, {head['usable_cores']} usable cores, {head['ram_gib']} GiB RAM, load average "
        f"at start {' '.join(f'{x:.2f}' for x in head['load_average'])}; lesionflow at {head['commit']}"
    )
    print(f"versions: {', '.join(f'{k} {v}' for k, v in head['versions'].items())}")
    print(f"{n} random {size}×{size} images per network; one process per network and setting", flush=True)
    records = []
    kinds = [kind.strip() for kind in args.networks.split(",") if kind.strip()] or [kind for kind, _ in NETWORKS]
    for kind, encoder in [(kind, encoder) for kind, encoder in NETWORKS if kind in kinds]:
        base = None
        for name in chosen:
            record = measure(kind, encoder, size, n, SETTINGS[name])
            record.update(setting=name, network=f"{kind} {encoder}")
            records.append(record)
            if "error" in record:
                print(f"{kind} {encoder} {size}²  {name:30s}  could not run: {record['error']}", flush=True)
                continue
            base = base or record
            train, predict = record["train_img_s"], record["predict_img_s"]
            print(
                f"{kind} {encoder} {size}² batch {record['batch']}  {name:30s}  "
                f"train {train:7.2f} img/s ({train / base['train_img_s']:.2f}×)  "
                f"predict {predict:7.2f} img/s ({predict / base['predict_img_s']:.2f}×)  "
                f"first step {record['first_step_s']:6.1f} s  peak RSS {record['peak_rss_mb']:.0f} MiB",
                flush=True,
            )
    devices = sorted({r["device"] for r in records if "device" in r})
    backends = sorted({r["backend"] for r in records if "backend" in r})
    print(
        f"device: {'; '.join(devices)}; Keras backend: {', '.join(backends)}; ratios against the first setting listed",
        flush=True,
    )
    if args.json:
        args.json.write_text(json.dumps({"header": head, "records": records}, indent=1))
    return 1 if any("error" in r for r in records) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
