"""The stages of a build as plain functions, each usable alone (the CLI's subcommands call them).

A stage reads typed records and files and writes files plus a record; it never reaches into another
stage's internals. Every artifact is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .distill.config import DistillConfig
from .errors import ConfigError, ExportError, first_line
from .fsio import atomic_path, sha256_file, write_json_atomic
from .models.students import StudentSpec
from .records import Checkpoint, ExportedModel, to_dict

if TYPE_CHECKING:
    from .models.teachers import Teacher
    from .data import Dataset
    from .quantize.ort_int8 import OrtInt8Config

Progress = Callable[[str], None]


def accuracy_of(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(axis=1) == labels).mean()) if len(labels) else float("nan")


def distill_student(data: "Dataset", spec: StudentSpec, config: DistillConfig, out_dir: str | Path, *,
                    teacher: "Teacher | None" = None, teacher_logits: np.ndarray | None = None,
                    progress: Progress | None = None, teachers: tuple[Any, ...] = (),
                    class_maps: dict[int, tuple[int, ...]] | None = None, distributed: Any = None) -> Checkpoint:
    """Train ``spec`` with ``config.method`` (``distill.methods``); write ``student.pt`` + ``student.json``.

    ``teachers``/``class_maps``: multi-teacher; ``distributed``: a ``distill.ddp.Dist`` under torchrun (only
    rank 0 writes files; ranks train in lock-step)."""
    import torch

    from .distill.methods import METHODS, MethodContext
    from .distill.trainer import evaluate
    from .models.count import count_macs, count_params

    if spec.num_classes != data.num_classes:
        raise ConfigError(f"student has {spec.num_classes} classes but the data has {data.num_classes}",
                          "build the student for the data's class count")
    torch.manual_seed(config.seed)
    if config.uses_teacher and teacher_logits is None and teacher is None and not teachers:
        raise ConfigError(f"method {config.method!r} with loss {config.loss!r} needs a teacher",
                          "pass --teacher, or use --loss ce")
    ctx = MethodContext(data, spec, config, teacher=teacher, teacher_logits=teacher_logits if config.uses_teacher
                        else None, teachers=tuple(teachers), class_maps=dict(class_maps or {}),
                        progress=progress or (lambda _m: None))
    if distributed is not None:
        ctx.shard, ctx.wrap = (distributed.rank, distributed.world), distributed.wrap
        ctx.device = distributed.device
    else:
        from .distill.device import resolve

        ctx.device = resolve(config.device)
    if ctx.device is not None and ctx.device.type != "cpu":
        ctx.progress(f"training on {ctx.device} ({torch.cuda.get_device_name(ctx.device)})")
    result = METHODS.get(config.method).run(ctx)
    acc = evaluate(result.model, data.x_test, data.y_test) if len(data.x_test) else float("nan")  # data-free
    if distributed is not None and distributed.rank != 0:
        return None  # type: ignore[return-value]  # rank 0 writes the files
    out = Path(out_dir)
    weights = out / "student.pt"
    with atomic_path(weights) as tmp:
        torch.save(result.model.state_dict(), tmp)
    ckpt = Checkpoint(name=spec.name, family=spec.family, path=str(weights), sha256=sha256_file(weights),
                      params=count_params(result.model), macs=count_macs(result.model, spec.input_shape),
                      accuracy_fp32=acc, val_accuracy=result.best_val_accuracy, epochs_run=result.epochs_run,
                      init=ctx.seeding.describe() if ctx.seeding is not None else "random weights",
                      config={"student": spec.as_dict(), "distill": config.as_dict(), "history": result.history,
                              "data": data.spec, "train_samples": len(data.x_train),
                              "unlabeled_samples": data.n_unlabeled,
                              "preprocess": None if data.preprocess is None else data.preprocess.as_dict(),
                              "teacher": None if teacher is None else {"name": teacher.name, "kind": teacher.kind,
                                                                       "outputs": teacher.outputs},
                              "teachers": [{"name": t.name, "kind": t.kind} for t in teachers]})
    write_json_atomic(out / "student.json", to_dict(ckpt))
    return ckpt


def checkpoint_teacher(path: str | Path) -> Any:
    """A student checkpoint (``student.json``) as a teacher (kind "checkpoint"), e.g. for self-distillation."""
    from .models.teachers import torch_teacher

    model, ckpt = load_checkpoint(path)
    teacher = torch_teacher(f"{ckpt.name} ({Path(path).name})", model)
    teacher.kind, teacher.outputs = "checkpoint", "logits"
    teacher.spec = ckpt.config["student"]
    return teacher


def load_checkpoint(path: str | Path) -> tuple[Any, Checkpoint]:
    """Load a student saved by ``distill_student`` (its .json record or its .pt next to it)."""
    import torch

    from .models.students import build_student

    p = Path(path)
    meta = p if p.suffix == ".json" else p.with_suffix(".json")
    if not meta.is_file():
        raise ConfigError(f"{p} has no student record {meta.name} beside it",
                          "pass a student.json written by `edgekd distill`")
    try:
        d = json.loads(meta.read_text())
        d.pop("record", None)
        ckpt = Checkpoint(**d)
        spec = StudentSpec(**{**ckpt.config["student"], "input_shape": tuple(ckpt.config["student"]["input_shape"])})
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(f"student record {meta} is malformed ({e})", "re-run `edgekd distill`") from None
    weights = Path(ckpt.path) if Path(ckpt.path).is_absolute() else meta.parent / Path(ckpt.path).name
    if not weights.is_file():
        weights = meta.parent / "student.pt"
    model = build_student(spec)
    try:
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as e:
        raise ConfigError(f"student weights {weights} cannot be loaded ({first_line(e)})",
                          "re-run `edgekd distill`") from None
    model.eval()
    return model, replace(ckpt, path=str(weights))


def export_student(model: Any, data: "Dataset", out_path: str | Path, *, samples: int = 256) -> ExportedModel:
    """ONNX export (dynamic batch) + simplification + parity against torch on held-out samples."""
    from .export.onnx import export_onnx
    from .preprocess import META_KEY

    x = data.x_test[:samples]
    meta = {META_KEY: data.preprocess.to_json()} if data.preprocess is not None else None
    exported = export_onnx(model, x, out_path, metadata=meta)
    acc = accuracy_of(run_onnx_outputs(exported.path, data.x_test), data.y_test)
    return replace(exported, accuracy=acc)


def export_student_tflite(model: Any, data: "Dataset", out_path: str | Path, precision: str = "fp32",
                          converter: str = "auto", onnx_path: str | Path | None = None, *,
                          samples: int = 256) -> ExportedModel:
    """TFLite export with parity on the first ``samples`` test samples; int8 calibrated on 256 training samples
    (seed 0); ``accuracy`` is LiteRT's top-1 on the whole test split."""
    from .export.tflite import export_tflite
    from .export.tflite_runtime import run_tflite
    from .preprocess import META_KEY

    calib = data.calibration_samples(256, seed=0) if precision == "int8" else None
    meta = {META_KEY: data.preprocess.to_json()} if data.preprocess is not None else None
    exported = export_tflite(model, data.x_test[:samples], out_path, precision=precision, converter=converter,
                             calibration=calib, onnx_path=onnx_path, metadata=meta)
    acc = accuracy_of(run_tflite(exported.path, data.x_test), data.y_test)
    return replace(exported, accuracy=acc)


def quantize_student(fp32: ExportedModel, data: "Dataset", out_path: str | Path, config: "OrtInt8Config | str | None" = None) -> ExportedModel:
    """Static int8 (QDQ) calibrated on training samples; parity and accuracy on the test split.

    ``config``: an ``OrtInt8Config`` (default MinMax per-channel), or ``"search"`` to try the scheme menu of
    ``quantize.scheme_search`` and keep the most accurate on the validation split.
    """
    from .quantize.ort_int8 import OrtInt8Config, quantize_onnx_int8
    from .quantize.scheme_search import choose_ort_int8

    if config == "search":
        q, _tried = choose_ort_int8(fp32, data, out_path)
    else:
        config = config or OrtInt8Config()
        calib = data.calibration_samples(min(config.calibration_samples, len(data.x_train)), seed=0)
        q = quantize_onnx_int8(fp32, calib, out_path, config)
    return score_int8(q, fp32, data)


def score_int8(q: ExportedModel, fp32: ExportedModel, data: "Dataset") -> ExportedModel:
    """Parity against the fp32 model and accuracy, both on the test split; a failed check removes the file."""
    from .export.parity import PARITY_DEFAULTS, check_parity

    ref = run_onnx_outputs(fp32.path, data.x_test)
    got = run_onnx_outputs(q.path, data.x_test)
    try:
        report = check_parity(ref, got, output=fp32.output_name, route="onnx fp32 -> ort int8",
                              **PARITY_DEFAULTS["int8"])
    except ExportError:
        Path(q.path).unlink(missing_ok=True)  # never leave a model that failed its check
        raise
    return replace(q, parity=report.as_dict(), accuracy=accuracy_of(got, data.y_test))


def run_onnx_outputs(path: str | Path, x: np.ndarray) -> np.ndarray:
    from .export.parity import run_onnx

    return run_onnx(path, x)
