"""Teacher loaders: TorchScript .pt, torch.export .pt2, state_dict + factory, ONNX and TFLite.

Every loader returns a ``Teacher``: a frozen model that maps a numpy batch to *logits*. A teacher that
outputs probabilities (softmax already applied) is detected (rows in [0, 1] that sum to 1) or declared
(``outputs="probs"``); its outputs are turned into log-probabilities, which are logits up to a per-row
constant, so softmax(z/T) is still the right tempered distribution. Torch files are loaded with
``weights_only=True``: nothing in a file is executed.
"""

from __future__ import annotations

import importlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import TeacherError

OUTPUT_KINDS = ("auto", "logits", "probs")


@dataclass
class Teacher:
    name: str  # file name or "default"
    kind: str  # "torch", "onnx", "tflite"
    run: Callable[[np.ndarray], np.ndarray]  # raw outputs of one batch
    module: Any = None  # the torch module, when there is one (needed for hints)
    outputs: str = "auto"  # "logits", "probs" or "auto" (decided on first use)

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Teacher logits for ``x`` (log-probabilities for a probability teacher), float32."""
        outs = []
        for i in range(0, len(x), batch_size):
            try:
                out = np.asarray(self.run(np.ascontiguousarray(x[i:i + batch_size], dtype=np.float32)))
            except TeacherError:
                raise
            except Exception as e:  # the teacher's runtime rejected the input
                raise TeacherError(f"teacher {self.name} failed on inputs of shape {tuple(x.shape[1:])}: "
                                   f"{_first_line(e)}", "use a teacher trained on this data's input shape") from None
            outs.append(out.reshape(len(out), -1))
        z = np.concatenate(outs).astype(np.float32)
        if self.outputs == "auto":
            self.outputs = "probs" if looks_like_probabilities(z) else "logits"
        if self.outputs == "probs":
            z = np.log(np.clip(z, 1e-12, None)).astype(np.float32)
        return z


def looks_like_probabilities(z: np.ndarray, tol: float = 1e-3) -> bool:
    """True when every row is in [0, 1] and sums to 1 (a softmax output), false for logits."""
    return bool(z.size and z.min() >= 0.0 and z.max() <= 1.0 and np.allclose(z.sum(axis=1), 1.0, atol=tol))


def load_teacher(path: str | Path, *, arch: str | None = None, outputs: str = "auto") -> Teacher:
    """Load a teacher file by its suffix (.pt, .pth, .pt2, .onnx, .tflite)."""
    p = Path(path)
    if outputs not in OUTPUT_KINDS:
        raise TeacherError(f"unknown teacher output kind {outputs!r}", f"use one of {', '.join(OUTPUT_KINDS)}")
    if not p.is_file():
        raise TeacherError(f"teacher file {p} does not exist", "check the --teacher path")
    suffix = p.suffix.lower()
    loaders = {".pt": _load_torch, ".pth": _load_torch, ".pt2": _load_pt2, ".onnx": _load_onnx,
               ".tflite": _load_tflite}
    if suffix not in loaders:
        raise TeacherError(f"teacher file {p.name} has an unknown format {suffix!r}",
                           "use .pt (TorchScript or state_dict), .pt2 (torch.export), .onnx or .tflite")
    teacher = loaders[suffix](p, arch)
    teacher.outputs = outputs
    return teacher


def _torch_teacher(name: str, module: Any) -> Teacher:
    import torch

    from ..distill.trainer import freeze

    freeze(module)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().float().numpy()

    return Teacher(name, "torch", run, module)


def _load_torch(p: Path, arch: str | None) -> Teacher:
    import torch

    if not zipfile.is_zipfile(p):
        raise TeacherError(f"teacher file {p} is truncated or not a PyTorch file",
                           "re-save it with torch.jit.save or torch.save(model.state_dict())")
    with zipfile.ZipFile(p) as zf:
        names = zf.namelist()
        bad = zf.testzip() if len(names) < 64 else None
    if bad is not None:
        raise TeacherError(f"teacher file {p} is corrupt (bad member {bad})", "re-save the teacher")
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):  # a TorchScript archive
        try:
            return _torch_teacher(p.name, torch.jit.load(str(p), map_location="cpu"))
        except Exception as e:
            raise TeacherError(f"TorchScript teacher {p} cannot be loaded: {_first_line(e)}", "re-export it") from None
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:
        msg = _first_line(e)
        if any(k in msg.lower() for k in ("weights only", "weights_only", "unsupported global")):
            raise TeacherError(f"teacher file {p} holds a pickled Python object, which edgekd does not unpickle "
                               "(it could run code)", "save a state_dict, TorchScript (.pt) or torch.export (.pt2) "
                               "file instead") from None
        raise TeacherError(f"teacher file {p} cannot be read: {msg}", "re-save the teacher") from None
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        raise TeacherError(f"teacher file {p} is not a state_dict", "save model.state_dict(), or TorchScript")
    if arch is None:
        raise TeacherError(f"teacher file {p} is a state_dict and needs its architecture",
                           "pass --teacher-arch module:factory (a function that returns the model)")
    module = _factory(arch)()
    try:
        module.load_state_dict(obj)
    except Exception as e:
        raise TeacherError(f"state_dict {p.name} does not fit {arch}: {_first_line(e)}",
                           "pass the factory the weights were saved from") from None
    return _torch_teacher(p.name, module)


def _factory(arch: str) -> Callable[[], Any]:
    mod_name, _, fn_name = arch.partition(":")
    if not mod_name or not fn_name:
        raise TeacherError(f"bad --teacher-arch {arch!r}", "write module:factory, e.g. mypkg.models:resnet8")
    try:
        fn = getattr(importlib.import_module(mod_name), fn_name)
    except (ImportError, AttributeError) as e:
        raise TeacherError(f"--teacher-arch {arch} cannot be imported: {_first_line(e)}",
                           "check the module is on PYTHONPATH and defines the factory") from None
    if not callable(fn):
        raise TeacherError(f"--teacher-arch {arch} is not callable", "name a function that returns the model")
    return fn


def _load_pt2(p: Path, _arch: str | None) -> Teacher:
    import torch

    try:
        program = torch.export.load(str(p))
    except Exception as e:
        raise TeacherError(f"torch.export teacher {p} cannot be loaded: {_first_line(e)}",
                           "re-save it with torch.export.save") from None
    module = program.module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        return (out[0] if isinstance(out, (tuple, list)) else out).float().numpy()

    return Teacher(p.name, "torch", run, None)


def _load_onnx(p: Path, _arch: str | None) -> Teacher:
    import onnxruntime as ort

    try:
        sess = ort.InferenceSession(str(p), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise TeacherError(f"ONNX teacher {p} cannot be loaded: {_first_line(e)}",
                           "check the file is a complete .onnx model") from None
    name = sess.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return Teacher(p.name, "onnx", run)


def _load_tflite(p: Path, _arch: str | None) -> Teacher:
    """A .tflite teacher run in LiteRT (NCHW data fed to NHWC models, int8 I/O (de)quantized)."""
    from ..errors import EdgeKDError
    from ..export.tflite_runtime import load_interpreter, run_tflite

    try:
        load_interpreter(p)
    except EdgeKDError as e:
        raise TeacherError(f"TFLite teacher {p} cannot be loaded: {e.cause}",
                           "check the file is a complete .tflite model") from None
    return Teacher(p.name, "tflite", lambda x: run_tflite(p, x, threads=2))


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]
