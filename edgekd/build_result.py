"""A finished build as one typed record: what the report renders (``report/build_report.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .records import ArtifactFailure
    from .build_config import BuildConfig
    from .data import Dataset
    from .quant_guard import Finding
    from .records import Candidate, TeacherInfo
    from .search import CandidateCost
    from .select import Selection
    from .targets import TargetProfile


@dataclass(frozen=True)
class DataSummary:
    spec: str
    train: int
    val: int
    test: int
    unlabeled: int
    num_classes: int
    input_shape: tuple[int, ...]
    preprocess: dict[str, Any] | None = None  # the student's input contract (image folders), with "describe"
    teacher_input: dict[str, Any] | None = None  # the teacher's own contract, when it differs
    bad_images: int = 0  # unreadable images left out (--skip-bad-images)

    @staticmethod
    def of(data: "Dataset") -> "DataSummary":
        def contract(d: "Dataset | None") -> dict[str, Any] | None:
            pre = d.preprocess if d is not None else None
            return None if pre is None else {**pre.as_dict(), "describe": pre.describe()}

        bad = len(data.x_train.store.bad) if data.is_lazy else 0
        return DataSummary(data.spec, len(data.x_train), len(data.x_val), len(data.x_test), data.n_unlabeled,
                           data.num_classes, tuple(data.input_shape), contract(data), contract(data.teacher_view),
                           bad)


@dataclass(frozen=True)
class BuildResult:
    config: "BuildConfig"
    target: "TargetProfile"
    data: DataSummary
    teacher: "TeacherInfo"
    candidates: "tuple[Candidate, ...]"
    selection: "Selection"  # decided on the candidates' judged figures
    findings: "tuple[Finding, ...]"  # the quantization guard's
    plan: "tuple[CandidateCost, ...]"  # every candidate considered before training (empty with --no-search)
    stages: dict[str, Any]  # which stages ran and which were reused (StageCache.summary())
    latency_note: str  # the target backend's paragraph on how the judged latencies were obtained
    threads: int  # host benchmark threads
    timings: dict[str, float]
    wall_s: float
    environment: dict[str, Any]
    artifact_failures: "tuple[ArtifactFailure, ...]" = ()  # artifacts a converter could not make (reported)
