"""``edgekd distill`` as an API: resolve data, teacher(s) and student, then run the configured method.

Teachers: none (methods that need none), the built-in one for the data, one file, several files
(multi-teacher), or a student checkpoint ``student.json`` (self-distillation). ``--data none`` means no
real data at all: the built-in Fashion-MNIST teacher and data-free distillation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..data.folder import ImageOptions
from ..errors import ConfigError
from ..records import Checkpoint
from .config import DistillConfig
from .names import METHODS

if TYPE_CHECKING:
    import numpy as np

    from ..data import Dataset
    from ..models.teachers import Teacher
    from .ddp import Dist

NO_DATA = ("none", "")


@dataclass(frozen=True)
class DistillJob:
    """Where and what to distil (the method and its hyper-parameters are the ``DistillConfig``)."""

    data: str  # data spec, or "none" (data-free)
    out: str  # directory for student.pt / student.json
    width: float = 0.5
    depth: int = 1
    family: str | None = None  # default: chosen from the data's shape
    teachers: tuple[str, ...] = ()  # teacher files (empty: the built-in teacher)
    teacher_arch: str | None = None
    teacher_outputs: str = "auto"
    trust_pickle: bool = False  # DANGEROUS: unpickle torch teacher files in full (runs any code they hold)
    class_maps: tuple[tuple[int, tuple[int, ...]], ...] = ()  # (1-based teacher position, map)
    limit: int | None = None
    unlabeled: str | None = None  # unlabelled training inputs: "rest" (what limit left out) or a data spec
    cache_dir: str | None = None
    images: ImageOptions = field(default_factory=ImageOptions)  # folder: data (--image-size, --channels, ...)
    teacher_input: str | None = None  # the teacher's input contract (--teacher-input)

    def __post_init__(self) -> None:
        if self.unlabeled is not None and self.data.strip().lower() in NO_DATA:
            raise ConfigError("--unlabeled adds inputs to real data, and --data is none",
                              "pass --data with labelled data, or drop --unlabeled (data-free needs neither)")
        for pos, _m in self.class_maps:
            if not 1 <= pos <= max(1, len(self.teachers)):
                raise ConfigError(f"--teacher-map names teacher {pos} but {len(self.teachers)} teacher(s) are given",
                                  "number teachers 1.. in the order of --teacher")


def parse_class_map(text: str) -> tuple[int, tuple[int, ...]]:
    """'2=1,0,2' -> (2, (1, 0, 2)): teacher 2's output 1 holds data class 0, and so on."""
    try:
        pos, _, rest = text.partition("=")
        return int(pos), tuple(int(v) for v in rest.split(","))
    except ValueError:
        raise ConfigError(f"bad --teacher-map {text!r}", "write N=i0,i1,... (teacher N's output for each class)") from None


def run_distill(job: DistillJob, config: DistillConfig, progress: Callable[[str], None] | None = None,
                distributed: Dist | None = None) -> Checkpoint | None:
    """Load everything ``job`` names and distil one student; returns the Checkpoint (None on ranks > 0)."""
    from ..cache import default_cache_dir
    from ..fsio import ensure_dir
    from ..models.students import StudentSpec, default_family
    from ..prepare import TeacherSource, load_data, load_teachers, with_teacher_contract
    from ..stages import distill_student

    say = progress or (lambda _m: None)
    ensure_dir(job.out)  # fail before training, not after
    cache = Path(job.cache_dir) if job.cache_dir else default_cache_dir()
    if job.data.strip().lower() in NO_DATA:
        data, teacher = _no_data(config, say)
        config = replace(config, method="data-free") if config.method == "kd" else config
    else:
        data = load_data(job.data, seed=config.seed, limit=job.limit, unlabeled=job.unlabeled, say=lambda _m: None,
                         images=job.images, cache_dir=cache)
        teacher = None
        if data.n_unlabeled:
            say(f"data: {data.n_unlabeled} of {len(data.x_train)} training samples are unlabelled; the teacher's "
                "top class stands in for their labels")
    spec = StudentSpec(job.family or default_family(data.input_shape), job.width, job.depth, data.input_shape,
                       data.num_classes)
    method = METHODS[config.method]
    teachers: tuple[Teacher, ...] = ()
    if config.uses_teacher and teacher is None:
        source = TeacherSource(job.teachers, job.teacher_arch, job.teacher_outputs, job.trust_pickle,
                               job.teacher_input)
        data = with_teacher_contract(source, data, say)
        teachers = tuple(lt.teacher for lt in load_teachers(source, data, cache, say))
        teacher = teachers[0]
        if len(teachers) > 1 and not method.several_teachers:
            raise ConfigError(f"{len(teachers)} teachers given to method {config.method!r}",
                              "use --method multi-teacher, or give one --teacher")
    if not method.real_data and data.spec not in NO_DATA:
        say(f"data-free: {data.spec} is used only for its test split (reporting accuracy), never for training")
    logits = None
    if teacher is not None and method.precomputes_teacher and config.uses_kd_loss and not config.hints:
        view = data.teacher_view or data
        if view is not None and (distributed is not None or view is not data):
            logits = _shared_logits(teacher, view, cache, distributed, say)
    return distill_student(data, spec, config, job.out, teacher=teacher, teacher_logits=logits, progress=say,
                           teachers=teachers if len(teachers) > 1 else (), class_maps=dict(job.class_maps),
                           distributed=distributed)


def _no_data(config: DistillConfig, say: Callable[[str], None]) -> tuple[Dataset, Teacher]:
    """--data none: the built-in (shipped) Fashion-MNIST teacher defines the inputs; data-free distillation."""
    import numpy as np

    from ..data import Dataset
    from ..models.default_teacher import load_shipped_teacher

    if config.method not in ("kd", "data-free"):
        raise ConfigError(f"--data none leaves nothing to train {config.method!r} on",
                          "use --method data-free, or pass --data")
    teacher = load_shipped_teacher("fashion-mnist", (1, 28, 28), 10)
    if teacher is None:
        raise ConfigError("--data none needs edgekd's shipped Fashion-MNIST teacher, which is missing",
                          "reinstall edgekd, or pass --data")
    say("no --data: DATA-FREE distillation from the built-in Fashion-MNIST teacher (synthetic inputs only; "
        "no real data is used, so no real test accuracy can be reported)")
    shape = (1, 28, 28)
    empty = np.zeros((0, *shape), np.float32)
    stub = Dataset(spec="none", x_train=np.zeros((1, *shape), np.float32), y_train=np.zeros(1, np.int64),
                   x_val=empty, y_val=np.zeros(0, np.int64), x_test=empty, y_test=np.zeros(0, np.int64),
                   num_classes=10, class_names=tuple(str(i) for i in range(10)), kind="image")
    return stub, teacher


def _shared_logits(teacher: Teacher, data: Dataset, cache: Path, distributed: Dist | None,
                   say: Callable[[str], None]) -> np.ndarray:
    """The teacher's training-set logits through the on-disk cache; under torchrun rank 0 computes and writes
    them while the other ranks wait, then every rank reads the same file."""
    from ..distill.cache import cached_teacher_logits
    from ..models.default_teacher import state_dict_sha256

    if teacher.module is None:  # no content hash to key a shared cache on: every rank runs it (deterministic)
        return teacher.logits(data.x_train)
    ident = f"{teacher.kind}:{state_dict_sha256(teacher.module)}"
    if distributed is None:
        return cached_teacher_logits(teacher, ident, data, cache, progress=say)
    if distributed.rank == 0:
        cached_teacher_logits(teacher, ident, data, cache, progress=say)
    distributed.barrier()
    return cached_teacher_logits(teacher, ident, data, cache, progress=say)
