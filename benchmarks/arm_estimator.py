"""Fit edgekd's ARM latency estimator on the published figures, and say how wrong it is.

    .venv/bin/python benchmarks/arm_estimator.py            # export, count, fit, write edgekd/emu/calibration.json
    .venv/bin/python benchmarks/arm_estimator.py --no-write # the same, without replacing the shipped fit

For every row of ../shared/calibration/published.csv (the only figures the fit may use): build the named model
(MobileNet V1 / V2 1.0 at 224x224, random weights: latency does not depend on them) in PyTorch, export it to
TFLite with edgekd's own exporter at the row's precision (int8: full int8 with int8 I/O, calibrated on random
inputs; parity is not required here, random nets have near-tied logits), run it in the aarch64 LiteRT under
``qemu-aarch64 -cpu <row's core>`` with the row's threads, and count its instructions per inference. Then fit
``edgekd.emu.estimator.fit`` (one CPI per precision; the per-core alternative is recorded too) and record each row's fitted error and leave-one-out error.
Also estimates the default student (convnet w2 d1, 28x28, random weights) on every ARM target, in each of its
runtimes at int8, and records how long each emulated count took.

Caveats that travel with the numbers (from the calibration README): the Pi 4 rows are XNNPACK's end2end
benchmark (kernels only), we count LiteRT with its XNNPACK delegate (the interpreter's overhead is in our count);
the Pixel 4 rows are TFLite's published CPU figures on Kryo 485 big cores (A76-class) at up to 2.84 GHz.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from _results import record  # noqa: E402

CSV = ROOT.parent / "shared" / "calibration" / "published.csv"
MODELS = {"MobileNet V1 1.0": "mobilenet_v1", "MobileNet V2 1.0": "mobilenet_v2"}
PRIORS = {"cortex-a53": {"from": "cortex-a72", "factor": 2.0, "uncertainty": 2.0,
                         "why": "assumed, not fitted: an in-order dual-issue core with a 64-bit NEON datapath needs "
                                "more cycles per instruction than the out-of-order A72 on the same kernels; "
                                "the factor's own uncertainty (x/÷2) widens the band"}}


def read_rows() -> list[dict]:
    rows = []
    with open(CSV, newline="") as f:
        for r in csv.DictReader(f):
            core = r["core"].split()[0]
            rows.append({"device": r["device"], "core": core, "clock_ghz": float(r["clock_ghz"]),
                         "runtime": r["runtime"], "model": r["model"], "arch": MODELS[r["model"]],
                         "input": r["input"], "precision": r["precision"], "threads": int(r["threads"]),
                         "latency_ms": float(r["latency_ms"]), "source": r["source"]})
    return rows


def export(arch: str, precision: str, work: Path):
    import numpy as np

    from architectures import build, input_shape
    from edgekd.export.tflite import export_tflite

    out = work / f"{arch}_{precision}.tflite"
    if out.is_file():
        return out, None
    model = build(arch)
    rng = np.random.default_rng(0)
    shape = input_shape(arch)
    sample = rng.standard_normal((4, *shape)).astype(np.float32)
    calib = rng.standard_normal((16, *shape)).astype(np.float32) if precision == "int8" else None
    t0 = time.perf_counter()
    rec = export_tflite(model, sample, out, precision=precision, calibration=calib,
                        tolerances={"atol": None, "rtol": None, "min_agreement": None})
    return out, {"route": rec.config.get("route"), "convert_s": round(time.perf_counter() - t0, 1),
                 "size_bytes": rec.size_bytes}


def count(path: Path, shape, core: str, threads: int, n_cores: int, runs: int, env):
    import numpy as np

    from edgekd.emu.run import run_emulated

    x = np.random.default_rng(1).standard_normal((1, *shape)).astype(np.float32)
    t0 = time.perf_counter()
    r = run_emulated(path, x, core, n_cores=n_cores, threads=threads, runs=runs, env=env)
    return r, time.perf_counter() - t0


def default_student_estimates(work: Path, env, cal: dict, runs: int) -> list[dict]:
    import numpy as np

    from architectures import build, input_shape
    from edgekd.emu.estimator import estimate_ms
    from edgekd.export.onnx import export_onnx
    from edgekd.export.tflite import export_tflite
    from edgekd.quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8
    from edgekd.targets import list_targets, load_target

    arch = "convnet_student_w2"
    shape = input_shape(arch)
    model = build(arch)
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((8, *shape)).astype(np.float32)
    calib = rng.standard_normal((64, *shape)).astype(np.float32)
    loose = {"atol": None, "rtol": None, "min_agreement": None}
    files = {"litert": work / "student_int8.tflite", "onnxruntime": work / "student_int8.onnx"}
    export_tflite(model, sample, files["litert"], precision="int8", calibration=calib, tolerances=loose)
    export_onnx(model, sample, work / "student_fp32.onnx")
    quantize_onnx_int8(work / "student_fp32.onnx", calib, files["onnxruntime"], OrtInt8Config(), min_agreement=None)
    out = []
    for name in list_targets():
        t = load_target(name)
        if t.emulation != "qemu-user":
            continue
        for runtime in t.runtimes:
            r, wall = count(files[runtime], shape, t.core, t.threads, t.cores, runs, env)
            e = estimate_ms(r.steady_instructions, t.core, t.clock_ghz, t.threads, "int8", cal)
            out.append({"target": name, "core": t.core, "clock_ghz": t.clock_ghz, "threads": t.threads,
                        "runtime": runtime, "precision": "int8", "instructions": r.steady_instructions,
                        "estimate_ms": e.ms, "band_ms": [e.low_ms, e.high_ms], "count_wall_s": round(wall, 1),
                        "spread": r.steady_spread})
            print(f"  default student {name:16s} {runtime:12s} {r.steady_instructions / 1e6:8.2f} M instr -> "
                  f"{e.ms:.3f} ms [{e.low_ms:.3f}, {e.high_ms:.3f}] (count took {wall:.0f} s)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--no-write", action="store_true", help="do not replace edgekd/emu/calibration.json")
    ap.add_argument("--runs", type=int, default=3, help="steady-state inferences counted per model")
    ap.add_argument("--workdir", default=None, help="keep the exported models here (reused when present)")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from architectures import input_shape
    from edgekd.emu.env import find_env
    from edgekd.emu.estimator import CALIBRATION, fit
    from edgekd.fsio import write_json_atomic

    env = find_env()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="edgekd-armfit-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = read_rows()
    t_start = time.perf_counter()
    for r in rows:
        path, conv = export(r["arch"], r["precision"], work)
        res, wall = count(path, input_shape(r["arch"]), r["core"], r["threads"], 4, args.runs, env)
        r.update(instructions=res.steady_instructions, first_instructions=res.first_instructions,
                 busiest_thread=res.busiest_thread_instructions, spread=res.steady_spread,
                 count_wall_s=round(wall, 1), export=conv, runtime_counted=f"LiteRT {res.environment['runtime_version']} "
                 f"(aarch64, XNNPACK delegate), {r['threads']} threads")
        print(f"{r['device']:22s} {r['model']:18s} {r['precision']:5s} {res.steady_instructions / 1e6:9.2f} M instr "
              f"(spread {100 * res.steady_spread:.2f}%, count {wall:.0f} s)", flush=True)
    result = fit(rows, by="precision")
    per_core = fit(rows, by="core")  # the alternative structure, recorded for comparison
    keys = ("device", "core", "clock_ghz", "model", "precision", "threads", "latency_ms", "instructions", "row_cpi",
            "fitted_ms", "fitted_error", "loo_ms", "loo_error")
    cal = {"model": "latency_ms = CPI[precision] * instructions / threads / (clock_GHz * 1e6)",
           "cpi": result["cpi"], "band": result["band"], "rows_per_group": result["rows_per_group"],
           "priors": PRIORS, "fitted_on": str(CSV.relative_to(ROOT.parent)),
           "environment": {"qemu": env.qemu_version, "wheels": env.wheels},
           "rows": [{k: r[k] for k in keys} for r in result["rows"]],
           "alternative_per_core": {"cpi": per_core["cpi"], "band": per_core["band"],
                                    "rows": [{k: r[k] for k in keys} for r in per_core["rows"]]}}
    for label, res in (("per precision (used)", result), ("per core (alternative)", per_core)):
        print(f"fit {label}: CPI", {k: round(v, 3) for k, v in res["cpi"].items()},
              "band", {k: f"±{100 * v:.0f}%" for k, v in res["band"].items()})
        for r in res["rows"]:
            loo = "n/a" if r["loo_error"] is None else f"{100 * r['loo_error']:+.0f}%"
            print(f"  {r['device']:22s} {r['model']:18s} {r['precision']:5s} published {r['latency_ms']:6.1f} ms  "
                  f"fitted {r['fitted_ms']:6.1f} ms ({100 * r['fitted_error']:+.0f}%)  leave-one-out {loo}")
    if not args.no_write:
        write_json_atomic(CALIBRATION, cal)
        print(f"-> {CALIBRATION}")
    students = default_student_estimates(work, env, cal, args.runs)
    wall = time.perf_counter() - t_start
    def loo(r):
        return "n/a" if r["loo_error"] is None else f"{100 * r['loo_error']:+.0f}%"

    fitted = "; ".join(f"{r['device']} {r['model'].replace(' 1.0', '')} {r['precision']}: published "
                       f"{r['latency_ms']:g} ms, {r['instructions'] / 1e6:.1f} M instr, fitted {r['fitted_ms']:.1f} "
                       f"({100 * r['fitted_error']:+.0f}%), LOO {loo(r)} (per-core fit: LOO {loo(q)})"
                       for r, q in zip(result["rows"], per_core["rows"]))
    stud = "; ".join(f"{s['target']} {s['runtime']} {s['estimate_ms']:.3f} ms [{s['band_ms'][0]:.3f}-"
                     f"{s['band_ms'][1]:.3f}] (count {s['count_wall_s']:.0f} s)" for s in students)
    summary = (f"CPI per precision {', '.join(f'{k} {v:.2f}' for k, v in result['cpi'].items())}; band "
               f"{', '.join(f'{k} ±{100 * v:.0f}%' for k, v in result['band'].items())} (largest leave-one-out "
               f"error, floor 25%). {fitted}. Default student (convnet w2 d1, int8, random weights): {stud}. "
               f"Total {wall / 60:.1f} min.")
    record("arm_estimator", {"calibration": cal, "default_student": students, "wall_seconds": wall},
           summary, "python benchmarks/arm_estimator.py" + (" --no-write" if args.no_write else ""))
    print(summary)


if __name__ == "__main__":
    main()
