"""The ``[npu]`` table of a target profile: an Arm Ethos-U NPU and the memories it reads and writes.

Pure data (no Vela import): :mod:`edgekd.bench.vela_ini` turns it into the Vela configuration file that
``npu-emu`` compiles with. edgekd models Vela's ``Shared_Sram`` memory mode, the Ethos-U55 default: the
tensor arena (inputs, outputs, intermediate tensors) lives in SRAM on the NPU's first AXI port, the weights
and the command stream in a read-only flash on the second.

A profile names the accelerator configuration, the NPU clock, the SRAM and flash sizes, and the timing of
each memory as Vela describes it (``clock_scale`` relative to the NPU clock, burst length, read and write
latency in NPU cycles, optional outstanding-transaction limits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

from ..errors import TargetError

# Vela's --accelerator-config choices for the NPUs whose figures edgekd has checked (U55, U65)
VELA_ACCELERATORS = ("ethos-u55-32", "ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256",
                     "ethos-u65-512")


@dataclass(frozen=True)
class MemoryTiming:
    """One memory as Vela models it (keys of a ``[System_Config.*]`` section, without the memory prefix)."""

    clock_scale: float  # memory clock / NPU clock, in (0, 1]
    burst_length: int  # bytes per burst
    read_latency: int  # NPU cycles
    write_latency: int  # NPU cycles
    max_reads: int | None = None  # outstanding reads (Vela's default when None)
    max_writes: int | None = None  # outstanding writes (Vela's default when None)

    def __post_init__(self) -> None:
        if not (isinstance(self.clock_scale, (int, float)) and 0 < self.clock_scale <= 1):
            raise TargetError(f"npu memory clock_scale must be in (0, 1], got {self.clock_scale!r}",
                              "write the memory clock divided by the NPU clock, e.g. 0.125")
        for f in fields(self)[1:]:
            v = getattr(self, f.name)
            if v is None and f.name.startswith("max_"):
                continue
            low = 1 if f.name in ("burst_length", "max_reads") else 0
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise TargetError(f"npu memory {f.name} must be an integer >= {low}, got {v!r}",
                                  "copy the figure from the board's Vela configuration file")


@dataclass(frozen=True)
class NpuConfig:
    """An Ethos-U NPU and its memories, as one board wires them."""

    accelerator: str  # Vela --accelerator-config, e.g. "ethos-u55-128"
    clock_mhz: float  # NPU clock
    sram_kib: float  # SRAM the tensor arena can use (AXI0)
    flash_kib: float  # flash (or MRAM, or DDR standing in for flash) holding weights and command stream (AXI1)
    sram: MemoryTiming
    flash: MemoryTiming
    timing_source: str = ""  # where the memory timings come from

    def __post_init__(self) -> None:
        if self.accelerator not in VELA_ACCELERATORS:
            raise TargetError(f"unknown npu accelerator {self.accelerator!r}",
                              f"use one of {', '.join(VELA_ACCELERATORS)}")
        for key in ("clock_mhz", "sram_kib", "flash_kib"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (math.isfinite(v) and v > 0):
                raise TargetError(f"npu {key} must be a positive number, got {v!r}", "fix the number in [npu]")

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6


_NPU_KEYS = {"accelerator", "clock_mhz", "sram_kib", "flash_kib", "sram", "flash", "timing_source"}
_MEMORY_KEYS = {f.name for f in fields(MemoryTiming)}


def parse_npu(data: Any, where: str) -> NpuConfig:
    """``[npu]`` (with ``[npu.sram]`` and ``[npu.flash]``) -> :class:`NpuConfig`; one clear error per mistake."""
    if not isinstance(data, dict):
        raise TargetError(f"{where}: npu must be a table", "write it as [npu] with keys under it")
    unknown = sorted(set(data) - _NPU_KEYS)
    missing = sorted(_NPU_KEYS - {"timing_source"} - set(data))
    if unknown or missing:
        what = "; ".join(x for x in (unknown and f"unknown key(s) {', '.join(unknown)}",
                                     missing and f"missing key(s) {', '.join(missing)}") if x)
        raise TargetError(f"{where}: [npu] has {what}", f"use {', '.join(sorted(_NPU_KEYS))}; see "
                          "`edgekd targets show ethos-u55-128` for a complete profile")
    memories = {}
    for port in ("sram", "flash"):
        table = data[port]
        if not isinstance(table, dict) or set(table) - _MEMORY_KEYS:
            raise TargetError(f"{where}: [npu.{port}] must be a table with keys from {', '.join(sorted(_MEMORY_KEYS))}",
                              "copy the memory's figures from the board's Vela configuration file")
        try:
            memories[port] = MemoryTiming(**table)
        except TypeError as e:
            raise TargetError(f"{where}: [npu.{port}] is incomplete ({e})",
                              "give clock_scale, burst_length, read_latency and write_latency") from None
    if not isinstance(data["accelerator"], str) or not isinstance(data.get("timing_source", ""), str):
        raise TargetError(f"{where}: npu accelerator and timing_source must be strings", "quote them")
    return NpuConfig(accelerator=data["accelerator"], clock_mhz=data["clock_mhz"], sram_kib=data["sram_kib"],
                     flash_kib=data["flash_kib"], sram=memories["sram"], flash=memories["flash"],
                     timing_source=data.get("timing_source", ""))
