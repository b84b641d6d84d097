"""Export a PyTorch module to TFLite (``.tflite``) at fp32, fp16, dynamic-range int8 or full int8, with parity.

Two routes (see :mod:`.tflite_litert` and :mod:`.tflite_onnx2tf`):

- ``litert-torch``: torch -> .tflite directly (no ONNX, no TensorFlow); tried first by ``converter="auto"``.
- ``onnx2tf``: torch -> ONNX (:func:`edgekd.export.onnx.export_onnx`, or a given ONNX file) -> TensorFlow -> .tflite.

``converter="auto"`` falls back to onnx2tf when litert-torch fails to convert *or* its model fails parity, and
records why in the record's ``config["fallback_reason"]``. Every file is run in LiteRT on the ``sample``
inputs and compared with the torch model (tolerances per precision in ``PARITY_DEFAULTS``) before it is written;
nothing is left under ``out_path`` when conversion or parity fails. Models with inputs of rank >= 3 are
exported channels-last (``NHWC``), with a static batch of 1; full int8 means int8 input and output tensors.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..errors import ConfigError, DataError, EdgeKDError, ExportError, ParityError, first_line
from ..fsio import atomic_path, sha256_file
from ..isolate import ConverterFailed, run_isolated
from ..registry import Registry
from ..records import ExportedModel
from . import tflite_litert, tflite_onnx2tf
from .onnx import _torch_forward, export_onnx
from .parity import PARITY_DEFAULTS, ParityReport, check_parity
from .tflite_runtime import run_tflite, tensor_dtypes, tflite_io

if TYPE_CHECKING:
    import torch

PRECISIONS = ("fp32", "fp16", "dynamic", "int8")
CONVERTERS = ("auto", "litert-torch", "onnx2tf")
ROUTES = {"auto": ("litert-torch", "onnx2tf"), "litert-torch": ("litert-torch",), "onnx2tf": ("onnx2tf",)}
# route name -> fn(model, x, calib, precision, onnx_src, work) -> info; run in a child process (``edgekd.isolate``)
TFLITE_ROUTES: Registry[Callable[..., dict[str, Any]]] = Registry("TFLite route")
LOG_NAME = "converters.log"  # the converters' own output, beside the exported file
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
MAX_CALIBRATION = 1000  # TensorFlow's converter calibrates sample by sample: more adds time, hardly accuracy


def export_tflite(model: "torch.nn.Module", sample: np.ndarray, out_path: str | Path, *, precision: str = "fp32",
                  converter: str = "auto", calibration: np.ndarray | None = None,
                  onnx_path: str | Path | None = None,
                  tolerances: dict[str, float | None] | None = None,
                  metadata: dict[str, str] | None = None, log: str | Path | None = None) -> ExportedModel:
    """Convert ``model`` to ``out_path`` (.tflite) at ``precision`` and prove parity with torch in LiteRT.

    ``sample``: held-out representative inputs ``(N, C, H, W)`` / ``(N, C, L)`` / ``(N, F)``, float; the first
    one fixes the traced shape, all are used for parity. ``calibration``: required for ``int8``, same
    per-sample shape (at most ``MAX_CALIBRATION`` used). ``onnx_path``: an existing ONNX export of the same
    model for the onnx2tf route (exported to a temp dir when None). ``tolerances`` overrides
    ``PARITY_DEFAULTS[precision]`` (keys ``atol``, ``rtol``, ``min_agreement``). Raises :class:`ConfigError` for bad
    arguments, :class:`ExportError` / :class:`ParityError` when no route produces a model that passes parity.
    Each route's converter runs in a child process (``edgekd.isolate``: a crash, a hang or running out of memory is
    that route's failure); its own output goes to ``log`` (default ``converters.log`` beside ``out_path``).
    """
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ INFO lines would bury our progress
    x, calib, limits, notes = _validate(model, sample, precision, converter, calibration, tolerances)
    onnx_src = _check_onnx(onnx_path) if onnx_path is not None else None
    was_training = model.training
    model.eval()
    try:
        reference = _torch_forward(model, x)
        with tempfile.TemporaryDirectory(prefix="edgekd-tflite-") as tmp:
            log_file = Path(log) if log is not None else Path(out_path).parent / LOG_NAME
            built = _first_passing(model, x, calib, precision, converter, onnx_src, reference, limits, Path(tmp),
                                   log_file)
            if metadata:  # e.g. the input contract, in the flatbuffer's metadata table (ops untouched)
                from .tflite_metadata import add_metadata

                add_metadata(built["file"], metadata)
            built["io"], built["dtypes"] = tflite_io(built["file"]), tensor_dtypes(built["file"])
            with atomic_path(out_path) as tmp_file:
                shutil.copyfile(built["file"], tmp_file)
    finally:
        model.train(was_training)
    return _record(Path(out_path), precision, converter, calib, built, notes)


def _validate(model: Any, sample: Any, precision: str, converter: str, calibration: Any,
              tolerances: Any) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any], list[str]]:
    """Check the arguments (ConfigError, one line each); return sample, calibration, tolerances, notes."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}", "pass the student module")
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown TFLite precision '{precision}'", f"use one of {', '.join(PRECISIONS)}")
    if converter not in CONVERTERS:
        raise ConfigError(f"unknown TFLite converter '{converter}'", f"use one of {', '.join(CONVERTERS)}")
    x = _as_batch("sample", sample)
    notes: list[str] = []
    calib = None
    if precision == "int8":
        if calibration is None:
            raise ConfigError("int8 TFLite export needs calibration data",
                              "pass calibration= a few hundred training samples shaped like sample")
        calib = _as_batch("calibration", calibration)
        if calib.shape[1:] != x.shape[1:]:
            raise ConfigError(f"calibration samples have shape {calib.shape[1:]} but sample has "
                              f"{x.shape[1:]}", "pass calibration data shaped like the model input (N, *sample shape)")
        if len(calib) > MAX_CALIBRATION:
            notes.append(f"calibration limited to the first {MAX_CALIBRATION} of {len(calib)} samples")
            calib = calib[:MAX_CALIBRATION]
    elif calibration is not None:
        notes.append(f"calibration data ignored: {precision} needs none")
    limits = dict(PARITY_DEFAULTS[precision])
    if tolerances is not None:
        unknown = set(tolerances) - {"atol", "rtol", "min_agreement"} if isinstance(tolerances, dict) else {"?"}
        if unknown:
            raise ConfigError(f"tolerances must be a dict with keys atol/rtol/min_agreement, got {tolerances!r}",
                              "pass e.g. tolerances={'min_agreement': 0.95}")
        limits.update(tolerances)
    return x, calib, limits, notes


def _as_batch(what: str, data: Any) -> np.ndarray:
    x = np.asarray(data)
    if x.ndim < 2 or x.shape[0] < 1 or x.size == 0:
        raise ConfigError(f"{what} must be a non-empty batch (N, ...), got shape {x.shape}",
                          "pass real inputs with the batch dimension first (N×C×H×W or N×F)")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError(f"{what} contains NaN, inf or non-numbers", "clean or re-normalise the data")
    return np.ascontiguousarray(x, dtype=np.float32)


def _check_onnx(onnx_path: str | Path) -> Path:
    """An existing, loadable ONNX file (ConfigError when missing, ExportError when it is not ONNX)."""
    import onnx

    p = Path(onnx_path)
    if not p.is_file():
        raise ConfigError(f"ONNX model not found: {p}", "export it first (edgekd export) or pass onnx_path=None")
    try:
        onnx.checker.check_model(onnx.load(str(p)))
    except Exception as e:
        raise ExportError(f"{p} is not a valid ONNX model ({type(e).__name__}: {first_line(e)})",
                          "pass the .onnx file written by edgekd export, or onnx_path=None") from None
    return p


def _first_passing(model, x, calib, precision, converter, onnx_src, reference, limits, tmp: Path,
                   log: Path) -> dict[str, Any]:
    """Try the routes in order; return the first whose model passes parity (its file, info, report, failures)."""
    failures: list[tuple[str, Exception]] = []
    for route in ROUTES[converter]:
        work = tmp / route.replace("-", "_")
        work.mkdir()
        try:
            info = run_isolated(TFLITE_ROUTES.get(route), model, x, calib, precision, onnx_src, work,
                                step=f"{route} ({precision})", log=log)
            try:
                candidate = run_tflite(info["file"], x)
            except EdgeKDError as e:  # the converter wrote a model LiteRT cannot load or run (e.g. Flex ops)
                raise ExportError(f"the {route} model does not run in LiteRT ({e.cause})",
                                  "replace the op named here in the model, or try the other converter") from None
            report = check_parity(reference, candidate, output="logits", route=f"torch -> tflite {precision} "
                                  f"({route})", atol=limits["atol"], min_agreement=limits["min_agreement"],
                                  rtol=limits["rtol"])
            return {**info, "route": route, "report": report, "failures": failures}
        except Exception as e:  # a route failed (conversion, LiteRT or parity): note it, try the next one
            failures.append((route, e))
    raise _combined(failures, precision)


@TFLITE_ROUTES.register("litert-torch")
def litert_route(model, x, calib, precision: str, onnx_src: Path | None, work: Path) -> dict[str, Any]:
    """torch -> .tflite with litert-torch, into ``work`` (runs in the isolated child)."""
    out_file = work / "model.tflite"
    info = tflite_litert.convert_litert(model, x, out_file, precision, calib)
    return {**info, "file": out_file, "onnx": None}


@TFLITE_ROUTES.register("onnx2tf")
def onnx2tf_route(model, x, calib, precision: str, onnx_src: Path | None, work: Path) -> dict[str, Any]:
    """torch -> ONNX (unless given) -> TensorFlow -> .tflite, into ``work`` (runs in the isolated child)."""
    out_file = work / "model.tflite"
    onnx_tool, simplified = None, False
    if onnx_src is None:
        onnx_rec = export_onnx(model, x, work / "model.onnx")
        onnx_src, onnx_tool = Path(onnx_rec.path), onnx_rec.tool
        simplified = bool(onnx_rec.config.get("simplifier"))
    info = tflite_onnx2tf.convert_onnx2tf(onnx_src, x, out_file, precision, work, calib, simplified)
    if onnx_tool:
        info["tool"] += f", from {onnx_tool}"
    return {**info, "file": out_file, "onnx": onnx_tool or str(onnx_src)}


def _combined(failures: list[tuple[str, Exception]], precision: str) -> EdgeKDError:
    """One error for all failed routes: the route's own error when only one was tried."""
    if len(failures) == 1 and isinstance(failures[0][1], EdgeKDError):
        return failures[0][1]
    causes = tuple(f"{route}: {_reason(e)}" for route, e in failures)
    if all(isinstance(e, ParityError) for _, e in failures):
        return ParityError(f"no TFLite route passed {precision} parity",
                           "try another precision or relax tolerances= (each route's numbers below)", causes)
    return ExportError(f"no TFLite route could export the model at {precision}",
                       "replace the op named below in the model, or try another precision", causes)


def _reason(e: Exception) -> str:
    """A failure as one line without colour codes: an edgekd error's cause, else its type and first line."""
    if isinstance(e, ConverterFailed):  # the route is named by the caller: what happened, and its last output
        text = e.what + (f" (its last output: {e.tail})" if e.tail else "")
    else:
        text = e.cause if isinstance(e, EdgeKDError) else f"{type(e).__name__}: {first_line(e)}"
    return _ANSI.sub("", text)


def _record(out: Path, precision: str, converter: str, calib: np.ndarray | None, built: dict[str, Any],
            notes: list[str]) -> ExportedModel:
    io_ = built["io"]
    report: ParityReport = built["report"]
    failures = built["failures"]
    config = {"route": built["route"], "converter": converter,
              "fallback_reason": "; ".join(f"{r}: {_reason(e)}" for r, e in failures) or None,
              "layout": built["layout"], "batch": io_["input"]["shape"][0], "input": io_["input"], "output": io_["output"],
              "calibration_samples": None if calib is None else len(calib), "onnx": built["onnx"],
              "tensor_dtypes": built["dtypes"], "notes": notes + list(built["notes"])}
    if precision in ("dynamic", "int8") and "int8" not in built["dtypes"]:
        config["notes"].append("no int8 tensor in the model: its layers are too small for the converter to quantize "
                               "(TensorFlow skips weights under 1024 elements), so it is effectively fp32")
    return ExportedModel(path=str(out), sha256=sha256_file(out), format="tflite", precision=precision,
                         size_bytes=out.stat().st_size, input_name=io_["input"]["name"],
                         input_shape=io_["input"]["shape"], output_name=io_["output"]["name"],
                         tool=built["tool"], parity=report.as_dict(), config=config)
