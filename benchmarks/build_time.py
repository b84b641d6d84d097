"""Wall time of the default build, `edgekd build --target raspberrypi`, from a cold cache.

    .venv/bin/python benchmarks/build_time.py

Runs the real console script in a fresh run directory with an empty cache directory (so teacher outputs
are computed, as on a user's first run; the Fashion-MNIST teacher itself ships with the package), then
reads the per-stage times from the run's manifest. Goal from the foundation issue: <= 10 minutes here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="edgekd-build-time-") as tmp:
        out, cache = Path(tmp) / "run", Path(tmp) / "cache"
        cmd = [str(ROOT / ".venv/bin/edgekd"), "build", "--target", "raspberrypi", "--out", str(out),
               "--cache-dir", str(cache)]
        t0 = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode not in (0, 3):
            sys.exit(f"build failed ({r.returncode}): {r.stderr[-2000:]}")
        manifest = json.loads((out / "manifest.json").read_text())
        report = json.loads((out / "report.json").read_text())
    stages = manifest["stage_seconds"]
    chosen = next((c for c in report["candidates"] if c["name"] == report["selected"]), None)
    summary = (f"default build (raspberrypi, cold cache) {wall / 60:.1f} min wall "
               f"({', '.join(f'{k} {v:.0f}s' for k, v in stages.items())}); exit {r.returncode}; chosen "
               f"{report['selected']}" + (f" int8 acc {chosen['accuracy_int8']:.4f}" if chosen else ""))
    record("build_time", {"wall_seconds": wall, "stage_seconds": stages, "exit_code": r.returncode,
                          "selected": report["selected"], "teacher_accuracy": report["teacher"]["accuracy"],
                          "candidates": [{k: c[k] for k in ("name", "macs", "accuracy_fp32", "accuracy_int8",
                                                            "latency_ms", "latency_fp32_ms", "model_size_mb",
                                                            "peak_memory_mb", "within_budget")}
                                         for c in report["candidates"]],
                          "quantization_warnings": report["quantization_warnings"]},
           summary, "python benchmarks/build_time.py")
    print(summary)


if __name__ == "__main__":
    main()
