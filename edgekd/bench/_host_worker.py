"""Benchmark worker: ``python -m edgekd.bench._host_worker MODEL --runtime onnxruntime|litert --out RESULT.json ...``.

Runs in its own process so that memory and cold start are those of one fresh session:
  baseline RSS  after importing numpy and the runtime (its own cost), before the model is loaded;
  cold start    model load + first inference, in ms: onnxruntime InferenceSession creation, or LiteRT
                Interpreter creation + allocate_tensors; then one inference;
  latencies     ``runs`` timed inferences (perf_counter_ns) after ``warmup`` untimed ones, batch 1; an
                inference is ``session.run`` / ``set_tensor`` + ``invoke`` + ``get_tensor``;
  peak RSS      VmHWM at the end, so model memory = peak - baseline.
Inputs are seeded random data: uniform [0, 1) for float inputs, the whole value range for integer ones.
On failure it prints one line ``edgekd bench worker: <cause>`` to stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

Load = Callable[[], tuple[Callable[[], Any], dict]]  # loads the model; returns one inference and input facts


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="edgekd.bench._host_worker")
    p.add_argument("model")
    p.add_argument("--runtime", choices=sorted(RUNTIMES), default="onnxruntime")
    p.add_argument("--shape", default=None, help="per-sample input shape, comma-separated; batch 1 is prepended "
                                                 "(required for onnxruntime; for litert a check of the model's own)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="where to write the JSON result")
    return p.parse_args(argv)


def _shape(args: argparse.Namespace) -> tuple[int, ...] | None:
    return None if args.shape is None else tuple(int(s) for s in args.shape.split(",") if s.strip())


def _random(np, shape: tuple[int, ...], dtype, seed: int):
    """Seeded inputs: uniform [0, 1) for floats, uniform over the whole range for integer (quantized) tensors."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, size=shape, dtype=dtype)
    return rng.random(shape, dtype=np.float32).astype(dtype)


def _ort_feed(np, sess, shape: tuple[int, ...] | None, seed: int) -> dict:
    inp = sess.get_inputs()[0]
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
    if inp.type not in dtypes:
        raise ValueError(f"model input '{inp.name}' has type {inp.type}; only float inputs are benchmarked")
    if shape is None:
        raise ValueError("onnxruntime needs --shape (the per-sample input shape)")
    full = (1, *shape)
    model_shape = list(inp.shape)
    fits = len(model_shape) == len(full) and all(
        not isinstance(m, int) or m <= 0 or m == d for m, d in zip(model_shape, full))
    if not fits:
        shown = tuple(m if isinstance(m, int) else "N" for m in model_shape)
        raise ValueError(f"input shape {full} does not fit model input '{inp.name}' {shown}")
    return {inp.name: _random(np, full, dtypes[inp.type], seed)}


def _onnxruntime(np, args: argparse.Namespace) -> tuple[str, Load]:
    import onnxruntime as ort

    from edgekd.export.parity import make_session

    def load():
        sess = make_session(args.model, args.threads)  # the same session settings as parity checks
        feed = _ort_feed(np, sess, _shape(args), args.seed)
        x = next(iter(feed.values()))
        return (lambda: sess.run(None, feed)), {"input_shape": list(x.shape), "input_dtype": x.dtype.name}

    return ort.__version__, load


def _litert(np, args: argparse.Namespace) -> tuple[str, Load]:
    from importlib.metadata import version

    import ai_edge_litert.interpreter  # noqa: F401  (imported before the baseline is taken)

    from edgekd.export.tflite_runtime import feed_layout, load_interpreter

    def load():
        interp = load_interpreter(args.model, args.threads)  # Interpreter + allocate_tensors
        inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
        model_shape = tuple(max(1, int(s)) for s in inp["shape"])
        if _shape(args) is not None:
            feed_layout(model_shape[1:], _shape(args))  # the caller's shape must fit (NCHW or NHWC)
        x = _random(np, model_shape, inp["dtype"], args.seed)

        def run():
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(out["index"])

        return run, {"input_shape": list(x.shape), "input_dtype": x.dtype.name}

    return version("ai-edge-litert"), load


RUNTIMES: dict[str, Callable[..., tuple[str, Load]]] = {"onnxruntime": _onnxruntime, "litert": _litert}


def measure(args: argparse.Namespace) -> dict:
    from edgekd.bench.measure import current_rss_mb, peak_rss_mb

    import numpy as np

    runtime_version, load = RUNTIMES[args.runtime](np, args)
    baseline = current_rss_mb()
    t0 = time.perf_counter_ns()
    infer, facts = load()
    infer()
    cold_ms = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(args.warmup):
        infer()
    samples = []
    for _ in range(args.runs):
        t = time.perf_counter_ns()
        infer()
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return {"runtime": args.runtime, "runtime_version": runtime_version, "baseline_rss_mb": baseline,
            "peak_rss_mb": peak_rss_mb(), "cold_start_ms": cold_ms, "samples_ms": samples, **facts}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        result = measure(args)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f)
    except Exception as e:  # report one line; the parent turns it into a BenchError
        text = " ".join(str(getattr(e, "cause", None) or e).split())[:300]  # an edgekd error: its cause only
        print(f"edgekd bench worker: {type(e).__name__}: {text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
