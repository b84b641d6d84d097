"""Benchmark a model on this host's CPU in a fresh worker process: ONNX in onnxruntime, ``.tflite`` in LiteRT.

The worker (``edgekd.bench._host_worker``) defines what is measured; this module validates the request,
runs the worker with a timeout and turns its raw numbers into a :class:`BenchResult`.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import BenchError, ConfigError
from ..records import BenchResult
from .measure import MB, host_environment, percentiles

BACKEND = "onnxruntime-host"
LITERT_BACKEND = "litert-host"
# worker runtime -> (backend name, package named in the environment and the description, what to check on failure)
_RUNTIMES = {
    "onnxruntime": (BACKEND, "onnxruntime", "check that the model runs in onnxruntime and input_shape matches its input"),
    "litert": (LITERT_BACKEND, "ai-edge-litert", "check that the file is a complete .tflite model that runs in LiteRT "
                                                 "(re-export it with edgekd export --format tflite)"),
}
_SUFFIXES = {".onnx": "onnxruntime", ".tflite": "litert"}
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the edgekd package


def bench_onnx_host(model_path: str | Path, input_shape: tuple[int, ...], *, threads: int = 1, runs: int = 200,
                    warmup: int = 20, timeout_s: float = 300) -> BenchResult:
    """Latency (batch 1), cold start and memory of ``model_path`` under onnxruntime on this CPU.

    ``input_shape`` is the per-sample shape, e.g. ``(1, 28, 28)``; batch 1 is prepended. The input is
    uniform random float32 in [0, 1) with a fixed seed.
    """
    path = Path(model_path)
    _validate(path, threads, runs, warmup, timeout_s)
    return _bench("onnxruntime", path, _valid_shape(input_shape), threads, runs, warmup, timeout_s)


def bench_tflite_host(model_path: str | Path, *, threads: int = 1, runs: int = 200, warmup: int = 20,
                      timeout_s: float = 300, input_shape: tuple[int, ...] | None = None) -> BenchResult:
    """Latency (batch 1), cold start and memory of a ``.tflite`` model under LiteRT on this CPU.

    The input has the model's own (static) shape and dtype: uniform random [0, 1) for float inputs, random
    values over the whole range for int8/uint8 ones, with a fixed seed. ``input_shape`` (per sample, optional)
    is only checked: it must fit the model's input channels-first or channels-last.
    """
    path = Path(model_path)
    _validate(path, threads, runs, warmup, timeout_s)
    shape = None if input_shape is None else _valid_shape(input_shape)
    return _bench("litert", path, shape, threads, runs, warmup, timeout_s)


def bench_host(model_path: str | Path, input_shape: tuple[int, ...] | None = None, **kw: Any) -> BenchResult:
    """Benchmark by file suffix: ``.onnx`` -> :func:`bench_onnx_host` (``input_shape`` required),
    ``.tflite`` -> :func:`bench_tflite_host`. ``kw``: threads, runs, warmup, timeout_s."""
    suffix = Path(model_path).suffix.lower()
    if suffix not in _SUFFIXES:
        raise ConfigError(f"cannot tell the runtime for {model_path}: unknown model suffix '{suffix}'",
                          "pass an .onnx file (onnxruntime) or a .tflite file (LiteRT)")
    if _SUFFIXES[suffix] == "litert":
        return bench_tflite_host(model_path, input_shape=input_shape, **kw)
    if input_shape is None:
        raise ConfigError(f"benchmarking the ONNX model {model_path} needs input_shape",
                          "pass the per-sample shape without the batch, e.g. (1, 28, 28)")
    return bench_onnx_host(model_path, input_shape, **kw)


def _bench(runtime: str, path: Path, shape: tuple[int, ...] | None, threads: int, runs: int, warmup: int,
           timeout_s: float) -> BenchResult:
    backend, package, _ = _RUNTIMES[runtime]
    raw = _run_worker(runtime, path, shape, threads, runs, warmup, timeout_s)
    samples = raw.get("samples_ms") or []
    if len(samples) != runs:
        raise BenchError(f"the benchmark worker returned {len(samples)} timings instead of {runs}",
                         "re-run the benchmark; report a bug if it persists")
    stats = percentiles(samples)
    version = raw["runtime_version"]
    env = {**host_environment(), package: version, "input_shape": raw["input_shape"], "input_dtype": raw["input_dtype"]}
    how = (f"measured on this host CPU ({env['cpu']}) with {package} {version}, "
           f"{threads} thread{'s' if threads != 1 else ''}, {runs} runs after {warmup} warm-up, batch 1 "
           f"({raw['input_dtype']} input), in a fresh process")
    return BenchResult(backend=backend, model_path=str(path), source="measured", how=how, threads=threads,
                       runs=runs, warmup=warmup, **stats, cold_start_ms=float(raw["cold_start_ms"]),
                       peak_rss_mb=float(raw["peak_rss_mb"]), baseline_rss_mb=float(raw["baseline_rss_mb"]),
                       model_size_mb=path.stat().st_size / MB, environment=env)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(path: Path, threads: Any, runs: Any, warmup: Any, timeout_s: Any) -> None:
    if not _is_int(threads) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}", "pass threads=1 or more")
    if not _is_int(runs) or runs < 1:
        raise ConfigError(f"runs must be an integer >= 1, got {runs!r}", "pass runs=200 (the default) or more")
    if not _is_int(warmup) or warmup < 0:
        raise ConfigError(f"warmup must be an integer >= 0, got {warmup!r}", "pass warmup=20 (the default)")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
            math.isfinite(timeout_s) and timeout_s > 0):
        raise ConfigError(f"timeout_s must be a positive number, got {timeout_s!r}", "pass e.g. timeout_s=300")
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}", "export the model first or fix the path")


def _valid_shape(input_shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if not shape or not all(_is_int(d) and d > 0 for d in shape):
        raise ConfigError(f"input_shape must be positive integers per sample, got {input_shape!r}",
                          "pass the per-sample shape without the batch, e.g. (1, 28, 28)")
    return shape


def _run_worker(runtime: str, path: Path, shape: tuple[int, ...] | None, threads: int, runs: int, warmup: int,
                timeout_s: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "edgekd.bench._host_worker", str(path.resolve()), "--runtime", runtime,
               "--threads", str(threads), "--runs", str(runs), "--warmup", str(warmup), "--out", str(out)]
        if shape is not None:
            cmd += ["--shape", ",".join(map(str, shape))]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, errors="replace", timeout=timeout_s, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the benchmark worker did not finish within {timeout_s:g} s",
                             "raise timeout_s or lower runs/warmup") from None
        if proc.returncode != 0 or not out.is_file():
            raise BenchError(f"the benchmark worker failed (exit {proc.returncode}): {_last_line(proc.stderr)}",
                             _RUNTIMES[runtime][2])
        try:
            return json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BenchError(f"the benchmark worker wrote an unreadable result ({e})",
                             "re-run the benchmark; report a bug if it persists") from None


def _last_line(stderr: str | None) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no error output"
