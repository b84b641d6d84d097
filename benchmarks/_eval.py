"""Shared by the distillation benchmarks: accuracy of a student's int8 export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def int8_accuracy(model: Any, data: Any, per_channel: bool = True) -> float:
    """Test accuracy of ``model`` exported to ONNX and quantized to int8 the way a build does (PTQ: MinMax,
    per-channel weights unless ``per_channel=False``)."""
    from edgekd.quantize.ort_int8 import OrtInt8Config
    from edgekd.stages import export_student, quantize_student

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_student(model, data, Path(tmp) / "m.onnx")
        return quantize_student(fp32, data, Path(tmp) / "m_int8.onnx", OrtInt8Config(per_channel=per_channel)).accuracy
