"""Benchmark an ONNX model with ONNX Runtime on this host's CPU, in a fresh worker process.

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
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding the edgekd package


def bench_onnx_host(model_path: str | Path, input_shape: tuple[int, ...], *, threads: int = 1, runs: int = 200,
                    warmup: int = 20, timeout_s: float = 300) -> BenchResult:
    """Latency (batch 1), cold start and memory of ``model_path`` under onnxruntime on this CPU.

    ``input_shape`` is the per-sample shape, e.g. ``(1, 28, 28)``; batch 1 is prepended. The input is
    uniform random float32 in [0, 1) with a fixed seed.
    """
    path = Path(model_path)
    shape = _validate(path, input_shape, threads, runs, warmup, timeout_s)
    raw = _run_worker(path, shape, threads, runs, warmup, timeout_s)
    samples = raw.get("samples_ms") or []
    if len(samples) != runs:
        raise BenchError(f"the benchmark worker returned {len(samples)} timings instead of {runs}",
                         "re-run the benchmark; report a bug if it persists")
    stats = percentiles(samples)
    env = {**host_environment(), "onnxruntime": raw["onnxruntime"], "input_shape": raw["input_shape"]}
    how = (f"measured on this host CPU ({env['cpu']}) with onnxruntime {raw['onnxruntime']}, "
           f"{threads} thread{'s' if threads != 1 else ''}, {runs} runs after {warmup} warm-up, batch 1, "
           f"in a fresh process")
    return BenchResult(backend=BACKEND, model_path=str(path), source="measured", how=how, threads=threads,
                       runs=runs, warmup=warmup, **stats, cold_start_ms=float(raw["cold_start_ms"]),
                       peak_rss_mb=float(raw["peak_rss_mb"]), baseline_rss_mb=float(raw["baseline_rss_mb"]),
                       model_size_mb=path.stat().st_size / MB, environment=env)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(path: Path, input_shape: Any, threads: Any, runs: Any, warmup: Any, timeout_s: Any) -> tuple[int, ...]:
    if not _is_int(threads) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}", "pass threads=1 or more")
    if not _is_int(runs) or runs < 1:
        raise ConfigError(f"runs must be an integer >= 1, got {runs!r}", "pass runs=200 (the default) or more")
    if not _is_int(warmup) or warmup < 0:
        raise ConfigError(f"warmup must be an integer >= 0, got {warmup!r}", "pass warmup=20 (the default)")
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not (
            math.isfinite(timeout_s) and timeout_s > 0):
        raise ConfigError(f"timeout_s must be a positive number, got {timeout_s!r}", "pass e.g. timeout_s=300")
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = ()
    if not shape or not all(_is_int(d) and d > 0 for d in shape):
        raise ConfigError(f"input_shape must be positive integers per sample, got {input_shape!r}",
                          "pass the per-sample shape without the batch, e.g. (1, 28, 28)")
    if not path.is_file():
        raise ConfigError(f"model file not found: {path}", "export the model first or fix the path")
    return shape


def _run_worker(path: Path, shape: tuple[int, ...], threads: int, runs: int, warmup: int,
                timeout_s: float) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(_PACKAGE_ROOT), env.get("PYTHONPATH", "")) if p)
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "edgekd.bench._host_worker", str(path.resolve()),
               "--shape", ",".join(map(str, shape)), "--threads", str(threads), "--runs", str(runs),
               "--warmup", str(warmup), "--out", str(out)]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  text=True, errors="replace", timeout=timeout_s, env=env, cwd=tmp)
        except subprocess.TimeoutExpired:
            raise BenchError(f"the benchmark worker did not finish within {timeout_s:g} s",
                             "raise timeout_s or lower runs/warmup") from None
        if proc.returncode != 0 or not out.is_file():
            raise BenchError(f"the benchmark worker failed (exit {proc.returncode}): {_last_line(proc.stderr)}",
                             "check that the model runs in onnxruntime and input_shape matches its input")
        try:
            return json.loads(out.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise BenchError(f"the benchmark worker wrote an unreadable result ({e})",
                             "re-run the benchmark; report a bug if it persists") from None


def _last_line(stderr: str | None) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no error output"
