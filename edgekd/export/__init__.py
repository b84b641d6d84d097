"""Export trained students to ONNX and check that the exported model agrees with its source.

Heavy libraries (torch, onnx, onnxruntime) are imported inside the functions, never here.
"""

from __future__ import annotations

from .parity import PARITY_DEFAULTS, ParityReport, check_parity, compare_outputs, run_onnx

__all__ = ["PARITY_DEFAULTS", "ParityReport", "check_parity", "compare_outputs", "export_onnx", "run_onnx"]


def export_onnx(*args, **kwargs):  # thin forwarder so that importing this package stays light
    from .onnx import export_onnx as _export_onnx

    return _export_onnx(*args, **kwargs)


export_onnx.__doc__ = "See :func:`edgekd.export.onnx.export_onnx`."
