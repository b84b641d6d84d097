"""edgekd: distil compact students from a teacher, export and quantize them, and prove they fit a device.

The public API. Importing edgekd is light: torch, onnxruntime and TensorFlow are imported only inside
the functions that need them.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "build": "edgekd.pipeline", "BuildConfig": "edgekd.pipeline",
    "DistillConfig": "edgekd.distill.config",
    "load_dataset": "edgekd.data", "Dataset": "edgekd.data",
    "load_target": "edgekd.targets", "list_targets": "edgekd.targets", "TargetProfile": "edgekd.targets",
    "Budget": "edgekd.targets",
    "load_teacher": "edgekd.models.teachers", "StudentSpec": "edgekd.models.students",
    "build_student": "edgekd.models.students", "STUDENTS": "edgekd.models.students",
    "LOSSES": "edgekd.distill.losses",
    "distill_student": "edgekd.stages", "export_student": "edgekd.stages", "quantize_student": "edgekd.stages",
    "load_checkpoint": "edgekd.stages",
    "bench_onnx_host": "edgekd.bench.host", "bench_tflite_host": "edgekd.bench.host", "bench_host": "edgekd.bench.host",
    "export_student_tflite": "edgekd.stages", "export_tflite": "edgekd.export.tflite",
    "EdgeKDError": "edgekd.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'edgekd' has no attribute {name!r}")
