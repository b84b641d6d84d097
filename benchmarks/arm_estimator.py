"""Fit edgekd's ARM latency estimator on the published figures, and say how wrong it is.

    .venv/bin/python benchmarks/arm_estimator.py             # count (or read counts), fit, write calibration.json
    .venv/bin/python benchmarks/arm_estimator.py --no-write  # the same, without replacing the shipped fit

For every row of ../shared/calibration/published.csv (the only figures the fit may use; 71 rows): the model it
names, built in PyTorch at its width and input size and exported by edgekd, counted under emulation with the
row's kernels on the row's core (see ``arm_calibration_rows.py``: instructions and the modelled DRAM traffic of
one steady inference, kept in edgekd's count store so a refit never recounts). Then
``edgekd.emu.estimator.fit``: CPI per core and precision, MEM per core (or pooled), thread efficiency shared,
each row predicted without itself (leave-one-out) -> the bands. Then the estimates of the default student family
and of standard 224x224 models (LiteRT, int8 and fp32) on every ARM target, with bands.

Acceptance (issue 18): leave-one-out median |error| <= 15% for fp32 and for int8 separately, >= 80% of rows
within ±25%, none beyond ±50%; fp32 bands no wider than ±40% where a core has rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from _results import record  # noqa: E402
from arm_calibration_rows import CSV, Row, count_rows, read_rows  # noqa: E402

STANDARD = (("mobilenet_v1", 1.0), ("mobilenet_v2", 1.0), ("mobilenet_v3_large", 1.0), ("efficientnet_lite0", 1.0))


def _row_dict(r: Row) -> dict:
    return asdict(r)


def acceptance(summary: dict, cal: dict) -> dict:
    fp32_bands = {k: v for k, v in cal["band"].items() if k.endswith("/fp32")}
    return {"median_fp32_le_15": summary["fp32"]["median_abs"] <= 0.15,
            "median_int8_le_15": summary["int8"]["median_abs"] <= 0.15,
            "within_25_ge_80": summary["all"]["within_25"] >= 0.80,
            "none_beyond_50": summary["all"]["worst"] <= 0.50,
            "fp32_bands_le_40": all(v <= 0.40 for v in fp32_bands.values())}


def estimates_on_targets(work: Path, env, cal: dict, say=print) -> list[dict]:
    """The default student family (int8 and fp32, LiteRT and onnxruntime) and standard 224x224 models (LiteRT)
    on every emulated ARM target: estimate, band, terms."""
    import numpy as np

    from edgekd.emu.count_store import counted
    from edgekd.emu.estimator import estimate_ms
    from edgekd.export.onnx import export_onnx
    from edgekd.export.tflite import export_tflite
    from edgekd.models.students import build_student, ladder
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8
    from edgekd.targets import list_targets, load_target

    loose = {"atol": None, "rtol": None, "min_agreement": None}
    rng = np.random.default_rng(0)
    models = []  # (label, path, input (1, C, H, W))
    for spec in ladder((1, 28, 28), 10):
        x = rng.standard_normal((8, 1, 28, 28)).astype(np.float32)
        calib = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
        net = build_student(spec).eval()
        base = work / f"student_{spec.name}"
        for prec in ("fp32", "int8"):
            out = Path(f"{base}_{prec}.tflite")
            if not out.is_file():
                export_tflite(net, x, out, precision=prec, calibration=calib if prec == "int8" else None,
                              tolerances=loose)
            models.append((f"default student {spec.name}", out, x[:1]))
        onnx32, onnx8 = Path(f"{base}_fp32.onnx"), Path(f"{base}_int8.onnx")
        if not onnx8.is_file():
            export_onnx(net, x, onnx32, min_agreement=None)
            quantize_onnx_int8(onnx32, calib, onnx8, OrtInt8Config(), min_agreement=None)
        models += [(f"default student {spec.name}", onnx32, x[:1]), (f"default student {spec.name}", onnx8, x[:1])]
    from arm_calibration_rows import export

    for arch, width in STANDARD:
        for prec in ("fp32", "int8"):
            row = Row("-", "-", 0, "-", arch, arch, width, 224, prec, 1, 0, "default", "-")
            models.append((f"{arch} 224", export(row, work, say), rng.standard_normal((1, 3, 224, 224))
                           .astype(np.float32)))
    out = []
    targets = [load_target(n) for n in list_targets()]
    for core in sorted({t.core for t in targets if t.emulation == "qemu-user"}):
        t0 = time.perf_counter()
        counts = counted([(p, x, None) for _l, p, x in models], core, threads=1, env=env, say=say)
        say(f"  counts on {core}: {time.perf_counter() - t0:.0f} s")
        for t in (t for t in targets if t.emulation == "qemu-user" and t.core == core):
            for (label, path, _x), c in zip(models, counts):
                runtime = "litert" if path.suffix == ".tflite" else "onnxruntime"
                if runtime not in t.runtimes:
                    continue
                e = estimate_ms(c.instructions, core, t.clock_ghz, t.threads, c.precision, cal, c.dram_bytes)
                out.append({"target": t.name, "core": core, "clock_ghz": t.clock_ghz, "threads": t.threads,
                            "model": label, "file": path.name, "runtime": runtime, "precision": c.precision,
                            "instructions": c.instructions, "dram_bytes": c.dram_bytes, "estimate_ms": e.ms,
                            "band_ms": [e.low_ms, e.high_ms], "compute_ms": e.compute_ms, "memory_ms": e.memory_ms,
                            "rows_behind": e.rows, "method": e.method})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-write", action="store_true", help="do not replace edgekd/emu/calibration.json")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "edgekd-armfit"),
                    help="exported models are kept here and reused")
    ap.add_argument("--no-targets", action="store_true", help="skip the estimates on every ARM target")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from edgekd.emu.env import find_env
    from edgekd.emu.estimator import CALIBRATION
    from edgekd.emu.refit import calibration
    from edgekd.fsio import write_json_atomic

    env = find_env()
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    rows = count_rows(read_rows(), work, env, say=lambda m: print(m, flush=True))
    t_counted = time.perf_counter() - t_start
    cal = calibration([_row_dict(r) for r in rows], str(CSV.relative_to(ROOT.parent)),
                      {"qemu": env.qemu_version, "wheels": env.wheels, "env": env.root.name})
    s = cal["summary"]
    ok = acceptance(s, cal)
    # the same fit without the memory term (DRAM bytes set to 0): what the memory counts buy
    compute_only = calibration([{**_row_dict(r), "dram_bytes": 0} for r in rows], "compute only", {})["summary"]
    print(f"thread efficiency e = {cal['efficiency']:.2f}; MEM cycles/byte per core "
          f"{ {k: round(v, 3) for k, v in cal['mem'].items()} } (pooled {cal['pooled_mem']:.3f})")
    for key in sorted(cal["cpi"]):
        print(f"  {key:18s} CPI {cal['cpi'][key]:.3f}  rows {cal['group_rows'][key]:2d}  band ±{100 * cal['band'][key]:.0f}%")
    for r in cal["rows"]:
        print(f"  {r['device'][:24]:24s} {r['model'][:24]:24s} {r['precision']} t{r['threads']} "
              f"{r['latency_ms']:8.2f} ms  {r['instructions'] / 1e6:8.1f} M instr  {r['dram_bytes'] / 1e6:7.1f} MB  "
              f"fit {100 * r['fitted_error']:+5.0f}%  LOO {100 * r['loo_error']:+5.0f}%")
    for p, v in s.items():
        print(f"LOO {p}: median |error| {100 * v['median_abs']:.1f}%, within ±25% {100 * v['within_25']:.0f}%, "
              f"worst {100 * v['worst']:.0f}% ({v['rows']} rows)")
    print("acceptance:", ok)
    if not args.no_write:
        write_json_atomic(CALIBRATION, cal)
        print(f"-> {CALIBRATION}")
    on_targets = [] if args.no_targets else estimates_on_targets(work, env, cal)
    wall = time.perf_counter() - t_start
    rows_text = "; ".join(
        f"{r['device'].split(' (')[0]} {r['model']} {r['precision']} t{r['threads']}: {r['latency_ms']:g} ms, {r['instructions'] / 1e6:.1f} M instr, "
        f"{r['dram_bytes'] / 1e6:.1f} MB DRAM, LOO {100 * r['loo_error']:+.0f}%" for r in cal["rows"])
    bands = ", ".join(f"{k} ±{100 * v:.0f}% ({cal['group_rows'][k]} rows)" for k, v in sorted(cal["band"].items()))
    tgt = "; ".join(f"{e['target']} {e['model']} {e['runtime']} {e['precision']} {e['estimate_ms']:.3g} ms "
                    f"[{e['band_ms'][0]:.3g}-{e['band_ms'][1]:.3g}]" for e in on_targets
                    if e["runtime"] == "litert")
    summary = (f"Leave-one-out on {s['all']['rows']} published rows: fp32 median |error| "
               f"{100 * s['fp32']['median_abs']:.1f}% ({s['fp32']['rows']} rows), int8 "
               f"{100 * s['int8']['median_abs']:.1f}% ({s['int8']['rows']} rows); {100 * s['all']['within_25']:.0f}% "
               f"within ±25%, worst {100 * s['all']['worst']:.0f}%; acceptance "
               f"{'met' if all(ok.values()) else 'NOT met: ' + ', '.join(k for k, v in ok.items() if not v)}. "
               f"Model: {cal['model']}; e = {cal['efficiency']:.2f}. Bands: {bands}. Rows: {rows_text}. "
               f"Estimates on the ARM targets (LiteRT): {tgt or 'not run'}. Counting + fit {t_counted / 60:.1f} min, "
               f"total {wall / 60:.1f} min.")
    summary += (f" Without the memory term (compute only, same rows): fp32 median "
                f"{100 * compute_only['fp32']['median_abs']:.1f}%, int8 {100 * compute_only['int8']['median_abs']:.1f}%, "
                f"{100 * compute_only['all']['within_25']:.0f}% within ±25%, worst "
                f"{100 * compute_only['all']['worst']:.0f}%.")
    record("arm_estimator", {"calibration": cal, "acceptance": ok, "compute_only_summary": compute_only,
                             "on_targets": on_targets, "wall_seconds": wall},
           summary, "python benchmarks/arm_estimator.py" + (" --no-write" if args.no_write else ""))
    print(summary)


if __name__ == "__main__":
    main()
