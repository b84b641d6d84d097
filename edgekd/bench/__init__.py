"""Measure latency and memory of exported models. Heavy libraries are imported only in the worker process."""

from __future__ import annotations

from .host import bench_host, bench_onnx_host, bench_tflite_host
from .measure import percentiles

__all__ = ["bench_host", "bench_onnx_host", "bench_tflite_host", "percentiles"]
