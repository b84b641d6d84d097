"""The ``host`` backend: each artifact measured in its runtime on this CPU, in a fresh process (``bench/host.py``).

What the ``host`` target judges, and on every other target the reference shown beside the device's figure.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..bench.host import bench_host
from ..bench.measure import cpu_model
from ..records import BenchResult, LatencyFigure
from .base import Backend, Job, Settings

if TYPE_CHECKING:
    from ..targets import TargetProfile

RUNTIME_OF_SUFFIX = {".onnx": "onnxruntime", ".tflite": "litert"}


class HostBackend(Backend):
    name = "host"
    kind = "measured"

    def figures(self, jobs: list[Job], target: "TargetProfile", settings: Settings) -> list[LatencyFigure]:
        threads = host_threads(target)
        return [measured(bench_host(j.model, j.input_shape, threads=threads, runs=settings.runs,
                                    warmup=settings.warmup), target)
                for j in jobs]

    def key(self, target: "TargetProfile", settings: Settings) -> tuple:
        return host_threads(target), settings.runs, settings.warmup, cpu_model()

    def note(self, target: "TargetProfile", threads: int, runs: int) -> str:
        return (f"Latency measured on this host CPU in each candidate's runtime, {threads} thread(s), batch 1, "
                f"{runs} timed runs after warm-up.")

    def describe(self, fig: LatencyFigure, target: "TargetProfile") -> list[str]:
        b = fig.detail  # a BenchResult
        return [f"p50 {b.p50_ms:.3f} ms  p90 {b.p90_ms:.3f} ms  p99 {b.p99_ms:.3f} ms  cold start "
                f"{b.cold_start_ms:.1f} ms  model memory {b.model_memory_mb:.1f} MB (peak RSS {b.peak_rss_mb:.1f} MB)",
                b.how]


def host_threads(target: "TargetProfile") -> int:
    """Benchmark threads on this host: the target's, at most this machine's cores."""
    import os

    return max(1, min(target.threads, os.cpu_count() or 1))


def measured(b: BenchResult, target: "TargetProfile") -> LatencyFigure:
    """A host measurement as a figure; its source says whether this host is the target."""
    runtime = RUNTIME_OF_SUFFIX.get(Path(b.model_path).suffix.lower(), "")
    source = (f"measured on host CPU ({runtime})" if target.backend == "host" else
              f"measured on host x86 CPU ({runtime}), not on {target.core}")
    return LatencyFigure(backend="host", kind="measured", source=source, how=b.how, detail=b, p50_ms=b.p50_ms,
                         p90_ms=b.p90_ms, p99_ms=b.p99_ms, mean_ms=b.mean_ms, cold_start_ms=b.cold_start_ms,
                         memory_mb=b.model_memory_mb)
