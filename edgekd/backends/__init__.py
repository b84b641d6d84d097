"""Device backends: where a target's latency comes from, behind one interface.

A target profile names its backend once (``TargetProfile.backend``: ``host``, ``arm-emu`` or ``npu-emu``);
:func:`backend_for` is the only place that turns a target into the code that serves it. Every backend answers
the same question: given deployable artifacts (:class:`Job`), one :class:`~edgekd.records.LatencyFigure` each,
either measured (p50/p90/p99) or a point estimate with its band, with the memory it knows of, how it was
obtained, and the backend's own record as ``detail``. Search (probes), build (the figures selection judges),
``edgekd bench --target`` and the report's latency note all go through it.

| backend | what | figures |
|---------|------|---------|
| host    | the model in its runtime on this CPU, in a separate process (``bench/host.py``) | measured |
| arm-emu | the real aarch64 runtime under QEMU with the target's core; instructions -> ms (``arm.py``, ``emu/``) | estimated, with a band |
| npu-emu | Arm Vela compiles the full-int8 model for the target's Ethos-U (``npu.py``) | estimated (Vela's model) |

This module is light: each backend imports its heavy modules when it runs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..registry import Registry

if TYPE_CHECKING:  # type names only: numpy is not imported here at run time
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
    keep_dir: str | None = None  # where a backend may keep what it made (npu-emu: Vela's compiled model)


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
    def key(self, target: "TargetProfile", settings: Settings, threads: int) -> tuple:
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


BACKENDS: Registry[Backend] = Registry("device backend")


def backend_for(target: "TargetProfile") -> Backend:
    """The backend that serves ``target`` (the one place a target's kind is looked at)."""
    _register_builtins()
    return BACKENDS.get(target.backend)


def host_backend() -> Backend:
    """The host backend: every build measures every artifact here too, as the reference beside an estimate."""
    _register_builtins()
    return BACKENDS.get("host")


def _register_builtins() -> None:
    if "host" in BACKENDS:
        return
    from .arm import ArmEmuBackend
    from .host import HostBackend
    from .npu import NpuEmuBackend

    for backend in (HostBackend(), ArmEmuBackend(), NpuEmuBackend()):
        BACKENDS.add(backend.name, backend)
