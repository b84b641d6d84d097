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

from typing import TYPE_CHECKING

from ..registry import Registry
from .base import Backend, Job, Settings

if TYPE_CHECKING:
    from ..targets import TargetProfile

__all__ = ["BACKENDS", "Backend", "Job", "Settings", "backend_for", "host_backend"]


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
