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


def to_dict(record: Any) -> dict[str, Any]:
    d = asdict(record)
    d["record"] = type(record).__name__
    return d
