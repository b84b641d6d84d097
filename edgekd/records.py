"""Typed records passed between stages. JSON-serialisable (``dataclasses.asdict``), versioned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Union

RECORD_VERSION = 1


@dataclass(frozen=True)
class Checkpoint:
    """A trained student (or teacher) in PyTorch form."""

    name: str  # candidate name, e.g. "convnet_w0.50_d1"
    family: str  # student family in the registry
    path: str  # state_dict file (.pt, loaded with weights_only=True)
    sha256: str
    params: int
    macs: int  # multiply-accumulates for one sample at batch 1
    accuracy_fp32: float  # top-1 on the test split, torch eager
    val_accuracy: float  # best validation accuracy during training
    epochs_run: int
    config: dict[str, Any] = field(default_factory=dict)  # the StudentSpec and DistillConfig used
    version: int = RECORD_VERSION
    init: str = ""  # how its weights started (distill.seeding: pruned from the teacher, or random); "" before it

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One sample as the student takes it (its input resolution)."""
        return tuple(int(d) for d in self.config["student"]["input_shape"])


@dataclass(frozen=True)
class ExportedModel:
    """A model file produced by an export or a quantization, with its parity check."""

    path: str
    sha256: str
    format: str  # "onnx" (later: "tflite")
    precision: str  # "fp32", "int8", ...
    size_bytes: int
    input_name: str
    input_shape: tuple[Any, ...]  # None/str for a dynamic dimension
    output_name: str
    tool: str  # what produced it, e.g. "torch.onnx (dynamo) + onnxsim 0.4.36"
    parity: dict[str, Any] = field(default_factory=dict)  # ParityReport as dict
    accuracy: float | None = None  # top-1 on the test split in its runtime, when measured
    config: dict[str, Any] = field(default_factory=dict)  # how it was produced: exporter/opset or quant settings, notes
    version: int = RECORD_VERSION


@dataclass(frozen=True)
class BenchResult:
    """Latency and memory of one model on one backend."""

    backend: str  # "onnxruntime-host", ...
    model_path: str
    source: str  # "measured" or "estimated"
    how: str  # a sentence: where and how it was obtained
    threads: int
    runs: int
    warmup: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    cold_start_ms: float  # session creation + first inference
    peak_rss_mb: float  # peak resident memory of the benchmark process
    baseline_rss_mb: float  # resident memory before the model was loaded
    model_size_mb: float
    environment: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    @property
    def model_memory_mb(self) -> float:
        """Peak memory the model added to the process (peak RSS minus the runtime's own baseline)."""
        return max(0.0, self.peak_rss_mb - self.baseline_rss_mb)


@dataclass(frozen=True)
class NpuLayer:
    """One operator in Vela's per-layer estimate."""

    name: str  # the operator's output tensor
    op: str  # Vela's name for the original TFLite operator, e.g. "Conv2D", "L2Norm"
    tflite_op: str  # the TFLite builtin, e.g. "CONV_2D" ("" when it could not be matched)
    target: str  # "NPU" or "CPU"
    cycles: int  # estimated NPU cycles; 0 for a CPU operator, whose time Vela does not estimate
    macs: int


@dataclass(frozen=True)
class NpuEstimate:
    """What Arm Vela estimates for one full-int8 TFLite model on one Ethos-U NPU target (backend npu-emu)."""

    backend: str  # "npu-emu"
    model_path: str
    target: str  # target profile name
    accelerator: str  # Vela accelerator config, e.g. "ethos-u55-128"
    clock_mhz: float  # NPU clock the cycles are converted at
    source: str  # always "estimated"
    how: str  # a sentence: which tool, which configuration, what is and is not included
    inference_time_ms: float  # NPU time of one inference (batch 1); CPU-fallback operators NOT included
    cycles_total: int  # Vela's cycles_total (NPU and memory-access cycles overlapped)
    cycles_npu: int
    macs: int  # Vela's count of network MACs
    sram_kib: float  # "Total SRAM used": tensor arena (+ weight buffering) in SRAM
    flash_kib: float  # weights and command stream in flash
    npu_ops: int  # operators Vela placed on the NPU
    cpu_ops: int  # operators left to the CPU
    cpu_fallback: tuple[str, ...]  # names of the CPU operators (Vela's op names), in graph order, deduplicated
    cpu_fallback_cost: str  # "none" when every operator is on the NPU, else "unknown" (never counted as zero)
    layers: tuple[NpuLayer, ...]
    model_size_mb: float  # the input .tflite file
    compiled_path: str = ""  # Vela's compiled .tflite (the deployable artifact), when kept
    environment: dict[str, Any] = field(default_factory=dict)
    version: int = RECORD_VERSION

    @property
    def npu_fraction(self) -> float:
        """Share of operators on the NPU (1.0 = all)."""
        total = self.npu_ops + self.cpu_ops
        return self.npu_ops / total if total else 0.0


@dataclass(frozen=True)
class ArmEstimate:
    """A model's latency on an ARM target, estimated from emulated instruction counts (backend arm-emu)."""

    target: str
    core: str
    clock_ghz: float
    threads: int
    runtime: str
    precision: str
    model_path: str
    ms: float  # point estimate of one inference (batch 1, steady state)
    low_ms: float  # error band of the estimator
    high_ms: float
    first_ms: float  # the first inference after loading, same model (instructions of window 0)
    instructions: int  # per steady-state inference, all threads
    first_instructions: int
    count_spread: float  # (max - min) / median of the repeated counts
    parity: dict[str, Any]  # emulated outputs vs the host runtime's
    memory: dict[str, Any]  # emulator RSS figures and the model file size
    emulation_wall_s: float  # what the count cost on this machine
    how: str  # one sentence for reports
    dram_bytes: int = 0  # modelled DRAM traffic per inference (the estimator's memory term)
    compute_ms: float = 0.0  # the estimate's two terms (see edgekd.emu.estimator)
    memory_ms: float = 0.0
    counts: dict[str, Any] = field(default_factory=dict)  # the count store's record (edgekd.emu.count_store.Counts)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BoardMeasurement:
    """A model measured on the real board over SSH (``--device ssh://...``): its smoke bundle run there with
    the board's own Python and runtime. The emulated estimate for the same model and core, when there is one,
    is kept beside it."""

    device: str  # ssh://user@host[:port]
    board: dict[str, Any]  # what the board says it is: CPU (cpuinfo), clock, memory, OS, runtime versions
    core: str  # the emulated core matching the board's CPU part ("" when edgekd has none)
    runtime: str  # as the runner loaded it, e.g. "ai_edge_litert 2.3.0"
    precision: str
    model_path: str
    model_sha256: str
    threads: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    cold_start_ms: float  # loading + the first inference on the board
    peak_rss_mb: float | None  # the runner process's peak resident memory on the board
    model_memory_mb: float | None  # peak minus the resident memory before the model was loaded
    max_difference: float  # the board's outputs vs the host reference (within the bundle's tolerance)
    estimate_ms: float | None  # the emulated estimate for this model on ``core`` (None without one)
    estimate_band_ms: tuple[float, float] | None
    how: str  # one sentence for reports

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Detail = Union[BenchResult, ArmEstimate, NpuEstimate, BoardMeasurement]
_DETAILS: dict[str, type] = {"BenchResult": BenchResult, "ArmEstimate": ArmEstimate, "NpuEstimate": NpuEstimate,
                             "BoardMeasurement": BoardMeasurement}


@dataclass(frozen=True)
class LatencyFigure:
    """What a device backend answers for one deployable artifact: a measurement (p50/p90/p99) or a point
    estimate with its error band, the memory it knows of, and how the figure was obtained.

    ``judged_ms`` is the number a latency budget is checked against: the measured p90, or the estimate.
    ``detail`` is the backend's own record (host: BenchResult, arm-emu: ArmEstimate, npu-emu: NpuEstimate)."""

    backend: str  # "host", "arm-emu", "npu-emu"
    kind: str  # "measured" or "estimated"
    source: str  # one phrase: where, e.g. "measured on host CPU (onnxruntime)"
    how: str  # one sentence: how it was obtained
    detail: Detail
    p50_ms: float | None = None  # measured figures (None for an estimate)
    p90_ms: float | None = None
    p99_ms: float | None = None
    mean_ms: float | None = None
    estimate_ms: float | None = None  # an estimate's point value (None for a measurement)
    band_ms: tuple[float, float] | None = None  # an estimate's error band, when the estimator states one
    cold_start_ms: float | None = None  # loading + first inference (measured), or the first inference (estimated)
    memory_mb: float | None = None  # memory the model adds to the process, where the backend measures it
    sram_kib: float | None = None  # NPU: SRAM the tensor arena uses
    flash_kib: float | None = None  # NPU: flash the weights and command stream use
    untimed_ops: tuple[str, ...] = ()  # operators whose time the figure leaves out (NPU: CPU fallback)

    def __post_init__(self) -> None:
        if self.kind not in ("measured", "estimated"):
            raise ValueError(f"LatencyFigure.kind must be measured or estimated, got {self.kind!r}")
        if (self.kind == "measured") != (self.p90_ms is not None) or (self.kind == "estimated") != (
                self.estimate_ms is not None):
            raise ValueError("a measured figure has percentiles and no estimate; an estimated one the reverse")

    @property
    def judged_ms(self) -> float:
        return float(self.p90_ms if self.kind == "measured" else self.estimate_ms)  # type: ignore[arg-type]

    def as_dict(self) -> dict[str, Any]:
        """The report.json view: every figure, without the backend's detail record."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "detail"}
        d["band_ms"] = None if self.band_ms is None else list(self.band_ms)
        d["untimed_ops"] = list(self.untimed_ops)
        d["judged_ms"] = self.judged_ms
        return d

    def to_record(self) -> dict[str, Any]:
        """Everything, the detail included (a stage stamp); :func:`LatencyFigure.from_record` reads it back."""
        return {**self.as_dict(), "detail": to_dict(self.detail)}

    @staticmethod
    def from_record(d: dict[str, Any]) -> "LatencyFigure":
        detail = dict(d["detail"])
        cls = _DETAILS[detail.pop("record")]
        if cls is BoardMeasurement and detail.get("estimate_band_ms") is not None:
            detail["estimate_band_ms"] = tuple(detail["estimate_band_ms"])
        if cls is NpuEstimate:
            detail["cpu_fallback"] = tuple(detail["cpu_fallback"])
            detail["layers"] = tuple(NpuLayer(**layer) for layer in detail["layers"])
        kw = {k: v for k, v in d.items() if k not in ("detail", "judged_ms")}
        kw["band_ms"] = None if kw.get("band_ms") is None else tuple(kw["band_ms"])
        kw["untimed_ops"] = tuple(kw.get("untimed_ops", ()))
        return LatencyFigure(detail=cls(**detail), **kw)


@dataclass(frozen=True)
class TeacherInfo:
    """The teacher a build distilled from, as the report shows it."""

    id: str  # what keys the teacher-output cache: the file's sha256, or "default:<weights sha256>"
    accuracy: float | None  # top-1 on the test split (None until measured)
    outputs: str  # "logits" or "probs" (edgekd then uses log-probabilities)
    path: str | None = None  # a teacher file
    kind: str | None = None  # its format, e.g. "torchscript", "onnx"
    sha256: str | None = None  # of the file
    origin: str | None = None  # the built-in teacher: shipped, cached or trained now
    spec: dict[str, Any] | None = None  # the built-in teacher's architecture
    training: dict[str, Any] | None = None  # how the built-in teacher was trained
    weights_sha256: str | None = None  # the built-in teacher's weights

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class ArtifactFailure:
    """A candidate's artifact that could not be made in one runtime (the build goes on without it)."""

    candidate: str  # the student's name
    runtime: str  # "onnxruntime" or "litert"
    reason: str  # the error's one line (a converter's crash, hang, memory or exception, each route's reason)


@dataclass(frozen=True)
class Deployable:
    """One candidate student in one runtime: its fp32 and int8 artifacts, measured on this host."""

    runtime: str  # "onnxruntime" or "litert"
    checkpoint: Checkpoint
    fp32: ExportedModel
    int8: ExportedModel  # what would be deployed
    threads: int  # host benchmark threads

    @property
    def name(self) -> str:
        return f"{self.checkpoint.name}@{self.runtime}"


@dataclass(frozen=True)
class Candidate:
    """A deployable judged: its latency on the target's backend (what selection checks), the host measurement
    beside it, and the host operator profile."""

    deployable: Deployable
    latency: LatencyFigure  # int8 on the target's backend: judged against the budget
    latency_fp32: LatencyFigure | None  # fp32 on the same backend (None where the backend runs int8 only)
    host: LatencyFigure  # int8 measured on this host (always; the reference beside an estimate)
    host_fp32: LatencyFigure
    band_note: str = ""  # the budget lies inside the estimate's error band
    ops_profile: dict[str, Any] | None = None  # onnxruntime's per-node profile on this host

    @property
    def name(self) -> str:
        return self.deployable.name

    @property
    def memory_mb(self) -> float:
        """Peak memory the model adds: the backend's figure where it measures one, else the host's."""
        return self.latency.memory_mb if self.latency.memory_mb is not None else float(self.host.memory_mb or 0.0)


def to_dict(record: Any) -> dict[str, Any]:
    d = asdict(record)
    d["record"] = type(record).__name__
    return d
