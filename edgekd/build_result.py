"""A finished build as one typed record: what the report renders (``report/build_report.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

    @staticmethod
    def of(data: "Dataset") -> "DataSummary":
        return DataSummary(data.spec, len(data.x_train), len(data.x_val), len(data.x_test), data.n_unlabeled,
                           data.num_classes, tuple(data.input_shape))


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
