"""Run ONNX models with ONNX Runtime and compare their outputs with a reference.

``compare_outputs`` never raises; ``check_parity`` raises :class:`ParityError` when the comparison fails.
Argmax agreement is taken over each sample's flattened output (the class axis for ``(N, K)`` logits).

The difference limit is scale-aware: ``atol + rtol * max|reference|``. A relative term taken element by element
(numpy's ``allclose``) would be meaningless for logits near zero; taken against the output's own scale it lets
a model whose logits reach 40 differ by fp16 rounding of 40, not of 1.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.image_rows import batchable, inference_batch
from ..errors import ConfigError, ExportError, ParityError, first_line

# Tolerances per precision of the candidate. ``atol=None`` and ``rtol=None``: the difference is reported, not checked.
# ``rtol`` is relative to the largest |reference| value (see the module docstring).
PARITY_DEFAULTS: dict[str, dict[str, float | None]] = {
    "fp32": {"atol": 1e-4, "rtol": 1e-5, "min_agreement": 0.999},
    "fp16": {"atol": 1e-2, "rtol": 1e-2, "min_agreement": 0.99},
    "dynamic": {"atol": None, "rtol": None, "min_agreement": 0.95},  # int8 weights, activations quantized at run time
    "int8": {"atol": None, "rtol": None, "min_agreement": 0.9},
}


@dataclass(frozen=True)
class ParityReport:
    output: str  # name of the compared output, e.g. "logits"
    route: str  # what was compared, e.g. "torch -> onnx fp32"
    max_abs_diff: float  # inf when shapes differ or values are not finite
    mean_abs_diff: float
    argmax_agreement: float  # fraction of samples whose argmax is the same, 0..1
    n_samples: int
    atol: float | None
    min_agreement: float | None
    passed: bool
    rtol: float | None = None  # relative to ``scale``
    scale: float = 0.0  # max |reference|
    limit: float | None = None  # the max abs diff allowed: atol + rtol * scale (None: not checked)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        allowed = "not checked" if self.limit is None else f"limit {self.limit:.3g}"
        if self.limit is not None and self.rtol:
            allowed += f" = {self.atol or 0:g} + {self.rtol:g} x max|ref| {self.scale:.3g}"
        return (f"{self.route or 'parity'} on output '{self.output}': max abs diff {self.max_abs_diff:.3g} "
                f"({allowed}), mean abs diff {self.mean_abs_diff:.3g}, argmax agreement "
                f"{self.argmax_agreement:.4f} (min {_fmt(self.min_agreement)}) over {self.n_samples} samples")


def _fmt(v: float | None) -> str:
    return "not checked" if v is None else f"{v:g}"


def compare_outputs(reference: np.ndarray, candidate: np.ndarray, *, output: str = "logits", route: str = "",
                    atol: float | None = PARITY_DEFAULTS["fp32"]["atol"],
                    min_agreement: float | None = PARITY_DEFAULTS["fp32"]["min_agreement"],
                    rtol: float | None = None) -> ParityReport:
    """Compare ``candidate`` with ``reference`` (both ``(N, ...)``); never raises on bad numbers.

    Passes when every value is finite, ``max|ref - cand| <= atol + rtol * max|ref|`` (skipped when both are
    None) and the argmax agreement is at least ``min_agreement`` (skipped when None).
    """
    ref = np.asarray(reference, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    n = int(ref.shape[0]) if ref.ndim else 0
    limit = None if atol is None and rtol is None else float(atol or 0.0)
    if ref.shape != cand.shape or n == 0:
        return ParityReport(output, route, math.inf, math.inf, 0.0, n, atol, min_agreement, False, rtol, 0.0, limit)
    scale = float(np.abs(ref).max()) if np.isfinite(ref).all() else math.inf
    if limit is not None and rtol:
        limit += rtol * scale
    diff = np.abs(ref - cand)
    finite = bool(np.isfinite(diff).all())
    max_d = float(diff.max()) if finite else math.inf
    mean_d = float(diff.mean()) if finite else math.inf
    agree = float(np.mean(ref.reshape(n, -1).argmax(axis=1) == cand.reshape(n, -1).argmax(axis=1)))
    passed = finite and (limit is None or max_d <= limit) and (min_agreement is None or agree >= min_agreement)
    return ParityReport(output, route, max_d, mean_d, agree, n, atol, min_agreement, bool(passed), rtol, scale, limit)


def check_parity(reference: np.ndarray, candidate: np.ndarray, *, output: str = "logits", route: str = "",
                 atol: float | None = PARITY_DEFAULTS["fp32"]["atol"],
                 min_agreement: float | None = PARITY_DEFAULTS["fp32"]["min_agreement"],
                 rtol: float | None = None) -> ParityReport:
    """Like :func:`compare_outputs`, but raise :class:`ParityError` when the comparison fails."""
    report = compare_outputs(reference, candidate, output=output, route=route, atol=atol,
                             min_agreement=min_agreement, rtol=rtol)
    if report.passed:
        return report
    ref_shape, cand_shape = np.shape(reference), np.shape(candidate)
    if ref_shape != cand_shape:
        cause = (f"{route or 'parity'} on output '{output}': shapes differ, reference {ref_shape} "
                 f"vs candidate {cand_shape}")
    else:
        cause = f"parity failed: {report.summary()}"
    raise ParityError(cause, "check the conversion (opset, simplifier, quantization settings) or relax the tolerance")


# ---------------------------------------------------------------- ONNX Runtime inference


# x86 CPUs with AVX2 or AVX-512 but no VNNI run onnxruntime's u8s8 int8 kernels through a saturating 16-bit
# intermediate: a QDQ model's outputs there are not what an ARM board, a VNNI x86 CPU or the float model compute
# (measured on an AVX2-only AMD EPYC: emulated aarch64 onnxruntime differed from the host by 5 quantization steps).
# This session option makes onnxruntime use its exact u8u8 kernels on those CPUs only; elsewhere it changes nothing.
EXACT_INT8 = ("session.x64quantprecision", "1")


def exact_int8(opts: Any) -> Any:
    """``opts`` (an onnxruntime SessionOptions) with onnxruntime's exact int8 kernels on x86 CPUs without VNNI."""
    opts.add_session_config_entry(*EXACT_INT8)
    return opts


def make_session(path: str | Path, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads; errors become :class:`ExportError`."""
    import onnxruntime as ort

    if threads < 1:
        raise ConfigError(f"threads must be >= 1, got {threads}", "pass threads=1 or more")
    if not Path(path).is_file():
        raise ConfigError(f"ONNX model not found: {path}", "export the model first or fix the path")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    exact_int8(opts)
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph/... types
        raise ExportError(f"onnxruntime cannot load {path} ({type(e).__name__}: {first_line(e)})",
                          "re-export the model or check that it is a valid ONNX file") from None


_ORT_DTYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def run_onnx(path: str | Path, x: np.ndarray, batch_size: int = 256, threads: int = 1) -> np.ndarray:
    """Run the model's first input on ``x`` (``(N, ...)``) in batches; return its first output stacked."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}", "pass batch_size=1 or more")
    x = batchable(x)  # lazy image rows stay lazy: read a chunk at a time
    sess = make_session(path, threads)
    inp = sess.get_inputs()[0]
    dtype = _ORT_DTYPES.get(inp.type)
    if dtype is None:
        raise ConfigError(f"model input '{inp.name}' has type {inp.type}, not a float tensor",
                          "run_onnx feeds float data; use a model with a float input")
    _check_input_shape(inp.name, list(inp.shape), x.shape)
    fixed_batch = inp.shape[0] if isinstance(inp.shape[0], int) and inp.shape[0] > 0 else None
    step = fixed_batch or inference_batch(tuple(x.shape[1:]), batch_size)
    out_name = sess.get_outputs()[0].name
    chunks = []
    for start in range(0, x.shape[0], step):
        chunk = x[start:start + step].astype(dtype, copy=False)
        n = chunk.shape[0]
        if fixed_batch and n < fixed_batch:  # pad the last chunk of a fixed-batch model, then drop the padding
            chunk = np.concatenate([chunk, np.zeros((fixed_batch - n,) + chunk.shape[1:], dtype)])
        try:
            chunks.append(sess.run([out_name], {inp.name: chunk})[0][:n])
        except Exception as e:
            raise ExportError(f"onnxruntime failed to run {path} ({type(e).__name__}: {first_line(e)})",
                              "check the input shape and dtype against the model") from None
    return np.concatenate(chunks, axis=0)


def _check_input_shape(name: str, model_shape: list[Any], data_shape: tuple[int, ...]) -> None:
    ok = len(model_shape) == len(data_shape) and data_shape[0] > 0 and all(
        not isinstance(m, int) or m <= 0 or m == d for m, d in zip(model_shape[1:], data_shape[1:]))
    if not ok:
        shown = tuple(m if isinstance(m, int) else "N" for m in model_shape)
        raise ConfigError(f"input data of shape {tuple(data_shape)} does not fit model input '{name}' {shown}",
                          "pass a non-empty batch whose per-sample shape matches the model input")

