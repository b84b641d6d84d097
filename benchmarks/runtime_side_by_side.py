"""The default student in five runtimes, side by side: torch eager, ORT fp32/int8, LiteRT fp32/int8.

    .venv/bin/python benchmarks/runtime_side_by_side.py                  # the real measurement
    .venv/bin/python benchmarks/runtime_side_by_side.py --quick          # a smoke run (2000 samples, 3 epochs, 30 runs)

The student is edgekd's default choice, convnet w2 d1 on 1x28x28 Fashion-MNIST. It is loaded from the
student a build left in ``runs/raspberrypi/candidates/convnet_w2_d1/student.json`` (``--student``) when that
exists, else trained now with edgekd's trainer against the built-in teacher's logits (``--epochs``, default 2);
the output says which. Exports and quantization are edgekd's own stages (``export_student``,
``quantize_student``: ORT static int8 QDQ on 256 training samples; ``export_student_tflite``: converter
``auto``, int8 I/O, 256 training samples).

Latency: batch 1, the same threads, runs and warm-up for every runtime. ORT and LiteRT are measured by
``edgekd.bench.host`` in a fresh process each; torch eager is timed IN-PROCESS (a perf_counter loop under
``torch.inference_mode()`` in this script's own process, after its imports and training), so its cold start and
memory are not comparable and are not reported. Inputs: seeded uniform [0, 1) floats; the LiteRT int8 model
takes int8 input (random int8 values), as edgekd exports it. Accuracy: top-1 on the Fashion-MNIST test split
(all of it, or the ``--limit`` share) for every runtime; int8 minus fp32 per runtime. Ratios are p50 (and p90)
over ORT fp32's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _results import record  # noqa: E402

from edgekd.bench.host import bench_onnx_host, bench_tflite_host  # noqa: E402
from edgekd.bench.measure import percentiles  # noqa: E402
from edgekd.cache import default_cache_dir  # noqa: E402
from edgekd.data import load_dataset  # noqa: E402
from edgekd.distill.trainer import evaluate  # noqa: E402
from edgekd.models.students import StudentSpec, build_student  # noqa: E402
from edgekd.stages import (export_student, export_student_tflite, load_checkpoint,  # noqa: E402
                           quantize_student)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STUDENT = ROOT / "runs/raspberrypi/candidates/convnet_w2_d1/student.json"
SPEC = dict(family="convnet", width=2.0, depth=1)


def get_student(args: argparse.Namespace, data: Any) -> tuple[torch.nn.Module, str]:
    path = Path(args.student)
    if path.is_file() and not args.train:
        model, ckpt = load_checkpoint(path)
        s = ckpt.config["student"]
        if (s["family"], s["width"], s["depth"], tuple(s["input_shape"])) != (*SPEC.values(), data.input_shape):
            sys.exit(f"{path} is {ckpt.name} for input {s['input_shape']}, not convnet_w2_d1 on {data.input_shape}")
        return model, f"loaded from {path} (test accuracy recorded there {ckpt.accuracy_fp32:.4f})"
    from edgekd.distill.cache import cached_teacher_logits
    from edgekd.distill.config import DistillConfig
    from edgekd.distill.trainer import train
    from edgekd.models.default_teacher import default_teacher

    teacher, info = default_teacher(data, default_cache_dir())
    z = cached_teacher_logits(teacher, "default:" + info.weights_sha256, data, default_cache_dir())
    cfg = DistillConfig(epochs=args.epochs, patience=args.epochs, seed=0)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = train(build_student(StudentSpec(**SPEC, input_shape=data.input_shape, num_classes=data.num_classes)),
                  data, cfg, teacher_logits=z).model.eval()
    why = "--train given" if args.train else f"no student at {path}"
    return model, (f"trained now ({why}): {args.epochs} epoch(s) of edgekd KD (T {cfg.temperature}, alpha "
                   f"{cfg.alpha}) against the built-in teacher ({info.origin}) on "
                   f"{len(data.x_train)} training samples, {time.perf_counter() - t0:.0f} s")


def torch_eager_latency(model: torch.nn.Module, shape: tuple[int, ...], threads: int, runs: int,
                        warmup: int) -> dict[str, float]:
    """In-process timing loop, batch 1, same seeded uniform [0, 1) input as the host benchmark worker."""
    torch.set_num_threads(threads)
    x = torch.from_numpy(np.random.default_rng(0).random((1, *shape), dtype=np.float32))
    samples = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        for _ in range(runs):
            t0 = time.perf_counter_ns()
            model(x)
            samples.append((time.perf_counter_ns() - t0) / 1e6)
    return percentiles(samples)


def attempt(rows: dict[str, dict], name: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one runtime's export + accuracy + latency; a failure is recorded in its row, not fatal."""
    try:
        rows[name] = fn()
    except Exception as e:
        rows[name] = {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    r = rows[name]
    print(f"{name:14s} " + (f"p50 {r['p50_ms']:.3f} ms p90 {r['p90_ms']:.3f} p99 {r['p99_ms']:.3f}"
                            + (f"  acc {r['accuracy']:.4f}" if r.get("accuracy") is not None else "")
                            if "error" not in r else f"FAILED: {r['error']}"), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--student", default=str(DEFAULT_STUDENT), help="student.json of a convnet_w2_d1 student")
    ap.add_argument("--train", action="store_true", help="train a student even when --student exists")
    ap.add_argument("--epochs", type=int, default=2, help="epochs when the student is trained here")
    ap.add_argument("--limit", type=int, default=None, help="keep at most N training samples (test shrinks too)")
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="smoke run: --limit 2000 --epochs 3 --runs 30 --warmup 3 "
                    "(1 epoch of 16 steps leaves BN running statistics unconverged: chance accuracy)")
    args = ap.parse_args()
    if args.quick:
        args.limit, args.epochs = args.limit or 2000, 3
        args.runs, args.warmup = min(args.runs, 30), min(args.warmup, 3)

    data = load_dataset("fashion-mnist", seed=0, limit=args.limit)
    model, origin = get_student(args, data)
    print(f"student convnet_w2_d1: {origin}", flush=True)
    shape = data.input_shape
    kw = dict(threads=args.threads, runs=args.runs, warmup=args.warmup)
    lat = lambda b: {"p50_ms": b.p50_ms, "p90_ms": b.p90_ms, "p99_ms": b.p99_ms, "mean_ms": b.mean_ms,  # noqa: E731
                     "cold_start_ms": b.cold_start_ms, "model_size_mb": b.model_size_mb, "how": b.how}
    rows: dict[str, dict[str, Any]] = {}
    torch_acc = evaluate(model, data.x_test, data.y_test)  # batched
    attempt(rows, "torch eager", lambda: {**torch_eager_latency(model, shape, **kw), "accuracy": torch_acc,
                                          "how": f"in-process perf_counter loop, torch {torch.__version__}, "
                                                 f"{args.threads} thread(s), {args.runs} runs after {args.warmup} "
                                                 "warm-up, batch 1, inference_mode"})
    with tempfile.TemporaryDirectory(prefix="edgekd-side-by-side-") as tmp:
        d = Path(tmp)
        recs: dict[str, Any] = {}

        def ort(precision: str) -> dict[str, Any]:
            if precision == "fp32":
                recs["fp32"] = export_student(model, data, d / "model_fp32.onnx")
            else:
                recs["int8"] = quantize_student(recs["fp32"], data, d / "model_int8.onnx")
            rec = recs[precision]
            return {**lat(bench_onnx_host(rec.path, shape, **kw)), "accuracy": rec.accuracy, "tool": rec.tool}

        def litert(precision: str) -> dict[str, Any]:
            onnx_path = recs["fp32"].path if "fp32" in recs else None
            rec = export_student_tflite(model, data, d / f"model_{precision}.tflite", precision, onnx_path=onnx_path)
            return {**lat(bench_tflite_host(rec.path, **kw)), "accuracy": rec.accuracy, "tool": rec.tool,
                    "route": rec.config["route"], "input_dtype": rec.config["input"]["dtype"]}

        attempt(rows, "ORT fp32", lambda: ort("fp32"))
        attempt(rows, "ORT int8", lambda: ort("int8"))
        attempt(rows, "LiteRT fp32", lambda: litert("fp32"))
        attempt(rows, "LiteRT int8", lambda: litert("int8"))

    base = rows.get("ORT fp32", {})
    for r in rows.values():
        if "error" not in r and "error" not in base and base:
            r["ratio_p50_vs_ort_fp32"] = r["p50_ms"] / base["p50_ms"]
            r["ratio_p90_vs_ort_fp32"] = r["p90_ms"] / base["p90_ms"]
    drops = {}
    for rt in ("ORT", "LiteRT"):
        a, b = rows.get(f"{rt} fp32", {}), rows.get(f"{rt} int8", {})
        if a.get("accuracy") is not None and b.get("accuracy") is not None:
            drops[rt] = b["accuracy"] - a["accuracy"]

    def cell(n: str) -> str:
        r = rows[n]
        if "error" in r:
            return f"{n} FAILED"
        ratio = f", {r['ratio_p50_vs_ort_fp32']:.2f}x" if "ratio_p50_vs_ort_fp32" in r else ""
        return f"{n} {r['p50_ms']:.3f}/{r['p90_ms']:.3f}/{r['p99_ms']:.3f} ms{ratio}"

    summary = (f"convnet_w2_d1 ({'loaded' if origin.startswith('loaded') else 'trained here'}), batch 1, "
               f"{args.threads} thread(s), {args.runs} runs, p50/p90/p99 and p50 ratio to ORT fp32: "
               + "; ".join(cell(n) for n in rows)
               + "; accuracy " + ", ".join(f"{n} {r['accuracy']:.4f}" for n, r in rows.items() if r.get("accuracy") is not None)
               + " (int8 - fp32: " + ", ".join(f"{k} {v * 100:+.2f} pts" for k, v in drops.items()) + ")"
               + " [torch eager timed in-process; others in a fresh process]")
    cmd = "python benchmarks/runtime_side_by_side.py " + " ".join(sys.argv[1:])
    record("runtime_side_by_side", {"student": "convnet_w2_d1", "origin": origin, "data": data.spec,
                                    "limit": args.limit, "test_samples": len(data.x_test), "input_shape": list(shape),
                                    "threads": args.threads, "runs": args.runs, "warmup": args.warmup,
                                    "runtimes": rows, "int8_minus_fp32_accuracy": drops,
                                    "notes": ["torch eager is timed in-process (perf_counter loop in the benchmark's "
                                              "own process); ORT and LiteRT in a fresh process by edgekd.bench.host",
                                              "LiteRT int8 takes int8 input; the others float32"]},
           summary, cmd.strip())
    print(summary)


if __name__ == "__main__":
    main()
