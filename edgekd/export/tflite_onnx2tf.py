"""The ``onnx2tf`` route: ONNX -> TensorFlow SavedModel (NHWC) -> ``.tflite``, offline.

onnx2tf (run in-process through its Python API, static batch ``batch_size=1``) writes the SavedModel and its
own fp32 and fp16 ``.tflite`` files; ``fp32`` and ``fp16`` are those files. ``dynamic`` (dynamic-range int8)
and ``int8`` (full int8, int8 input and output) are made from the same SavedModel with TensorFlow's
``TFLiteConverter`` and our calibration data: that is what onnx2tf's ``-oiqt``/``-cind`` do internally, minus
the four extra variants they always write and the MS-COCO auto-calibration they fall back to.

Traps handled here (TOOLCHAIN.md):
- for a 4-D input with 3 channels onnx2tf downloads a sample calibration file, even with ``-cind``, unless
  ``calibration_image_sample_data_20x128x128x3_float32.npy`` is in its working directory: it runs in a temp
  working dir that holds that file, filled with (up to 20 of) our own samples, NHWC, so nothing is fetched and
  its internal ONNX-vs-TF check runs on real data;
- it runs ``onnxsim`` from PATH: the running interpreter's ``bin`` directory is put first on PATH;
- it reports errors by printing and calling ``sys.exit(1)``: stdout is captured and ``SystemExit`` becomes an
  :class:`ExportError` carrying its last error line.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import ExportError, first_line
from .tflite_runtime import layout_name, to_channels_last

ROUTE = "onnx2tf"
SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"  # onnx2tf's hard-coded name
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def convert_onnx2tf(onnx_path: Path, sample: np.ndarray, out_file: Path, precision: str, work_dir: Path,
                    calibration: np.ndarray | None = None, simplified: bool = False) -> dict[str, Any]:
    """Convert ``onnx_path`` to ``out_file`` at ``precision`` in ``work_dir``; return ``{"tool", "layout", "notes"}``.

    ``sample`` is channels-first float32 data shaped like the model input (it seeds onnx2tf's own check);
    ``calibration`` (same per-sample shape) is required for ``int8``. ``simplified=True`` (the ONNX file
    already went through onnxsim/onnxslim) skips onnx2tf's own onnxsim run, a subprocess that costs ~9 s here.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: fewer C++ log lines
    try:
        import onnx2tf
        import tensorflow as tf
    except Exception as e:  # ImportError, or an install whose pins break at import
        raise ExportError(f"onnx2tf is not usable ({type(e).__name__}: {first_line(e)})",
                          "run ./setup.sh (it installs onnx2tf with --no-deps and its real imports)") from None
    saved = work_dir / "saved_model"
    notes: list[str] = []
    _run_onnx2tf(onnx2tf, onnx_path, saved, sample, work_dir, simplified)
    if precision in ("fp32", "fp16"):
        produced = saved / f"{onnx_path.stem}_{'float32' if precision == 'fp32' else 'float16'}.tflite"
        if not produced.is_file():
            raise ExportError(f"onnx2tf wrote no {precision} .tflite file", "check the ONNX model and disk space")
        os.replace(produced, out_file)
    else:
        calib = None
        if precision == "int8":
            calib = to_channels_last(calibration) if calibration.ndim >= 3 else calibration
            notes.append(f"TFLiteConverter calibration on {len(calib)} samples")
        out_file.write_bytes(_tf_quantize(tf, saved, precision, calib))
    tool = f"onnx2tf {onnx2tf.__version__} + tensorflow {tf.__version__}"
    tool += {"fp32": "", "fp16": " (onnx2tf float16)", "dynamic": " (TFLiteConverter dynamic-range int8)",
             "int8": " (TFLiteConverter full int8, int8 I/O)"}[precision]
    return {"tool": tool, "layout": layout_name(sample.ndim, sample.ndim >= 3), "notes": notes}


def _run_onnx2tf(onnx2tf, onnx_path: Path, saved: Path, sample: np.ndarray, work_dir: Path,
                 simplified: bool) -> None:
    """onnx2tf.convert in ``work_dir`` with our sample file present and stdout captured."""
    if sample.ndim == 4:
        np.save(work_dir / SAMPLE_FILE, to_channels_last(sample[:20]).astype(np.float32))
    log = io.StringIO()
    try:
        with _in_dir(work_dir), _venv_on_path(), contextlib.redirect_stdout(log):
            onnx2tf.convert(input_onnx_file_path=str(onnx_path), output_folder_path=str(saved), batch_size=1,
                            not_use_onnxsim=simplified, non_verbose=True, verbosity="error")
    except SystemExit:
        raise ExportError(f"onnx2tf failed ({_last_error(log.getvalue()) or 'it exited without a message'})",
                          "use converter='litert-torch', or simplify/replace the op named in the message") from None
    except Exception as e:
        raise ExportError(f"onnx2tf failed ({type(e).__name__}: {first_line(e)})",
                          "use converter='litert-torch', or replace the unsupported op in the model") from None


def _tf_quantize(tf, saved: Path, precision: str, calibration: np.ndarray | None) -> bytes:
    """Dynamic-range or full-int8 (int8 I/O) conversion of the SavedModel with TensorFlow's converter."""
    try:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved))
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if precision == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
            data = np.ascontiguousarray(calibration, dtype=np.float32)
            converter.representative_dataset = lambda: ([data[i:i + 1]] for i in range(len(data)))
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as e:
        raise ExportError(f"TensorFlow's TFLiteConverter failed on the onnx2tf SavedModel for {precision} "
                          f"({type(e).__name__}: {first_line(e)})",
                          "use converter='litert-torch' or another precision") from None


def _last_error(text: str) -> str:
    """The last line onnx2tf printed that looks like an error, without colour codes."""
    lines = [_ANSI.sub("", ln).strip() for ln in text.splitlines()]
    errors = [ln for ln in lines if "error" in ln.lower()]
    return (errors or [ln for ln in lines if ln] or [""])[-1][:300]


@contextlib.contextmanager
def _in_dir(path: Path) -> Iterator[None]:
    """chdir for the duration of the block (process-wide: onnx2tf looks for its sample file in the cwd)."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextlib.contextmanager
def _venv_on_path() -> Iterator[None]:
    """Put the running interpreter's bin directory first on PATH (onnx2tf runs the ``onnxsim`` command)."""
    previous = os.environ.get("PATH", "")
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), previous])
    try:
        yield
    finally:
        os.environ["PATH"] = previous
