"""Post-training quantization of exported models. Heavy libraries are imported inside the functions."""

from __future__ import annotations

from .ort_int8 import OrtInt8Config, quantize_onnx_int8

__all__ = ["OrtInt8Config", "quantize_onnx_int8"]
