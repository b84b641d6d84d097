"""Export a PyTorch module to ONNX (dynamic batch), simplify it, check it, and prove parity with torch.

Exporter choice: the TorchScript exporter (``dynamo=False``) is tried first because it writes exactly the
requested opset (17-23), takes ~0.05 s on small nets and needs no extra package; the torch.export-based
exporter (``dynamo=True``, needs onnxscript, writes opset >= 18) is the fallback, e.g. for modules that
tracing cannot handle or for a future torch without the legacy path. ``exporter=`` forces one of them.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..errors import ConfigError, ExportError, first_line
from ..fsio import atomic_path, sha256_file
from ..records import ExportedModel
from .parity import PARITY_DEFAULTS, check_parity, run_onnx

if TYPE_CHECKING:
    import torch

EXPORTERS = ("auto", "legacy", "dynamo")
_MAX_PROTO_BYTES = 2 * 1024**3 - 1


def export_onnx(model: "torch.nn.Module", sample: np.ndarray, out_path: str | Path, *, opset: int = 17,
                simplify: bool = True, input_name: str = "input", output_name: str = "logits",
                exporter: str = "auto", atol: float | None = PARITY_DEFAULTS["fp32"]["atol"],
                min_agreement: float | None = PARITY_DEFAULTS["fp32"]["min_agreement"],
                rtol: float | None = PARITY_DEFAULTS["fp32"]["rtol"],
                metadata: dict[str, str] | None = None) -> ExportedModel:
    """Export ``model`` to ``out_path`` as fp32 ONNX with a dynamic batch dimension; ``metadata`` is written
    into the model's ``metadata_props`` (e.g. the input contract, ``edgekd.preprocess``).

    ``sample`` is a batch ``(N, ...)`` of representative inputs: the first two trace the graph, all of them
    are used for the torch-vs-ONNX parity check (raises :class:`ParityError` when it fails; nothing is
    written then). The model is evaluated in eval mode; its training flag is restored afterwards.
    """
    import torch

    x = _validate(model, sample, opset, exporter, input_name, output_name)
    was_training = model.training
    model.eval()
    try:
        reference = _torch_forward(model, x)
        with tempfile.TemporaryDirectory(prefix="edgekd-export-") as tmp:
            raw, used, notes = _export_any(model, x, Path(tmp), opset, exporter, input_name, output_name)
            proto, simplifier = _simplify(raw, notes) if simplify else (raw, "")
    finally:
        model.train(was_training)
    written_opset = _check_model(proto)
    input_shape = _graph_input_shape(proto)
    tool = f"torch.onnx {torch.__version__.split('+')[0]} ({used}, opset {written_opset})"
    tool += f" + {simplifier}" if simplifier else ""
    if metadata:
        import onnx

        onnx.helper.set_model_props(proto, {**{p.key: p.value for p in proto.metadata_props}, **metadata})
    with atomic_path(out_path) as tmp_file:
        _save(proto, tmp_file)
        report = check_parity(reference, run_onnx(tmp_file, x), output=output_name,
                              route=f"torch -> onnx fp32 ({used})", atol=atol, min_agreement=min_agreement,
                              rtol=rtol)
    out = Path(out_path)
    config = {"exporter": used, "opset_requested": opset, "opset": written_opset,
              "simplifier": simplifier or None, "notes": notes}
    return ExportedModel(path=str(out), sha256=sha256_file(out), format="onnx", precision="fp32",
                         size_bytes=out.stat().st_size, input_name=input_name, input_shape=input_shape,
                         output_name=output_name, tool=tool, parity=report.as_dict(), config=config)


def _validate(model: Any, sample: Any, opset: int, exporter: str, input_name: str, output_name: str) -> np.ndarray:
    import torch

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"expected a torch.nn.Module, got {type(model).__name__}", "pass the student module")
    if exporter not in EXPORTERS:
        raise ConfigError(f"unknown exporter '{exporter}'", f"use one of {', '.join(EXPORTERS)}")
    if not isinstance(opset, int) or not 17 <= opset <= 23:
        raise ConfigError(f"opset must be an integer 17..23, got {opset!r}", "pass opset=17 (the default)")
    if not input_name or not output_name or input_name == output_name:
        raise ConfigError(f"input/output names must be distinct and non-empty, got {input_name!r}/{output_name!r}",
                          "pass e.g. input_name='input', output_name='logits'")
    x = np.asarray(sample)
    if x.ndim < 2 or x.shape[0] < 1 or x.size == 0:
        raise ConfigError(f"sample must be a non-empty batch (N, ...), got shape {x.shape}",
                          "pass a few real inputs with the batch dimension first")
    if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all():
        raise ConfigError("sample must hold finite numbers", "pass real (normalised) input data")
    return np.ascontiguousarray(x, dtype=np.float32)


def _torch_forward(model: "torch.nn.Module", x: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    outs = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            try:
                y = model(torch.from_numpy(x[start:start + batch]))
            except Exception as e:
                raise ExportError(f"the model fails on the sample of shape {x.shape} ({type(e).__name__}: "
                                  f"{first_line(e)})", "pass a sample shaped like the model's input") from None
            if isinstance(y, (tuple, list)):
                y = y[0]
            if not isinstance(y, torch.Tensor):
                raise ExportError(f"the model returned {type(y).__name__}, not a tensor",
                                  "make forward() return the logits tensor (first element of a tuple is used)")
            outs.append(y.detach().float().cpu().numpy())
    return np.concatenate(outs, axis=0)


def _trace_input(x: np.ndarray) -> "torch.Tensor":
    import torch

    t = x[:2] if len(x) >= 2 else np.concatenate([x, x])  # batch 2: torch.export specialises size-1 dims
    return torch.from_numpy(np.ascontiguousarray(t))


def _export_any(model, x, tmp: Path, opset, exporter, input_name, output_name):
    """Try the exporters in order; return (onnx.ModelProto, exporter used, notes)."""
    import onnx

    order = {"auto": ("legacy", "dynamo"), "legacy": ("legacy",), "dynamo": ("dynamo",)}[exporter]
    notes: list[str] = []
    for name in order:
        path = tmp / f"{name}.onnx"
        try:
            with _quiet():
                (_export_legacy if name == "legacy" else _export_dynamo)(
                    model, _trace_input(x), path, opset, input_name, output_name)
            proto = onnx.load(str(path))
            _require_dynamic_batch(proto, name)
            return proto, name, notes
        except Exception as e:  # any exporter failure: note it and try the next one
            notes.append(f"{name} exporter failed: {type(e).__name__}: {first_line(e)}")
    raise ExportError(f"torch.onnx could not export the model ({'; '.join(notes)})",
                      "make the model traceable (no data-dependent control flow) or try exporter='dynamo'")


def _export_legacy(model, t, path: Path, opset, input_name, output_name) -> None:
    import torch

    torch.onnx.export(model, (t,), str(path), dynamo=False, opset_version=opset, do_constant_folding=True,
                      input_names=[input_name], output_names=[output_name],
                      dynamic_axes={input_name: {0: "batch"}, output_name: {0: "batch"}})


def _export_dynamo(model, t, path: Path, opset, input_name, output_name) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1)
    # it writes opset 18 at least (and prints a traceback when asked for less): ask for what it can do
    torch.onnx.export(model, (t,), str(path), dynamo=True, opset_version=max(opset, 18), external_data=False,
                      input_names=[input_name], output_names=[output_name], dynamic_shapes=({0: batch},),
                      verbose=False)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' deprecation warnings and registration log chatter."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _require_dynamic_batch(proto, exporter: str) -> None:
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0] if proto.graph.input else None
    if dim0 is None or dim0.HasField("dim_value"):
        raise ExportError(f"the {exporter} exporter produced a fixed batch dimension",
                          "avoid reshapes that hard-code the batch size (use flatten(1) or view(x.size(0), -1))")


def _simplify(proto, notes: list[str]):
    """onnxsim first, onnxslim if it fails; keep the unsimplified model if both fail. Returns (proto, tool)."""
    try:
        import onnxsim

        simplified, ok = onnxsim.simplify(proto)
        if not ok:
            raise RuntimeError("onnxsim's own output check failed")
        return simplified, f"onnxsim {str(onnxsim.__version__).lstrip('v')}"
    except Exception as e:
        notes.append(f"onnxsim failed: {type(e).__name__}: {first_line(e)}")
    try:
        import onnxslim

        return onnxslim.slim(proto), f"onnxslim {onnxslim.__version__}"
    except Exception as e:
        notes.append(f"onnxslim failed: {type(e).__name__}: {first_line(e)}; model left unsimplified")
    return proto, ""


def _check_model(proto) -> int:
    """Run onnx.checker (with shape inference); return the default-domain opset."""
    import onnx

    if proto.ByteSize() > _MAX_PROTO_BYTES:
        raise ExportError("the exported model is larger than 2 GB (protobuf limit)", "export a smaller student")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as e:
        raise ExportError(f"onnx.checker rejected the exported model ({first_line(e)})",
                          "try another opset or exporter='dynamo'/'legacy', or simplify=False") from None
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def _graph_input_shape(proto) -> tuple[Any, ...]:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)


def _save(proto, path: Path) -> None:
    import onnx

    try:
        onnx.save_model(proto, str(path))
    except OSError as e:
        raise ExportError(f"cannot write the ONNX model to {path} ({e.strerror or e})",
                          "choose a writable output location with free space") from None
