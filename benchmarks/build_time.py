"""Wall time of the default build, `edgekd build --target raspberrypi`: cold, then fully cached.

    .venv/bin/python benchmarks/build_time.py [--checkout DIR] [--skip-env]

1. The emulated-ARM environment from nothing (`edgekd emu setup` into an empty cache dir, with pip's and apt's
   download caches empty too: XDG_CACHE_HOME points at an empty folder for that command) — what ./setup.sh adds.
2. The README's main job (`.venv/bin/edgekd build --target raspberrypi`) in a checkout (default: this one; pass a
   fresh clone set up with ./setup.sh to time what a new user sees) with an empty edgekd cache (`--cache-dir`) and
   `--fresh`, so teacher outputs are computed and every stage runs as on a user's first run (the Fashion-MNIST
   teacher itself ships with the package).
3. The same command again: every stage is reused from step 2 (goal: under 10 seconds).
4. A build for another ARM target (`--target raspberrypi5`, its own run directory, the same cache) right after:
   nothing trained, the exports copied from the shared store (goal, issue 19: <= 90 s).
Per-stage times come from the run's manifest; the plan's training estimate (the trained candidates' est_train_s
summed, from the report's search section) is compared with the distill stage's wall time (goal: within +-20%).
Goals from issue 19: the cold default build in <= 5 minutes shipping >= 92% int8.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import shutil
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _build(checkout: Path, cache: str, fresh: bool, target: str = "raspberrypi"
           ) -> tuple[float, subprocess.CompletedProcess, dict, dict]:
    cmd = [str(checkout / ".venv/bin/edgekd"), "build", "--target", target, "--cache-dir", cache]
    t0 = time.perf_counter()
    r = subprocess.run(cmd + (["--fresh"] if fresh else []), capture_output=True, text=True, cwd=checkout)
    wall = time.perf_counter() - t0
    if r.returncode not in (0, 3):
        sys.exit(f"build failed ({r.returncode}): {r.stderr[-2000:]}")
    out = checkout / "runs" / target
    return wall, r, json.loads((out / "manifest.json").read_text()), json.loads((out / "report.json").read_text())


def _env_setup(checkout: Path) -> float:
    with tempfile.TemporaryDirectory(prefix="edgekd-emu-cold-") as xdg:
        t0 = time.perf_counter()
        r = subprocess.run([str(checkout / ".venv/bin/edgekd"), "emu", "setup", "--cache-dir", xdg],
                           capture_output=True, text=True, env={**os.environ, "XDG_CACHE_HOME": xdg})
        wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"emu setup failed: {r.stderr[-2000:]}")
    return wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkout", type=Path, default=ROOT, help="checkout whose .venv/bin/edgekd is run")
    ap.add_argument("--skip-env", action="store_true", help="do not time the emulated-ARM environment set-up")
    args = ap.parse_args()
    checkout = args.checkout.resolve()
    env_s = None if args.skip_env else _env_setup(checkout)
    with tempfile.TemporaryDirectory(prefix="edgekd-build-time-") as cache:
        cold, r, manifest, report = _build(checkout, cache, fresh=True)
        cached, r2, manifest2, report2 = _build(checkout, cache, fresh=False)
        shutil.rmtree(checkout / "runs" / "raspberrypi5", ignore_errors=True)
        other, r3, manifest3, report3 = _build(checkout, cache, fresh=False, target="raspberrypi5")
    stages, stages2 = manifest["stage_seconds"], manifest2["stage_seconds"]
    considered = report.get("search", {}).get("considered", [])
    planned = sum(c.get("est_train_s") or 0 for c in considered if c.get("decision") == "train")
    distill_s = stages.get("distill", 0.0)
    trained3 = [s for s in report3["stages"]["ran"] if s.endswith("/distill")]
    chosen = next((c for c in report["candidates"] if c["name"] == report["selected"]), None)
    search = report.get("search", {})
    summary = (f"default build (raspberrypi, {'fresh clone' if checkout != ROOT else 'this checkout'}): cold "
               f"{cold / 60:.1f} min wall ({', '.join(f'{k} {v:.0f}s' for k, v in stages.items())}); fully cached "
               f"re-run {cached:.1f} s ({len(report2['stages']['ran'])} stages ran, "
               f"{len(report2['stages']['reused'])} reused; {', '.join(f'{k} {v:.1f}s' for k, v in stages2.items())})"
               + (f"; ARM environment set-up from empty caches {env_s:.0f} s" if env_s is not None else "")
               + f"; considered {len(search.get('considered', []))} candidates, trained {len(search.get('trained', []))}"
               f"; exit {r.returncode}; chosen {report['selected']}"
               + (f" int8 acc {chosen['accuracy_int8']:.4f}, est. {chosen['latency']['judged_ms']:.3f} ms on Pi 4"
                  if chosen else "") + f"; same choice when cached: {report2['selected'] == report['selected']}"
               + (f"; plan's training estimate {planned:.0f} s vs distill stage {distill_s:.0f} s "
                  f"({(distill_s / planned - 1) * 100:+.0f}%)" if planned else "; no training estimate in the plan"))
    summary += (f"; then --target raspberrypi5 (same cache, own run dir): {other:.0f} s wall, {len(trained3)} "
                f"student(s) trained, {len(report3['stages'].get('shared', []))} stages copied from the shared store, "
                f"chosen {report3['selected']}")
    keys = ("name", "macs", "accuracy_fp32", "accuracy_int8", "int8_scheme", "latency", "latency_fp32",
            "host_latency", "model_size_mb", "peak_memory_mb", "within_budget")
    record("build_time", {"wall_seconds": cold, "cached_wall_seconds": cached, "env_setup_seconds": env_s,
                          "stage_seconds": stages, "cached_stage_seconds": stages2, "exit_code": r.returncode,
                          "plan_train_estimate_s": planned, "distill_stage_s": distill_s,
                          "second_target": {"target": "raspberrypi5", "wall_seconds": other,
                                            "stage_seconds": manifest3["stage_seconds"], "trained": trained3,
                                            "stages": report3["stages"], "selected": report3["selected"]},
                          "stdout_tail": r.stdout.strip().splitlines()[-3:], "selected": report["selected"],
                          "teacher_accuracy": report["teacher"]["accuracy"], "search": search,
                          "candidates": [{k: c.get(k) for k in keys} for c in report["candidates"]],
                          "quantization_warnings": report["quantization_warnings"]},
           summary, "python benchmarks/build_time.py" + (" --checkout FRESH_CLONE" if checkout != ROOT else ""))
    print(summary)
    print("\n".join(r.stdout.strip().splitlines()[-3:]))


if __name__ == "__main__":
    main()
