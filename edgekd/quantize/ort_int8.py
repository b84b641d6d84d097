"""Static int8 quantization of an fp32 ONNX model with ONNX Runtime (QDQ, QInt8 activations and weights).

``quantize_dynamic`` is deliberately not offered: on conv nets it yields ConvInteger nodes that ran 3-15x
slower than fp32 on x86 (see TOOLCHAIN.md). The int8 model keeps the fp32 model's float input/output.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError, ExportError, first_line
from ..export.parity import PARITY_DEFAULTS, check_parity, run_onnx
from ..fsio import atomic_path, sha256_file
from ..records import ExportedModel

METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}
FORMATS = {"qdq": "QDQ", "qoperator": "QOperator"}
_CALIB_BATCH = 8  # samples per calibration run when the model's batch dimension is dynamic
# onnxruntime's histogram calibrators (entropy, percentile) keep every intermediate tensor of every calibration
# sample in memory before binning them: at 96 px a small MobileNetV2 holds ~3 MB per sample, so 256 samples
# cost ~750 MB (benchmarks/real_resolution.py). They calibrate on at most this much activation data instead;
# MinMax is streamed and is not capped. 28x28 students stay far under it (their results do not change).
HISTOGRAM_MEMORY_BYTES = 256 * 2**20


@dataclass(frozen=True)
class OrtInt8Config:
    method: str = "minmax"  # calibration: "minmax" | "entropy" | "percentile"
    per_channel: bool = True  # per-output-channel weight scales
    calibration_samples: int = 256  # at most this many samples of the calibration data are used
    quant_format: str = "qdq"  # "qdq" (QuantizeLinear/DequantizeLinear pairs) | "qoperator"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"unknown calibration method '{self.method}'", f"use one of {', '.join(METHODS)}")
        if self.quant_format not in FORMATS:
            raise ConfigError(f"unknown quant_format '{self.quant_format}'", f"use one of {', '.join(FORMATS)}")
        if not isinstance(self.per_channel, bool):
            raise ConfigError(f"per_channel must be true or false, got {self.per_channel!r}", "pass a boolean")
        n = self.calibration_samples
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"calibration_samples must be an integer >= 1, got {n!r}",
                              "pass e.g. calibration_samples=256")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ArrayReader:
    """An onnxruntime CalibrationDataReader over an array, in small batches (duck-typed: ``get_next``)."""

    def __init__(self, input_name: str, data: np.ndarray, batch: int) -> None:
        self.input_name, self.data, self.batch, self.pos = input_name, data, batch, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.pos >= len(self.data):
            return None
        chunk = self.data[self.pos:self.pos + self.batch]
        self.pos += self.batch
        return {self.input_name: chunk}

    def rewind(self) -> None:
        self.pos = 0

    def __iter__(self):
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def quantize_onnx_int8(fp32: ExportedModel | str | Path, calibration: np.ndarray, out_path: str | Path,
                       config: OrtInt8Config = OrtInt8Config(), *, parity_data: np.ndarray | None = None,
                       min_agreement: float | None = PARITY_DEFAULTS["int8"]["min_agreement"],
                       log: str | Path | None = None) -> ExportedModel:
    """Quantize ``fp32`` to static int8 with calibration data ``(N, ...)``; write it to ``out_path``.

    onnxruntime's quantizer runs in a child process (``edgekd.isolate``): a crash, a hang or running out of memory
    is an :class:`ExportError` naming it; its own output (e.g. per-channel warnings on LayerNorm weights) goes to
    ``log`` (default ``converters.log`` beside ``out_path``).

    Parity (fp32 ONNX vs int8 ONNX, argmax agreement >= ``min_agreement``) is checked on ``parity_data``,
    or on the calibration samples used when it is None; :class:`ParityError` is raised (nothing written)
    when it fails. Pass ``min_agreement=None`` to only record it.
    """
    import onnxruntime as ort

    if not isinstance(config, OrtInt8Config):
        raise ConfigError(f"config must be an OrtInt8Config, got {type(config).__name__}", "pass OrtInt8Config(...)")
    src = Path(fp32.path if isinstance(fp32, ExportedModel) else fp32)
    if not src.is_file():
        raise ConfigError(f"fp32 ONNX model not found: {src}", "export the model first or fix the path")
    name, shape, out_name = _model_io(src)
    calib = _calibration_array(calibration, shape, config.calibration_samples)
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="edgekd-quant-") as tmp:
        model_in: Path = _preprocess(src, Path(tmp) / "pre.onnx", notes)
        batch = shape[0] if isinstance(shape[0], int) and shape[0] > 0 else _CALIB_BATCH
        if config.method != "minmax":
            calib = _histogram_samples(calib, model_in, batch, config.method, notes)
        q_path = Path(tmp) / "int8.onnx"
        from ..isolate import run_isolated

        run_isolated(run_quantize_static, model_in, q_path, ArrayReader(name, calib, batch), config,
                     step=f"onnxruntime quantizer ({config.method}, {config.quant_format})",
                     log=Path(log) if log is not None else Path(out_path).parent / "converters.log")
        with atomic_path(out_path) as tmp_file:
            shutil.copyfile(q_path, tmp_file)
            report = _int8_parity(src, tmp_file, calib if parity_data is None else parity_data,
                                  out_name, min_agreement, parity_data is None)
    out = Path(out_path)
    tool = (f"onnxruntime.quantization {ort.__version__} quantize_static ({config.quant_format.upper()}, "
            f"QInt8 activations/weights, {'per-channel' if config.per_channel else 'per-tensor'}, "
            f"{config.method} calibration on {len(calib)} samples)")
    cfg = {**config.as_dict(), "calibration_samples_used": len(calib), "source": str(src),
           "preprocessed": model_in != src, "notes": notes}
    return ExportedModel(path=str(out), sha256=sha256_file(out), format="onnx", precision="int8",
                         size_bytes=out.stat().st_size, input_name=name, input_shape=tuple(shape),
                         output_name=out_name, tool=tool, parity=report.as_dict(), config=cfg)


def _histogram_samples(calib: np.ndarray, model: Path, batch: int, method: str, notes: list[str]) -> np.ndarray:
    """The calibration samples a histogram calibrator gets: at most HISTOGRAM_MEMORY_BYTES of activations, and
    whole batches (onnxruntime's histogram calibrators fail on a last, shorter batch: they stack the batches)."""
    per_sample = activation_bytes_per_sample(model)
    cap = max(2 * batch, HISTOGRAM_MEMORY_BYTES // max(1, per_sample))
    n = min(len(calib), cap)
    n = n // batch * batch if n >= batch else n
    if n < len(calib):
        why = (f"onnxruntime's histogram calibrator holds every activation ({per_sample / 2**20:.2f} MB a sample), "
               f"capped at {HISTOGRAM_MEMORY_BYTES // 2**20} MB" if len(calib) > cap
               else f"whole batches of {batch}: onnxruntime's histogram calibrators fail on a shorter last batch")
        notes.append(f"{method} calibration on {n} of {len(calib)} samples: {why}")
    return calib[:n]


def activation_bytes_per_sample(path: Path) -> int:
    """Bytes of every float tensor the graph computes for one sample (shape inference; unknown dims count 1)."""
    import onnx

    try:
        proto = onnx.shape_inference.infer_shapes(onnx.load(str(path), load_external_data=False))
    except Exception:
        return 0
    total = 0
    for vi in list(proto.graph.value_info) + list(proto.graph.output):
        t = vi.type.tensor_type
        if t.elem_type != onnx.TensorProto.FLOAT or not t.HasField("shape"):
            continue
        n = 1
        for d in t.shape.dim:
            n *= d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
        total += 4 * n
    return total


def _model_io(path: Path) -> tuple[str, list[Any], str]:
    """First real graph input's name and shape (None/str for dynamic dims) and the first output's name."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ExportError(f"cannot read ONNX model {path} ({first_line(e)})", "re-export the fp32 model") from None
    inits = {i.name for i in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in inits]
    if len(inputs) != 1 or not proto.graph.output:
        raise ConfigError(f"{path} has {len(inputs)} inputs; int8 calibration supports exactly one",
                          "export a single-input model")
    dims = inputs[0].type.tensor_type.shape.dim
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]
    return inputs[0].name, shape, proto.graph.output[0].name


def _calibration_array(calibration: Any, shape: list[Any], limit: int) -> np.ndarray:
    x = np.asarray(calibration)
    model_sample = tuple(d if isinstance(d, int) and d > 0 else "?" for d in shape[1:])
    data_sample = tuple(x.shape[1:]) if x.ndim else ()
    fits = x.ndim == len(shape) and all(m == "?" or m == d for m, d in zip(model_sample, data_sample))
    if not fits:
        raise ConfigError(f"calibration samples have shape {data_sample} but the model expects per-sample "
                          f"shape {model_sample}", "pass calibration data shaped (N, *model input shape)")
    if x.shape[0] < 1:
        raise ConfigError("calibration data is empty", "pass at least one calibration sample (256 recommended)")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise DataError("calibration data contains NaN, inf or non-numbers", "clean or re-normalise the data")
    return np.ascontiguousarray(x[:limit], dtype=np.float32)


def _preprocess(src: Path, dst: Path, notes: list[str]) -> Path:
    """ORT's recommended pre-processing (shape inference + graph optimisation); skipped, with a note, on failure."""
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        quant_pre_process(str(src), str(dst))
        if dst.is_file():
            return dst
        notes.append("quant_pre_process wrote no file; quantized without pre-processing")
    except Exception as e:
        notes.append(f"quant_pre_process failed ({type(e).__name__}: {first_line(e)}); quantized without it")
    return src


def run_quantize_static(model_in: Path, q_path: Path, reader: ArrayReader, config: OrtInt8Config) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    try:  # entropy/percentile calibrators print progress to stdout: keep stdout clean for the CLI
        with contextlib.redirect_stdout(io.StringIO()):
            quantize_static(str(model_in), str(q_path), reader,
                            quant_format=getattr(QuantFormat, FORMATS[config.quant_format]),
                            per_channel=config.per_channel, activation_type=QuantType.QInt8,
                            weight_type=QuantType.QInt8,
                            calibrate_method=getattr(CalibrationMethod, METHODS[config.method]))
    except OSError as e:  # no space left / file size limit while writing its temporary models
        from ..fsio import write_error

        err = write_error(e, q_path)
        if err is None:
            raise ExportError(f"onnxruntime static int8 quantization failed ({type(e).__name__}: {first_line(e)})",
                              "check the fp32 model") from None
        raise err from None
    except Exception as e:
        raise ExportError(f"onnxruntime static int8 quantization failed ({type(e).__name__}: {first_line(e)})",
                          "try another calibration method, per_channel=False, or check the fp32 model") from None
    if not q_path.is_file():
        raise ExportError("onnxruntime quantization wrote no model", "check the fp32 model and disk space")


def _int8_parity(fp32_path: Path, int8_path: Path, data: np.ndarray, output: str, min_agreement: float | None,
                 on_calibration: bool):
    x = np.asarray(data, dtype=np.float32)
    route = "onnx fp32 -> onnx int8 (ort static)" + (" on calibration data" if on_calibration else "")
    return check_parity(run_onnx(fp32_path, x), run_onnx(int8_path, x), output=output, route=route,
                        atol=None, min_agreement=min_agreement)
