"""Teacher loaders: TorchScript .pt, torch.export .pt2, state_dict + factory, ONNX and TFLite.

Every loader returns a ``Teacher``: a frozen model that maps a numpy batch to *logits*. A teacher that
outputs probabilities (softmax already applied) is detected (rows in [0, 1] that sum to 1) or declared
(``outputs="probs"``); its outputs are turned into log-probabilities, which are logits up to a per-row
constant, so softmax(z/T) is still the right tempered distribution. Torch files are loaded with
``weights_only=True``, and a ``.pt2`` whose archive would make torch unpickle something (a pickled weight,
constant, opaque object or sample input) is refused before torch reads it: nothing in a file is executed.
``trust_pickle=True`` (``--trust-pickle``) lifts both rules for a file the user vouches for — a fully pickled
``nn.Module`` then loads — which runs whatever code the file holds.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import logging
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import TeacherError, first_line

OUTPUT_KINDS = ("auto", "logits", "probs")


@dataclass
class Teacher:
    name: str  # file name or "default"
    kind: str  # "torch", "onnx", "tflite"
    run: Callable[[np.ndarray], np.ndarray]  # raw outputs of one batch
    module: Any = None  # the torch module, when there is one (needed for hints)
    outputs: str = "auto"  # "logits", "probs" or "auto" (decided on first use)
    input_shape: tuple[int | None, ...] | None = None  # the model's declared input (None: dynamic), when known
    # torch teachers: ``run`` in channels-last memory under inference mode (other kernels, so other float sums;
    # measured ~1.3x faster on the built-in teacher), for the bulk passes over a split
    run_fast: Callable[[np.ndarray], np.ndarray] | None = None

    def logits(self, x: np.ndarray, batch_size: int = 256, fast: bool = False) -> np.ndarray:
        """Teacher logits for ``x`` (log-probabilities for a probability teacher), float32.

        A model exported with a fixed batch (often 1) is fed chunks of that size, the last one padded. ``fast``:
        through ``run_fast`` where the teacher has one, in batches of at least 512."""
        self._check_sample_shape(tuple(x.shape[1:]))
        from ..data.image_rows import inference_batch

        run = self.run_fast if fast and self.run_fast is not None else self.run
        if run is not self.run:
            batch_size = max(batch_size, 512)
        fixed = self.input_shape[0] if self.input_shape and isinstance(self.input_shape[0], int) else None
        step = fixed if fixed and fixed > 0 else inference_batch(tuple(x.shape[1:]), batch_size)
        outs = []
        for i in range(0, len(x), step):
            chunk = np.ascontiguousarray(x[i:i + step], dtype=np.float32)
            n = len(chunk)
            if fixed and n < step:
                chunk = np.concatenate([chunk, np.zeros((step - n, *chunk.shape[1:]), np.float32)])
            try:
                out = np.asarray(run(chunk))[:n]
            except TeacherError:
                raise
            except Exception as e:  # the teacher's runtime rejected the input
                raise TeacherError(f"teacher {self.name} failed on inputs of shape {tuple(x.shape[1:])}: "
                                   f"{first_line(e)}", "use a teacher trained on this data's input shape") from None
            outs.append(out.reshape(len(out), -1))
        z = np.concatenate(outs).astype(np.float32)
        if self.outputs == "auto":
            self.outputs = "probs" if looks_like_probabilities(z) else "logits"
        if self.outputs == "probs":
            z = np.log(np.clip(z, 1e-12, None)).astype(np.float32)
        return z


    def _check_sample_shape(self, sample: tuple[int, ...]) -> None:
        want = self.input_shape[1:] if self.input_shape else None
        if want is None or self.kind == "tflite":  # LiteRT runs NHWC models on NCHW data (transposed)
            return
        if len(want) != len(sample) or any(w is not None and w != s for w, s in zip(want, sample)):
            shown = tuple(w if w is not None else "?" for w in want)
            raise TeacherError(f"teacher {self.name} expects samples of shape {shown} but the data's are {sample}",
                               "use a teacher trained on this data's input shape (or the --data it was trained on)")


def looks_like_probabilities(z: np.ndarray, tol: float = 1e-3) -> bool:
    """True when every row is in [0, 1] and sums to 1 (a softmax output), false for logits."""
    return bool(z.size and z.min() >= 0.0 and z.max() <= 1.0 and np.allclose(z.sum(axis=1), 1.0, atol=tol))


def load_teacher(path: str | Path, *, arch: str | None = None, outputs: str = "auto",
                 trust_pickle: bool = False) -> Teacher:
    """Load a teacher file by its suffix (.pt, .pth, .pt2, .onnx, .tflite).

    ``trust_pickle``: unpickle a torch file in full (a pickled ``nn.Module``); DANGEROUS — a pickle can run any
    code — so only for files from a source you trust."""
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
    if suffix in (".pt", ".pth", ".pt2"):
        teacher = loaders[suffix](p, arch, trust_pickle)
    else:
        teacher = loaders[suffix](p, arch)
    teacher.outputs = outputs
    return teacher


def torch_teacher(name: str, module: Any) -> Teacher:
    import torch

    from ..distill.device import freeze

    freeze(module)

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.detach().float().numpy()

    def run_fast(x: np.ndarray) -> np.ndarray:
        xb = torch.from_numpy(x)
        if xb.dim() != 4:
            return run(x)
        try:
            module.to(memory_format=torch.channels_last)
            with torch.inference_mode():
                out = module(xb.contiguous(memory_format=torch.channels_last))
        except Exception:  # a module that cannot run channels-last (e.g. a scripted reshape): the plain path
            out = None
        finally:
            module.to(memory_format=torch.contiguous_format)  # later per-batch uses see the module as it was
        if out is None:
            return run(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        return out.float().numpy()

    return Teacher(name, "torch", run, module, run_fast=run_fast)


def _zip_names(p: Path, fix: str) -> list[str]:
    """Member names of a torch zip archive, each member's CRC checked (small archives); TeacherError when the
    file is not a zip, truncated or corrupt."""
    try:
        if not zipfile.is_zipfile(p):
            raise zipfile.BadZipFile("not a zip archive")
        with zipfile.ZipFile(p) as zf:
            names = zf.namelist()
            bad = zf.testzip() if len(names) < 64 else None
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, ValueError, NotImplementedError) as e:
        raise TeacherError(f"teacher file {p} is truncated or not a PyTorch file ({first_line(e)})",
                           fix) from None
    if bad is not None:
        raise TeacherError(f"teacher file {p} is corrupt (bad member {bad})", fix)
    return names


_PICKLE_FIX = ("save a state_dict, TorchScript (.pt) or torch.export (.pt2) file instead; or, only for a file from a "
               "source you trust, pass --trust-pickle (dangerous: it runs any code the file holds)")


def _load_torch(p: Path, arch: str | None, trust_pickle: bool = False) -> Teacher:
    import torch

    names = _zip_names(p, "re-save it with torch.jit.save or torch.save(model.state_dict())")
    if any(n.endswith("constants.pkl") or "/code/" in n for n in names):  # a TorchScript archive
        try:
            return torch_teacher(p.name, torch.jit.load(str(p), map_location="cpu"))
        except Exception as e:
            raise TeacherError(f"TorchScript teacher {p} cannot be loaded: {first_line(e)}", "re-export it") from None
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=not trust_pickle)
    except Exception as e:
        msg = first_line(e)
        if not trust_pickle and any(k in msg.lower() for k in ("weights only", "weights_only", "unsupported global")):
            raise TeacherError(f"teacher file {p} holds a pickled Python object, which edgekd does not unpickle "
                               "(it could run code)", _PICKLE_FIX) from None
        if trust_pickle:
            raise TeacherError(f"teacher file {p} cannot be unpickled: {msg}",
                               "put the module that defines the model's class on PYTHONPATH, or save a state_dict "
                               "or TorchScript file instead") from None
        raise TeacherError(f"teacher file {p} cannot be read: {msg}", "re-save the teacher") from None
    if trust_pickle and isinstance(obj, torch.nn.Module):
        return torch_teacher(p.name, obj)
    if not isinstance(obj, dict) or not obj or not all(hasattr(v, "shape") for v in obj.values()):
        raise TeacherError(f"teacher file {p} is not a state_dict", "save model.state_dict(), or TorchScript")
    if arch is None:
        raise TeacherError(f"teacher file {p} is a state_dict and needs its architecture",
                           "pass --teacher-arch module:factory (a function that returns the model)")
    module = _factory(arch)()
    try:
        module.load_state_dict(obj)
    except Exception as e:
        raise TeacherError(f"state_dict {p.name} does not fit {arch}: {first_line(e)}",
                           "pass the factory the weights were saved from") from None
    return torch_teacher(p.name, module)


def _factory(arch: str) -> Callable[[], Any]:
    from ..factory import import_factory

    return import_factory(arch, "--teacher-arch", TeacherError)


def _load_pt2(p: Path, _arch: str | None, trust_pickle: bool = False) -> Teacher:
    import torch

    names = _zip_names(p, "re-save it with torch.export.save")
    if not trust_pickle:
        _refuse_pt2_pickles(p, names)
    try:
        with _quiet_torch_export():
            program = torch.export.load(str(p))
    except Exception as e:
        raise TeacherError(f"torch.export teacher {p} cannot be loaded: {first_line(e)}",
                           "re-save it with torch.export.save") from None
    module = program.module()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.from_numpy(x))
        return (out[0] if isinstance(out, (tuple, list)) else out).float().numpy()

    return Teacher(p.name, "torch", run, None, input_shape=_pt2_input_shape(program))


def _pt2_input_shape(program: Any) -> tuple[int | None, ...] | None:
    """The first user input's shape in an ExportedProgram: ints where static, None where symbolic."""
    try:
        first = program.graph_signature.user_inputs[0]
        node = next(n for n in program.graph.nodes if n.op == "placeholder" and n.name == first)
        return tuple(d if isinstance(d, int) else None for d in node.meta["val"].shape)
    except Exception:  # unusual programs: shapes unknown, the runtime checks them
        return None


def _refuse_pt2_pickles(p: Path, names: list[str]) -> None:
    """torch.export.load unpickles, without ``weights_only``, weights and constants marked ``use_pickle``,
    opaque objects (``pickle.loads``) and — when ``weights_only`` fails — sample inputs and legacy-format
    members. Refuse any such member unless it is a plain tensor pickle that ``weights_only=True`` accepts."""
    import torch

    def refuse(member: str, why: str) -> TeacherError:
        return TeacherError(f"teacher file {p} holds a pickled Python object ({member}: {why}), which edgekd does "
                            "not unpickle (it could run code)", _PICKLE_FIX)

    with zipfile.ZipFile(p) as zf:
        for name in names:
            base = name.rsplit("/", 1)[-1]
            if base.endswith("_config.json") and "data" in name.split("/"):  # weights / constants payload configs
                try:
                    config = json.loads(zf.read(name)).get("config", {})
                    entries = list(config.values())
                except (ValueError, AttributeError, UnicodeDecodeError) as e:
                    raise TeacherError(f"torch.export teacher {p} has a malformed {base} ({first_line(e)})",
                                       "re-save it with torch.export.save") from None
                for entry in entries:
                    path_name = str(entry.get("path_name", "")) if isinstance(entry, dict) else ""
                    if not isinstance(entry, dict) or entry.get("use_pickle") or \
                            path_name.startswith(("custom_obj", "opaque_obj")):
                        raise refuse(name, f"entry {path_name or entry!r} is stored as a pickle")
            elif base.endswith(".pt"):  # sample inputs, legacy state dicts/constants: tensors only
                try:
                    torch.load(_io.BytesIO(zf.read(name)), map_location="cpu", weights_only=True)
                except Exception:
                    raise refuse(name, "not plain tensors: weights_only loading refuses it") from None


@contextlib.contextmanager
def _quiet_torch_export():
    """torch.export.load logs tracebacks (WARNING) for files it cannot read; edgekd reports one line instead."""
    loggers = [logging.getLogger(n) for n in ("torch.export", "torch._export", "torch.export.pt2_archive._package")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _load_onnx(p: Path, _arch: str | None) -> Teacher:
    import onnxruntime as ort

    try:
        from ..export.parity import exact_int8

        sess = ort.InferenceSession(str(p), exact_int8(ort.SessionOptions()), providers=["CPUExecutionProvider"])
    except Exception as e:
        raise TeacherError(f"ONNX teacher {p} cannot be loaded: {first_line(e)}",
                           "check the file is a complete .onnx model") from None
    first = sess.get_inputs()[0]
    name = first.name
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in first.shape)

    def run(x: np.ndarray) -> np.ndarray:
        return sess.run(None, {name: x})[0]

    return Teacher(p.name, "onnx", run, input_shape=shape)


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

