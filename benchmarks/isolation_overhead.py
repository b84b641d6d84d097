"""What running each converter in its own child process costs (issue 20): process start, model hand-over, the
converter's imports in the child, against the conversion itself.

    .venv/bin/python benchmarks/isolation_overhead.py [--repeats 3]

For default students (convnet w1_d1 and w2_d2 on Fashion-MNIST's 28x28 input, random weights: conversion time does
not depend on them), each step is run in this process (the route function called directly) and isolated
(``edgekd.isolate.run_isolated``, as builds run it), alternately, ``--repeats`` times; the medians are compared.
Steps: litert-torch fp32, litert-torch int8 (PT2E, 256 calibration samples), onnxruntime's static int8 quantizer.
The first isolated call of a process also starts the fork server (its preload imports): reported separately.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import record  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import numpy as np
    import torch

    from edgekd.export.onnx import export_onnx
    from edgekd.export.tflite import litert_route
    from edgekd.isolate import run_isolated
    from edgekd.models.students import StudentSpec, build_student
    from edgekd.quantize.ort_int8 import OrtInt8Config, ArrayReader, run_quantize_static

    rng = np.random.default_rng(0)
    x = rng.random((16, 1, 28, 28), dtype=np.float32)
    calib = rng.random((256, 1, 28, 28), dtype=np.float32)
    rows, first_start = {}, None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log = tmp / "converters.log"
        t0 = time.perf_counter()
        run_isolated(len, [], step="fork server start", log=log)
        first_start = time.perf_counter() - t0
        t0 = time.perf_counter()
        run_isolated(len, [], step="empty step", log=log)
        empty = time.perf_counter() - t0
        for w, d in ((1.0, 1), (2.0, 2)):
            torch.manual_seed(0)
            model = build_student(StudentSpec("convnet", w, d, (1, 28, 28), 10)).eval()
            onnx = Path(export_onnx(model, x, tmp / f"m{w}{d}.onnx").path)
            steps = {
                "litert-torch fp32": (litert_route, (model, x, None, "fp32", None)),
                "litert-torch int8": (litert_route, (model, x, calib, "int8", None)),
                "onnxruntime quantizer": (run_quantize_static, (onnx, None, ArrayReader("input", calib, 32),
                                                             OrtInt8Config())),
            }
            for name, (fn, a) in steps.items():
                direct, isolated = [], []
                for r in range(args.repeats):
                    for mode in ("direct", "isolated"):
                        work = tmp / f"{name.replace(' ', '_')}_{w}_{d}_{r}_{mode}"
                        work.mkdir()
                        call = a + (work,) if fn is litert_route else (  # a fresh reader: one pass empties it
                            a[0], work / "q.onnx", ArrayReader("input", calib, 32), a[3])
                        t0 = time.perf_counter()
                        if mode == "direct":
                            fn(*call)
                        else:
                            run_isolated(fn, *call, step=name, log=log)
                        (direct if mode == "direct" else isolated).append(time.perf_counter() - t0)
                key = f"convnet_w{w:g}_d{d} {name}"
                rows[key] = {"direct_s": statistics.median(direct), "isolated_s": statistics.median(isolated),
                             "all_direct_s": direct, "all_isolated_s": isolated}
                print(key, rows[key], flush=True)
    for r in rows.values():
        r["overhead_s"] = r["isolated_s"] - r["direct_s"]
        r["overhead_pct"] = 100 * r["overhead_s"] / r["direct_s"]
    summary = (f"median of {args.repeats}, in-process vs isolated child: "
               + "; ".join(f"{k} {v['direct_s']:.2f} s vs {v['isolated_s']:.2f} s ({v['overhead_s']:+.2f} s, "
                           f"{v['overhead_pct']:+.0f}%)" for k, v in rows.items())
               + f". Fork server start with its preload (once per build process) {first_start:.1f} s; an empty step "
               f"after it {empty:.2f} s")
    record("isolation_overhead", {"rows": rows, "fork_server_start_s": first_start, "empty_step_s": empty}, summary,
           f"python benchmarks/isolation_overhead.py --repeats {args.repeats}")
    print(summary)


if __name__ == "__main__":
    main()
