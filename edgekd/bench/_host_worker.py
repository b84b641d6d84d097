"""Benchmark worker: run as ``python -m edgekd.bench._host_worker MODEL --shape 1,8,8 --out RESULT.json ...``.

Runs in its own process so that memory and cold start are those of one fresh session:
  baseline RSS  after ``import numpy, onnxruntime`` (the runtime's own cost), before the session exists;
  cold start    InferenceSession creation + first inference, in ms;
  latencies     ``runs`` timed inferences (perf_counter_ns) after ``warmup`` untimed ones, batch 1;
  peak RSS      getrusage ru_maxrss at the end, so model memory = peak - baseline.
On failure it prints one line ``edgekd bench worker: <cause>`` to stderr and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="edgekd.bench._host_worker")
    p.add_argument("model")
    p.add_argument("--shape", required=True, help="per-sample input shape, comma-separated; batch 1 is prepended")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="where to write the JSON result")
    return p.parse_args(argv)


def _feed(np, sess, shape: tuple[int, ...], seed: int) -> dict:
    inp = sess.get_inputs()[0]
    dtypes = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}
    if inp.type not in dtypes:
        raise ValueError(f"model input '{inp.name}' has type {inp.type}; only float inputs are benchmarked")
    full = (1, *shape)
    model_shape = list(inp.shape)
    fits = len(model_shape) == len(full) and all(
        not isinstance(m, int) or m <= 0 or m == d for m, d in zip(model_shape, full))
    if not fits:
        shown = tuple(m if isinstance(m, int) else "N" for m in model_shape)
        raise ValueError(f"input shape {full} does not fit model input '{inp.name}' {shown}")
    x = np.random.default_rng(seed).random(full, dtype=np.float32).astype(dtypes[inp.type])
    return {inp.name: x}


def measure(args: argparse.Namespace) -> dict:
    from edgekd.bench.measure import current_rss_mb, peak_rss_mb
    from edgekd.export.parity import make_session

    import numpy as np
    import onnxruntime as ort

    baseline = current_rss_mb()
    shape = tuple(int(s) for s in args.shape.split(",") if s.strip())
    t0 = time.perf_counter_ns()
    sess = make_session(args.model, args.threads)  # the same session settings as parity checks
    feed = _feed(np, sess, shape, args.seed)
    sess.run(None, feed)
    cold_ms = (time.perf_counter_ns() - t0) / 1e6
    for _ in range(args.warmup):
        sess.run(None, feed)
    samples = []
    for _ in range(args.runs):
        t = time.perf_counter_ns()
        sess.run(None, feed)
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return {"onnxruntime": ort.__version__, "baseline_rss_mb": baseline, "peak_rss_mb": peak_rss_mb(),
            "cold_start_ms": cold_ms, "samples_ms": samples, "input_shape": [1, *shape]}


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    try:
        result = measure(args)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f)
    except Exception as e:  # report one line; the parent turns it into a BenchError
        text = " ".join(str(e).split())[:300]
        print(f"edgekd bench worker: {type(e).__name__}: {text}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
