"""The device-backend interface (see ``edgekd.backends``): a job, the settings, what every backend answers."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from ..records import LatencyFigure
    from ..targets import Budget, TargetProfile


@dataclass(frozen=True)
class Job:
    """One artifact to judge."""

    model: str  # path to an .onnx or .tflite file
    precision: str | None  # "fp32" or "int8"; None: read from the model (emulated backends)
    input_shape: tuple[int, ...]  # one sample, channels-first (what the data gives)
    samples: "np.ndarray | None" = None  # a few channels-first float samples (emulated backends check parity on them)
    keep_dir: str | None = None  # the candidate's folder: a backend keeps what it makes in a subfolder
    # of its own there (npu-emu: npu/, Vela's compiled model)


@dataclass(frozen=True)
class Settings:
    """How hard a backend works for one figure."""

    runs: int = 200  # timed runs of a measurement
    warmup: int = 20
    emulated_runs: int = 3  # counted inferences under emulation (arm-emu)


class Backend(ABC):
    """What every device backend answers; see the module docstring."""

    name: str = ""
    kind: str = ""  # "measured" or "estimated": what its figures are
    precisions: tuple[str, ...] = ("fp32", "int8")  # the artifacts it can judge
    probes_latency: bool = True  # the pre-training search runs random-weight probes through it
    batches: bool = False  # judges several jobs in one go cheaper than one by one

    @abstractmethod
    def figures(self, jobs: list[Job], target: "TargetProfile", settings: Settings) -> list["LatencyFigure"]:
        """One figure per job, in order."""

    @abstractmethod
    def key(self, target: "TargetProfile", settings: Settings) -> tuple:
        """What besides the artifact itself determines the figures (a stage-cache key part)."""

    @abstractmethod
    def note(self, target: "TargetProfile", threads: int, runs: int) -> str:
        """One paragraph for the report: how the judged latencies were obtained."""

    def progress(self, name: str, fig: "LatencyFigure", fp32: "LatencyFigure | None") -> str:
        """One progress line for a judged candidate."""
        if fig.kind == "measured":
            return f"    {name}: p90 {fig.judged_ms:.3f} ms ({fig.source})"
        band = f" [{fig.band_ms[0]:.3f}-{fig.band_ms[1]:.3f}]" if fig.band_ms else ""
        return f"    {name}: estimated {fig.judged_ms:.3f} ms{band} ({fig.source})"

    def describe(self, fig: "LatencyFigure", target: "TargetProfile") -> list[str]:
        """Lines for ``edgekd bench --target`` (the last is how the figure was obtained)."""
        return [self.progress("", fig, None).strip(), fig.how]

    def band_note(self, fig: "LatencyFigure", budget: "Budget") -> str:
        """Say when the latency budget lies inside the figure's error band ("" otherwise)."""
        limit = budget.p90_latency_ms
        if fig.band_ms is None or limit is None or not fig.band_ms[0] <= limit <= fig.band_ms[1]:
            return ""
        return (f"the {limit:g} ms budget lies inside this estimate's error band "
                f"({fig.band_ms[0]:.3g}-{fig.band_ms[1]:.3g} ms): confirm on the device")
