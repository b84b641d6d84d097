"""Typed records passed between stages. JSON-serialisable (``dataclasses.asdict``), versioned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

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


def to_dict(record: Any) -> dict[str, Any]:
    d = asdict(record)
    d["record"] = type(record).__name__
    return d
