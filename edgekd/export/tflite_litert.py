"""The ``litert-torch`` route: a torch module straight to ``.tflite``, without ONNX or TensorFlow.

Precisions (all with a static batch of 1, channels-last input for inputs of rank >= 3 via
``litert_torch.to_channel_last_io``, so the device runtime gets NHWC):

- ``fp32``: ``litert_torch.convert``.
- ``fp16``: fp16 weights (float compute, DEQUANTIZE on the weights) through litert-torch's own
  ai-edge-quantizer recipe ``full_fp16_recipe`` (its "generative" recipe; it applies to any model).
- ``dynamic``: dynamic-range int8 (int8 weights, activations quantized at run time) through PT2E with
  ``is_dynamic=True``.
- ``int8``: full int8 through PT2E static quantization (``prepare_pt2e`` -> calibration -> ``convert_pt2e``),
  per-channel symmetric weights, histogram-calibrated activations; litert-torch writes int8 input and
  output tensors itself. Should a version write float I/O instead, LiteRT's ``modify_model_interface`` turns it
  into int8 I/O; a model that still has float I/O is refused.

Every failure is raised as :class:`ExportError` so that ``converter="auto"`` can fall back to onnx2tf.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ExportError, first_line
from .tflite_runtime import layout_name, tflite_io, to_channels_last

ROUTE = "litert-torch"
_INT8_TYPE = 9  # tflite schema TensorType.INT8
_CALIB_BATCH = 32


def convert_litert(model: Any, sample: np.ndarray, out_file: Path, precision: str,
                   calibration: np.ndarray | None = None) -> dict[str, Any]:
    """Convert eval-mode ``model`` to ``out_file`` at ``precision``; return ``{"tool", "layout", "notes"}``.

    ``sample`` (NCHW / N x F float32) gives the traced shape (its first sample: batch 1); ``calibration``
    (same per-sample shape) is required for ``int8``.
    """
    try:
        import litert_torch
        import torch
    except Exception as e:  # not installed, or an incompatible install
        raise ExportError(f"litert-torch is not usable ({type(e).__name__}: {first_line(e)})",
                          "install it (pip install litert-torch) or use converter='onnx2tf'") from None
    channels_last = sample.ndim >= 3
    inner = litert_torch.to_channel_last_io(model, args=[0]) if channels_last else model
    wrapped = _single_io(torch)(inner).eval()
    feed = to_channels_last(sample[:1]) if channels_last else sample[:1]
    args = (torch.from_numpy(np.ascontiguousarray(feed, dtype=np.float32)),)
    notes: list[str] = []
    try:
        with _quiet():
            edge_model = _convert(litert_torch, torch, wrapped, args, precision, calibration, channels_last, notes)
            edge_model.export(str(out_file))
            del edge_model
    except ExportError:
        raise
    except Exception as e:  # litert-torch/torch.export raise many types, often with multi-line text
        raise ExportError(f"litert-torch could not convert the model to {precision} ({type(e).__name__}: "
                          f"{first_line(e)})",
                          "use converter='onnx2tf', or replace the unsupported op in the model") from None
    finally:  # every precision goes through torch.export, whose caches would keep each conversion's graphs
        _forget_graphs()
    if not out_file.is_file() or out_file.stat().st_size == 0:
        raise ExportError("litert-torch wrote no .tflite file", "check free disk space or use converter='onnx2tf'")
    if precision == "int8":
        _require_int8_io(out_file, notes)
    tool = f"litert-torch {litert_torch.__version__} (torch {torch.__version__.split('+')[0]}"
    tool += {"fp32": ")", "fp16": ", fp16 weights via ai-edge-quantizer)",
             "dynamic": ", PT2E dynamic-range int8)", "int8": ", PT2E static int8, int8 I/O)"}[precision]
    return {"tool": tool, "layout": layout_name(sample.ndim, channels_last), "notes": notes}


def _convert(litert_torch, torch, module, args, precision: str, calibration, channels_last: bool,
             notes: list[str]):
    """Dispatch on precision; returns litert-torch's model object (``.export(path)``)."""
    if precision == "fp32":
        return litert_torch.convert(module, args)
    if precision == "fp16":
        from litert_torch.generative.quantize import quant_recipes

        return litert_torch.convert(module, args, quant_config=quant_recipes.full_fp16_recipe())
    calib = None
    if precision == "int8":
        calib = to_channels_last(calibration) if channels_last else calibration
        notes.append(f"PT2E calibration on {len(calib)} samples")
    return _convert_pt2e(litert_torch, torch, module, args, dynamic=precision == "dynamic", calibration=calib,
                         notes=notes)


def _convert_pt2e(litert_torch, torch, module, args, *, dynamic: bool, calibration: np.ndarray | None,
                  notes: list[str]):
    """PT2E: export, annotate with litert-torch's quantizer, observe (calibrate), convert, lower to TFLite."""
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    quantizer = PT2EQuantizer().set_global(
        get_symmetric_quantization_config(is_per_channel=True, is_dynamic=dynamic))
    graph, batch = _export_for_calibration(torch, module, args, calibration, notes)
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        if calibration is None:
            prepared(*args)  # dynamic range: one pass runs the weight observers
        else:
            for i in range(0, len(calibration), batch):
                prepared(torch.from_numpy(np.ascontiguousarray(calibration[i:i + batch], dtype=np.float32)))
    converted = convert_pt2e(prepared, fold_quantize=False)
    # litert-torch re-exports the converted graph with the batch-1 ``args``: the .tflite has a static batch of 1
    return litert_torch.convert(converted, args, quant_config=QuantConfig(pt2e_quantizer=quantizer))


def _forget_graphs() -> None:
    """torchao and torch.ao memoize ``[_]assert_and_get_unique_device(module)`` with an unbounded functools.cache, so
    every graph PT2E prepares or converts stays alive; torch.export's fake-tensor-to-node map, FakeTensorMode's
    dispatch cache and ShapeEnv's method caches keep more of each export (~3 MB per int8 conversion in all:
    benchmarks/soak.py saw resident memory grow with every fresh build). Run after every conversion, whatever the
    precision: fp32 and fp16 conversions export too.
    Clearing these caches frees them; they only speed up repeated calls on the same graph."""
    import importlib

    for module, name in (("torchao.utils", "_assert_and_get_unique_device"),
                         ("torch.ao.quantization.fx.utils", "assert_and_get_unique_device")):
        try:
            getattr(importlib.import_module(module), name).cache_clear()
        except (ImportError, AttributeError):  # another version: nothing to clear
            pass
    try:
        from torch._subclasses.fake_tensor import FakeTensorMode
        from torch.fx.experimental import proxy_tensor
        from torch.fx.experimental.symbolic_shapes import ShapeEnv

        FakeTensorMode.cache_clear()
        proxy_tensor._FAKE_TENSOR_ID_TO_PROXY_MAP_FOR_EXPORT.clear()  # fake tensor id -> graph node, export-time only
        for method in vars(ShapeEnv).values():  # lru caches keyed on each export's ShapeEnv (and its fake tensors)
            if callable(getattr(method, "cache_clear", None)):
                method.cache_clear()
    except (ImportError, AttributeError):
        pass


def _export_for_calibration(torch, module, args, calibration: np.ndarray | None, notes: list[str]):
    """(graph module, calibration batch): a dynamic batch when it exports, so that calibration runs in batches.

    Histogram observers cost ~90 ms per call on a small conv net: 256 samples one by one take ~20 s,
    in batches of 32 ~1 s. A model that cannot be exported with a dynamic batch is calibrated sample by sample.
    """
    if calibration is not None and len(calibration) > 1:
        try:
            two = torch.from_numpy(np.ascontiguousarray(calibration[:2], dtype=np.float32))
            dim = torch.export.Dim("batch", min=1)
            return torch.export.export(module, (two,), dynamic_shapes=({0: dim},)).module(), _CALIB_BATCH
        except Exception as e:
            notes.append(f"dynamic-batch export failed ({type(e).__name__}); calibrated sample by sample")
    return torch.export.export(module, args).module(), 1


def _single_io(torch):
    """A module class with ``forward(x)`` returning one tensor (the first of a tuple, as parity compares).

    It gives torch.export one positional input whatever the wrapped module's signature (``*args`` for
    litert-torch's channel-last wrapper), so ``dynamic_shapes`` can be stated the same way for every model.
    """

    class SingleIO(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            y = self.inner(x)
            return y[0] if isinstance(y, (tuple, list)) else y

    return SingleIO


def _require_int8_io(path: Path, notes: list[str]) -> None:
    """Make sure a full-int8 model takes and returns int8; rewrite float I/O with LiteRT's interface tool."""
    io_ = tflite_io(path)
    if io_["input"]["dtype"] == "int8" and io_["output"]["dtype"] == "int8":
        return
    try:
        from ai_edge_litert import _pywrap_modify_model_interface as mmi

        fixed = path.with_name(path.name + ".int8io")
        status = mmi.modify_model_interface(str(path), str(fixed), _INT8_TYPE, _INT8_TYPE)
        if status != 0 or not fixed.is_file():
            raise RuntimeError(f"modify_model_interface returned {status}")
        os.replace(fixed, path)
        notes.append("float I/O rewritten to int8 with LiteRT's modify_model_interface")
    except Exception as e:
        raise ExportError(f"the litert-torch int8 model has {io_['input']['dtype']} input / "
                          f"{io_['output']['dtype']} output and could not be made int8 ({first_line(e)})",
                          "use converter='onnx2tf' for full int8") from None
    io_ = tflite_io(path)
    if io_["input"]["dtype"] != "int8" or io_["output"]["dtype"] != "int8":
        raise ExportError("the litert-torch int8 model kept float input/output", "use converter='onnx2tf'")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence litert-torch's progress bars, ai-edge-quantizer's size report and torch's export warnings.

    Progress is switched off through litert-torch's own environment variable (restored afterwards); stdout is
    captured so that a CLI's output stays clean.
    """
    key = "LITERT_TORCH_SHOW_PROGRESS"
    previous = os.environ.get(key)
    os.environ[key] = "n"
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # "converted in training mode" for PT2E graph modules, absl chatter
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous
