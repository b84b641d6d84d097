"""Wall time of the default build, `edgekd build --target raspberrypi`, from a cold cache.

    .venv/bin/python benchmarks/build_time.py [--checkout DIR]

Runs exactly the README's main job (`.venv/bin/edgekd build --target raspberrypi`) in a checkout (default:
this one; pass a fresh clone set up with ./setup.sh to time what a new user sees), with an empty cache
directory (XDG_CACHE_HOME), so teacher outputs are computed as on a user's first run (the Fashion-MNIST
teacher itself ships with the package). Reads the per-stage times from the run's manifest and keeps the
command's last output lines. Goal from the foundation issue: <= 10 minutes on this 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkout", type=Path, default=ROOT, help="checkout whose .venv/bin/edgekd is run")
    args = ap.parse_args()
    checkout = args.checkout.resolve()
    with tempfile.TemporaryDirectory(prefix="edgekd-build-time-") as cache:
        env = {**os.environ, "XDG_CACHE_HOME": cache}
        cmd = [str(checkout / ".venv/bin/edgekd"), "build", "--target", "raspberrypi"]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=checkout, env=env)
        wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        sys.exit(f"build failed ({r.returncode}): {r.stderr[-2000:]}")
    out = checkout / "runs" / "raspberrypi"
    manifest = json.loads((out / "manifest.json").read_text())
    report = json.loads((out / "report.json").read_text())
    stages = manifest["stage_seconds"]
    chosen = next((c for c in report["candidates"] if c["name"] == report["selected"]), None)
    summary = (f"default build (raspberrypi, cold cache, {'fresh clone' if checkout != ROOT else 'this checkout'}) "
               f"{wall / 60:.1f} min wall ({', '.join(f'{k} {v:.0f}s' for k, v in stages.items())}); exit "
               f"{r.returncode}; chosen {report['selected']}"
               + (f" int8 acc {chosen['accuracy_int8']:.4f}" if chosen else ""))
    keys = ("name", "macs", "accuracy_fp32", "accuracy_int8", "int8_scheme", "latency_ms", "latency_fp32_ms",
            "model_size_mb", "peak_memory_mb", "within_budget")
    record("build_time", {"wall_seconds": wall, "stage_seconds": stages, "exit_code": r.returncode,
                          "stdout_tail": r.stdout.strip().splitlines()[-3:], "selected": report["selected"],
                          "teacher_accuracy": report["teacher"]["accuracy"],
                          "candidates": [{k: c.get(k) for k in keys} for c in report["candidates"]],
                          "quantization_warnings": report["quantization_warnings"]},
           summary, "python benchmarks/build_time.py" + (" --checkout FRESH_CLONE" if checkout != ROOT else ""))
    print(summary)
    print("\n".join(r.stdout.strip().splitlines()[-3:]))


if __name__ == "__main__":
    main()
