"""Soak: the default build repeated in one process, fresh and cached in turn; memory must not grow and results must
match (issue 9).

    .venv/bin/python benchmarks/soak.py [--target raspberrypi] [--data fashion-mnist] [--repeats 5] [--epochs N]
                                        [--size WxD ...] [--no-record]

Builds run through the Python API (``edgekd.build``) in this one process, so a leak in edgekd (or in how it drives
torch, onnxruntime, LiteRT, TensorFlow and the emulator) shows as resident memory that keeps growing from build to
build. Odd builds are ``fresh`` (every stage redone), even ones reuse the previous build's stages. Checked after each:

- memory: resident set (VmRSS) after the build returned (``edgekd.build`` hands freed heap back to the OS as it
  returns, edgekd/memory.py) and a garbage collection; the verdict uses it. Also recorded: VmRSS after another
  malloc_trim here (live memory) and the count of live Python objects by type (which types grew since build 2:
  a cache that keeps each build's graphs shows there). The first build loads the libraries, so growth is measured
  from the end of build 2 to the end of the last; also open file descriptors, threads, and ``edgekd-*``
  temporary folders left in the system temp dir;
- results: every fresh build gives the same choice and the same deterministic figures (params, MACs, fp32 and
  int8 accuracy, model size, the sha256 of every deployed artifact); a cached build ran no stage and reports the
  same figures as the fresh build before it, latencies included; ``edgekd verify`` passes on the run.
Latencies of fresh builds are re-measured, so they are reported (spread), not compared.
"""

from __future__ import annotations

import argparse
import gc
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

GROWTH_LIMIT_MB = 64.0  # resident memory may not grow more than this from the end of build 2 to the end of the last


def _status(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1]) / (1024.0 if key.startswith("Vm") else 1.0)  # kB -> MB
    return float("nan")


def _trimmed_rss() -> float:
    """VmRSS after glibc's malloc_trim(0) returns free heap pages to the system: memory still held after it is
    live (a leak, a cache), memory that goes away with it was fragmentation. Taken after the row's VmRSS."""
    from edgekd.memory import release_free_memory

    return _status("VmRSS") if release_free_memory() else float("nan")


def _object_census() -> dict[str, int]:
    """Live Python objects tracked by the garbage collector, by type name: a leak of Python objects (graphs,
    sessions, tensors kept in a cache) shows as a type whose count keeps rising from build to build."""
    from collections import Counter

    return dict(Counter(type(o).__name__ for o in gc.get_objects()))


def _temp_leftovers() -> int:
    return sum(1 for p in Path(tempfile.gettempdir()).glob("edgekd-*"))


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """What must not change between fresh builds (everything but measured times)."""
    return {"selected": report["selected"],
            "candidates": {c["name"]: {k: c.get(k) for k in ("params", "macs", "accuracy_fp32", "accuracy_int8",
                                                             "model_size_mb", "artifact_sha256", "within_budget")}
                           for c in report["candidates"]}}


def _latencies(report: dict[str, Any]) -> dict[str, float]:
    return {c["name"]: c["latency"]["judged_ms"] for c in report["candidates"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="raspberrypi")
    ap.add_argument("--data", default="fashion-mnist")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=None, help="default: the build's own (4)")
    ap.add_argument("--size", action="append", default=[], metavar="WxD", help="default: the family's ladder")
    ap.add_argument("--work", default=None, help="run/cache folder (default: a new temporary folder)")
    ap.add_argument("--name", default="soak", help="results/NAME.json")
    ap.add_argument("--no-record", action="store_true")
    args = ap.parse_args(argv)

    work = Path(args.work or tempfile.mkdtemp(prefix="soak-"))
    out, cache = work / "run", work / "cache"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(work / "tmp")  # a private temp dir: leftovers are ours alone (workers inherit it)
    tempfile.tempdir = None

    import edgekd
    from edgekd.distill.config import DistillConfig
    from edgekd.verify import verify_run
    sizes = tuple((float(w), int(d)) for w, d in (s.lower().split("x") for s in args.size)) or None
    distill = DistillConfig(epochs=args.epochs) if args.epochs else DistillConfig(epochs=4)
    rows, problems, first_fresh, last, census2 = [], [], None, None, {}
    fds0, temps0 = len(os.listdir("/proc/self/fd")), _temp_leftovers()
    for i in range(1, args.repeats + 1):
        fresh = i % 2 == 1
        cfg = edgekd.BuildConfig(target=args.target, data=args.data, out_dir=str(out), cache_dir=str(cache),
                                 distill=distill, sizes=sizes, fresh=fresh, command="benchmarks/soak.py")
        t0 = time.perf_counter()
        try:
            report = edgekd.build(cfg, progress=lambda m: None)
        except edgekd.EdgeKDError as e:  # e.g. exit 3: the report is still there and is what we compare
            if e.exit_code != 3:
                raise
            import json

            report = json.loads((out / "report.json").read_text())
        wall = time.perf_counter() - t0
        gc.collect()
        row = {"build": i, "mode": "fresh" if fresh else "cached", "wall_s": round(wall, 1),
               "rss_mb": round(_status("VmRSS"), 1), "peak_rss_mb": round(_status("VmHWM"), 1),
               "rss_after_trim_mb": round(_trimmed_rss(), 1),  # freed heap handed back: fragmentation vs leak
               "threads": int(_status("Threads")), "open_fds": len(os.listdir("/proc/self/fd")),
               "temp_dirs_left": _temp_leftovers() - temps0, "stages_ran": len(report["stages"]["ran"]),
               "stages_reused": len(report["stages"]["reused"]), "selected": report["selected"],
               "p90_ms": _latencies(report)}
        try:
            row["verified_artifacts"] = verify_run(out).checked
        except edgekd.EdgeKDError as e:
            problems.append(f"build {i}: verify failed: {e}")
        if fresh:
            if first_fresh is None:
                first_fresh = _figures(report)
            elif _figures(report) != first_fresh:
                problems.append(f"build {i} (fresh): figures differ from build 1")
        else:
            if row["stages_ran"]:
                problems.append(f"build {i} (cached): {row['stages_ran']} stage(s) ran again: {report['stages']['ran']}")
            if (_figures(report), _latencies(report)) != last:
                problems.append(f"build {i} (cached): figures or latencies differ from build {i - 1}")
        last = (_figures(report), _latencies(report))
        census = _object_census()
        row["py_objects"] = sum(census.values())
        if i == 2:
            census2 = census
        elif i > 2:  # the types that grew most since build 2
            grew = sorted(((n - census2.get(t, 0), t) for t, n in census.items()), reverse=True)[:8]
            row["py_objects_grown_since_build_2"] = {t: d for d, t in grew if d > 0}
        rows.append(row)
        print(f"build {i} {row['mode']:6s} {wall:6.1f} s  RSS {row['rss_mb']:.0f} MB (trimmed "
              f"{row['rss_after_trim_mb']:.0f}, peak {row['peak_rss_mb']:.0f})  "
              f"threads {row['threads']}  fds {row['open_fds']}  stages ran {row['stages_ran']} / reused "
              f"{row['stages_reused']}  chosen {row['selected']}  python objects {row['py_objects']}", flush=True)

    growth = rows[-1]["rss_mb"] - rows[1]["rss_mb"] if len(rows) > 1 else 0.0
    if growth > GROWTH_LIMIT_MB:
        problems.append(f"resident memory grew {growth:.0f} MB from build 2 to build {len(rows)}")
    if rows[-1]["open_fds"] > fds0 + 8 and rows[-1]["open_fds"] > rows[1]["open_fds"]:
        problems.append(f"open file descriptors grew from {fds0} to {rows[-1]['open_fds']}")
    if rows[-1]["temp_dirs_left"] > 0:
        problems.append(f"{rows[-1]['temp_dirs_left']} edgekd-* temporary folders left behind")
    names = set(rows[0]["p90_ms"]).intersection(*(r["p90_ms"] for r in rows))  # builds may train different sets
    if any(set(r["p90_ms"]) != names for r in rows):
        problems.append("the builds did not all train the same candidates")
    spread = {n: (min(r["p90_ms"][n] for r in rows), max(r["p90_ms"][n] for r in rows)) for n in sorted(names)}
    verdict = "PASS" if not problems else "FAIL: " + "; ".join(problems)
    print(verdict)
    cmd = "python benchmarks/soak.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if not args.no_record:
        from benchmarks._results import record

        fresh_s = [r["wall_s"] for r in rows if r["mode"] == "fresh"]
        cached_s = [r["wall_s"] for r in rows if r["mode"] == "cached"]
        summary = (f"{args.repeats} builds of --target {args.target} --data {args.data}"
                   + (f" --epochs {args.epochs}" if args.epochs else "")
                   + (f" --size {' --size '.join(args.size)}" if args.size else "")
                   + f" in one process (fresh {', '.join(map(str, fresh_s))} s; cached "
                   f"{', '.join(map(str, cached_s))} s): RSS after each "
                   f"{', '.join(str(round(r['rss_mb'])) for r in rows)} MB (growth build 2 -> {len(rows)}: "
                   f"{growth:+.0f} MB, limit {GROWTH_LIMIT_MB:.0f}); fresh builds identical (choice, accuracies, "
                   f"sizes, artifact sha256), cached builds ran 0 stages; {verdict}")
        record(args.name, {"target": args.target, "data": args.data, "repeats": args.repeats, "epochs": args.epochs,
                        "sizes": args.size, "rss_growth_mb": round(growth, 1), "growth_limit_mb": GROWTH_LIMIT_MB,
                        "p90_ms_spread": spread, "builds": rows, "problems": problems, "verdict": verdict},
               summary, cmd)
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
