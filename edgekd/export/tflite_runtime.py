"""Run ``.tflite`` models in LiteRT on NCHW (channels-first) float data, as edgekd's other runtimes take it.

edgekd's TFLite exports are channels-last for inputs of rank >= 3 (``NHWC`` images, ``NWC`` sequences) with a
static batch of 1, and full-int8 models take and return int8 tensors. :func:`run_tflite` hides all of that:
it transposes the data when the model's input is the channels-last form of the data's shape, quantizes the
input and dequantizes the output with the tensors' own (scale, zero point), and loops over the batch. The
interpreter is ``ai_edge_litert`` (the successor of tflite-runtime; see TOOLCHAIN.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..data.image_rows import batchable
from ..errors import ConfigError, ExportError, first_line

LAYOUTS = ("auto", "channels_first", "channels_last")
_CHANNELS_LAST_NAMES = {2: "NC", 3: "NWC", 4: "NHWC", 5: "NDHWC"}
_CHANNELS_FIRST_NAMES = {2: "NC", 3: "NCW", 4: "NCHW", 5: "NCDHW"}


def load_interpreter(path: str | Path, threads: int = 1):
    """A LiteRT interpreter with tensors allocated; a missing or unreadable file is a one-line edgekd error."""
    from ai_edge_litert.interpreter import Interpreter

    from ..console import native_stderr_quiet

    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads must be an integer >= 1, got {threads!r}", "pass threads=1 or more")
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"TFLite model not found: {p}", "export the model first or fix the path")
    try:
        interp = Interpreter(model_path=str(p), num_threads=threads)
        with native_stderr_quiet():  # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate" line
            interp.allocate_tensors()
    except Exception as e:  # LiteRT raises ValueError/RuntimeError with multi-line C++ text
        raise ExportError(f"LiteRT cannot load {p} ({type(e).__name__}: {first_line(e)})",
                          "check that the file is a complete .tflite model (re-export it)") from None
    return interp


def tflite_io(path: str | Path) -> dict[str, Any]:
    """Name, shape, dtype and (scale, zero point) of the model's first input and output, for records and tests."""
    interp = load_interpreter(path)
    inp, out = interp.get_input_details(), interp.get_output_details()
    if len(inp) != 1 or not out:
        raise ExportError(f"{path} has {len(inp)} inputs and {len(out)} outputs; edgekd runs single-input models",
                          "export a model with one input tensor")
    return {"input": _describe(inp[0]), "output": _describe(out[0]), "n_outputs": len(out)}


def tensor_dtypes(path: str | Path) -> dict[str, int]:
    """How many tensors of each dtype the model holds (weights included): shows what a quantization did."""
    counts: dict[str, int] = {}
    for detail in load_interpreter(path).get_tensor_details():
        name = np.dtype(detail["dtype"]).name
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def _describe(d: dict) -> dict[str, Any]:
    scale, zero = d["quantization"]
    return {"name": d["name"], "shape": tuple(int(s) for s in d["shape"]), "dtype": np.dtype(d["dtype"]).name,
            "quantization": [float(scale), int(zero)] if scale else None}


def layout_name(rank: int, channels_last: bool) -> str:
    """'NHWC' / 'NCHW' style name of a tensor layout of ``rank`` dimensions."""
    names = _CHANNELS_LAST_NAMES if channels_last else _CHANNELS_FIRST_NAMES
    return names.get(rank, f"rank{rank}-{'channels_last' if channels_last else 'channels_first'}")


def to_channels_last(x: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, *spatial, C); 2-D data is returned unchanged."""
    if x.ndim < 3:
        return x
    return np.ascontiguousarray(np.moveaxis(x, 1, -1))


def feed_layout(model_shape: tuple[int, ...], data_shape: tuple[int, ...], layout: str = "auto") -> bool:
    """True when channels-first data must be transposed to channels-last to fit ``model_shape`` (batch excluded).

    With ``layout="auto"`` a shape that fits both ways (e.g. 3x3x3) is taken as channels-last, what edgekd's
    exporters write; pass ``layout`` explicitly for other models.
    """
    if layout not in LAYOUTS:
        raise ConfigError(f"unknown layout '{layout}'", f"use one of {', '.join(LAYOUTS)}")
    last = tuple(data_shape[1:]) + tuple(data_shape[:1]) if len(data_shape) >= 2 else tuple(data_shape)
    fits_first, fits_last = _fits(model_shape, data_shape), _fits(model_shape, last)
    if layout == "channels_first" and fits_first:
        return False
    if layout in ("channels_last", "auto") and fits_last and len(data_shape) >= 2:
        return True
    if layout == "auto" and fits_first:
        return False
    raise ConfigError(f"data samples of shape {tuple(data_shape)} do not fit the TFLite model input "
                      f"{tuple(model_shape)} (layout {layout})",
                      "pass NCHW / N x F float data shaped like the model's training input")


def _fits(model: tuple[int, ...], data: tuple[int, ...]) -> bool:
    return len(model) == len(data) and all(m <= 0 or m == d for m, d in zip(model, data))


def run_tflite(path: str | Path, x: np.ndarray, threads: int = 1, layout: str = "auto") -> np.ndarray:
    """Run the model's first input on channels-first float ``x`` ``(N, ...)``; return its first output, float32.

    Handles channels-last models (data transposed), int8/uint8 I/O (quantized and dequantized with the
    tensors' own parameters) and a static batch (chunks of the model's batch, the last one padded).
    Outputs are returned as the model writes them (classifier logits ``(N, K)``).
    """
    data = batchable(x)  # lazy image rows stay lazy: read, transposed and fed a chunk at a time
    if data.ndim < 2 or data.shape[0] < 1 or not np.issubdtype(data.dtype, np.number):
        raise ConfigError(f"run_tflite needs a non-empty numeric batch (N, ...), got shape {data.shape}",
                          "pass float data with the batch dimension first")
    interp = load_interpreter(path, threads)
    inp, out = interp.get_input_details(), interp.get_output_details()
    if len(inp) != 1 or not out:
        raise ConfigError(f"{path} has {len(inp)} inputs; run_tflite feeds exactly one",
                          "use a single-input model")
    inp, out = inp[0], out[0]
    model_shape = tuple(int(s) for s in inp["shape"])
    last = feed_layout(model_shape[1:], data.shape[1:], layout)
    sample = tuple(data.shape[1:])
    if last and len(sample) >= 2:
        sample = sample[1:] + sample[:1]
    from ..console import native_stderr_quiet

    with native_stderr_quiet():  # LiteRT may make its delegate again on a resize or the first invoke (INFO line)
        return _run_batches(interp, inp, out, data, model_shape, sample, last, path)


def _run_batches(interp, inp: dict, out: dict, data: np.ndarray, model_shape: tuple[int, ...],
                 sample: tuple[int, ...], last: bool, path: Any) -> np.ndarray:
    step = _batch_step(interp, inp, model_shape, len(data), sample)
    chunks = []
    for start in range(0, len(data), step):
        chunk = np.asarray(data[start:start + step])
        chunk = (to_channels_last(chunk) if last else chunk).astype(np.float32, copy=False)
        n = len(chunk)
        if n < step:
            chunk = np.concatenate([chunk, np.zeros((step - n,) + chunk.shape[1:], np.float32)])
        try:
            interp.set_tensor(inp["index"], quantize_input(chunk, inp))
            interp.invoke()
        except Exception as e:
            raise ExportError(f"LiteRT failed to run {path} ({type(e).__name__}: {first_line(e)})",
                              "check the input shape and dtype against the model") from None
        chunks.append(dequantize_output(interp.get_tensor(out["index"]), out)[:n])
    return np.concatenate(chunks, axis=0)


def _batch_step(interp, inp: dict, model_shape: tuple[int, ...], n: int, sample: tuple[int, ...],
                dynamic_batch: int = 64) -> int:
    """The batch the interpreter runs: the model's static batch, or up to ``dynamic_batch`` when it is dynamic
    (``n`` samples of shape ``sample`` as fed)."""
    signature = inp.get("shape_signature")
    if signature is not None and len(signature) and int(signature[0]) == -1:
        step = min(dynamic_batch, n)
        if model_shape[0] != step:
            interp.resize_tensor_input(inp["index"], [step, *sample])
            interp.allocate_tensors()
        return step
    return max(1, model_shape[0])


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Float data -> the input tensor's dtype (affine int quantization when it is an integer tensor)."""
    dtype = np.dtype(detail["dtype"])
    if dtype.kind == "f":
        return x.astype(dtype, copy=False)
    scale, zero = detail["quantization"]
    if not scale:
        raise ExportError(f"integer input '{detail['name']}' has no quantization scale",
                          "re-export the model with quantized input parameters")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale + zero), info.min, info.max).astype(dtype)


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    """An output tensor -> float32 (undoing affine int quantization when it is an integer tensor)."""
    if np.dtype(detail["dtype"]).kind == "f":
        return y.astype(np.float32, copy=True)
    scale, zero = detail["quantization"]
    if not scale:
        return y.astype(np.float32)
    return ((y.astype(np.float32) - zero) * scale).astype(np.float32)
