"""One candidate student through the build's stages, each cached and resumable (see ``stage_cache``).

distill -> ONNX fp32 -> per runtime the target lists: (onnxruntime) int8 QDQ, (litert) TFLite fp32 + int8.
Each stage's key is the hash of what determines its output: the data's fingerprint, the teacher, the student
spec, the distillation config, the upstream artifacts' sha256 and tool versions. What comes out is typed:
a :class:`~edgekd.records.Checkpoint`, then one :class:`~edgekd.records.Deployable` per runtime.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ContextManager, TypeVar

from .backends.host import host_threads
from .records import Checkpoint, Deployable, ExportedModel
from .shared_store import ARTIFACTS, STUDENTS
from .stage_cache import StageCache

if TYPE_CHECKING:
    import numpy as np

    from .records import ArtifactFailure

    from .build_config import BuildConfig
    from .data import Dataset
    from .models.students import StudentSpec
    from .models.teachers import Teacher
    from .targets import TargetProfile

Progress = Callable[[str], None]
Timed = Callable[[str], ContextManager[Any]]
T = TypeVar("T")
STUDENT_FILES = ("student.pt", "student.json")


@dataclass(frozen=True)
class BuildContext:
    """What every candidate's stages share in one build."""

    config: "BuildConfig"
    target: "TargetProfile"
    data: "Dataset"
    teacher: "Teacher"
    teacher_logits: "np.ndarray"  # the teacher's outputs on the training split
    teacher_id: str
    cache: StageCache

    def data_for(self, input_shape: "tuple[int, ...] | list[int]") -> "Dataset":
        """The data as a candidate of ``input_shape`` takes it (another input resolution: ``Dataset.at_size``)."""
        return self.data.for_shape(tuple(input_shape))

    @property
    def cache_dir(self) -> Path:
        from .cache import default_cache_dir

        return Path(self.config.cache_dir) if self.config.cache_dir else default_cache_dir()


def _shared_stage(ctx: BuildContext, area: str, stage: str, cdir: Path, key: str, files: tuple[str, ...],
                  make: Callable[[], T], encode: Callable[[T], Any], decode: Callable[[Any], T], say: Progress) -> T:
    """A target-independent stage: its stamp in ``cdir`` first, then the shared store (made once for every target
    and run directory), else ``make``; ``--fresh`` makes it anew (and publishes it where the store has none)."""
    from .shared_store import made_once

    def work() -> T:
        result, copied = made_once(ctx.cache_dir, area, key, cdir, files, make, encode, decode, ctx.cache.fresh)
        if copied:
            ctx.cache.shared.append(f"{cdir.name}/{stage}")
            say(f"    {stage}: copied from the shared store (made by an earlier build: {ctx.cache_dir / area})")
        return result

    return ctx.cache.run(stage, cdir, key, [cdir / f for f in files], work, encode, decode)


def exported(d: dict[str, Any]) -> ExportedModel:
    return ExportedModel(**{**d, "input_shape": tuple(d["input_shape"])})


def distill_key(ctx: BuildContext, spec: "StudentSpec") -> str:
    """The distill stage's key: the data, the teacher, the student spec, the distillation config (never the target)."""
    return ctx.cache.key("distill", ctx.data_for(spec.input_shape).fingerprint(), ctx.teacher_id, spec.as_dict(),
                         ctx.config.distill.as_dict())


def distill_candidate(ctx: BuildContext, spec: "StudentSpec", cdir: Path, timed: Timed, say: Progress,
                      trained_elsewhere: "Callable[[Path], Checkpoint] | None" = None) -> Checkpoint:
    """Train one student (or read it back from an earlier build with the same inputs); ``trained_elsewhere``
    writes a student a ``--jobs``/``--ray`` worker trained into ``cdir`` instead of training it here."""
    from .stages import distill_student

    config, data = ctx.config, ctx.data_for(spec.input_shape)

    def train() -> Checkpoint:
        if trained_elsewhere is not None:
            return trained_elsewhere(cdir)
        return distill_student(data, spec, config.distill, cdir, teacher=ctx.teacher,
                               teacher_logits=ctx.teacher_logits, progress=lambda m: say(f"    {m}"))

    with timed("distill"):  # a student is trained once, whatever the target (not with --fresh)
        ckpt = _shared_stage(ctx, STUDENTS, "distill", cdir, distill_key(ctx, spec), STUDENT_FILES, train, asdict,
                             lambda d: Checkpoint(**d), say)
    say(f"    fp32 test accuracy {ckpt.accuracy_fp32:.4f}, {ckpt.params} params, {ckpt.macs / 1e6:.2f} M MACs")
    return ckpt


def already_trained(ctx: BuildContext, spec: "StudentSpec", cdir: Path) -> bool:
    """Whether the distill stage would read the student back (its stamp in ``cdir``, or the shared store)."""
    from .shared_store import stored

    if ctx.cache.fresh:
        return False
    key = distill_key(ctx, spec)
    return ctx.cache.has("distill", cdir, key) or stored(ctx.cache_dir, STUDENTS, key, STUDENT_FILES)


def export_candidate(ctx: BuildContext, ckpt: Checkpoint, cdir: Path, timed: Timed, say: Progress,
                     failures: "list[ArtifactFailure] | None" = None) -> list[Deployable]:
    """ONNX fp32, then one deployable fp32 + int8 pair per runtime the target lists (onnxruntime, LiteRT).

    A runtime whose artifact cannot be made (its converter crashed, hung, ran out of memory or failed) is added to
    ``failures`` with the reason and left out; the other runtime goes on. Without ``failures`` it raises."""
    from .errors import ExportError
    from .records import ArtifactFailure
    from .stages import export_student, export_student_tflite, load_checkpoint

    def failed(runtime: str, e: ExportError) -> None:
        if failures is None:
            raise e
        failures.append(ArtifactFailure(ckpt.name, runtime, str(e)))
        say(f"    {runtime}: no artifact, the build goes on without it ({e.headline()})")

    config, target, data, cache = ctx.config, ctx.target, ctx.data_for(ckpt.input_shape), ctx.cache
    model = None

    def student() -> Any:
        nonlocal model
        if model is None:
            model = load_checkpoint(cdir / "student.json")[0]
        return model

    k_src = cache.key("distilled", ckpt.sha256, data.fingerprint())
    with timed("export"):
        fp32 = _shared_stage(ctx, ARTIFACTS, "onnx_fp32", cdir, cache.key("onnx", k_src), ("model_fp32.onnx",),
                             lambda: export_student(student(), data, cdir / "model_fp32.onnx"), asdict, exported, say)
    threads = host_threads(target)
    out = []
    if "onnxruntime" in target.runtimes:
        try:
            with timed("quantize"):
                int8 = _shared_stage(ctx, ARTIFACTS, "onnx_int8", cdir,
                                     cache.key("ort-int8", fp32.sha256, config.int8_search, data.fingerprint()),
                                     ("model_int8.onnx",),
                                     lambda: _quantize(config, fp32, data, cdir / "model_int8.onnx"), asdict, exported,
                                     say)
            say(f"    onnxruntime: fp32 acc {fp32.accuracy:.4f}, int8 acc {int8.accuracy:.4f} "
                f"({int8.config.get('scheme', 'minmax')}, argmax agreement "
                f"{int8.parity.get('argmax_agreement'):.4f})")
            out.append(Deployable("onnxruntime", ckpt, fp32, int8, threads))
        except ExportError as e:
            failed("onnxruntime", e)
    if "litert" in target.runtimes:
        try:
            with timed("tflite"):
                t32, t8 = (_shared_stage(ctx, ARTIFACTS, f"tflite_{p}", cdir,
                                         cache.key("tflite", p, k_src, fp32.sha256), (f"model_{p}.tflite",),
                                         lambda p=p: export_student_tflite(student(), data, cdir / f"model_{p}.tflite",
                                                                           p, onnx_path=fp32.path), asdict, exported,
                                         say)
                           for p in ("fp32", "int8"))
            say(f"    litert: fp32 acc {t32.accuracy:.4f}, int8 acc {t8.accuracy:.4f} (route "
                f"{t8.config.get('route')}, int8 I/O, argmax agreement {t8.parity.get('argmax_agreement'):.4f})")
            out.append(Deployable("litert", ckpt, t32, t8, threads))
        except ExportError as e:
            failed("litert", e)
    return out


def _quantize(config: "BuildConfig", fp32: ExportedModel, data: "Dataset", out: Path) -> ExportedModel:
    """int8 by the best scheme on validation data (or MinMax per-channel), scored on the test split."""
    from .stages import quantize_student

    return quantize_student(fp32, data, out, "search" if config.int8_search else None)
