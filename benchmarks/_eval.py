"""Shared by the distillation benchmarks: accuracy of a student's int8 export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def int8_accuracy(model: Any, data: Any) -> float:
    """Test accuracy of ``model`` exported to ONNX and quantized to int8 the way a build does (PTQ)."""
    from edgekd.stages import export_student, quantize_student

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_student(model, data, Path(tmp) / "m.onnx")
        return quantize_student(fp32, data, Path(tmp) / "m_int8.onnx").accuracy
