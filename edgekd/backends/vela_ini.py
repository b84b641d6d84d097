"""Write the Vela configuration file (``.ini``) for one NPU target from its profile's ``[npu]`` table.

One ``[System_Config.*]`` section (NPU clock, SRAM on AXI0, flash on AXI1, each memory's timing) and one
``[Memory_Mode.*]`` section: Vela's ``Shared_Sram`` placement (weights in flash, tensor arena and cache in
SRAM) with ``arena_cache_size`` = the SRAM the model may use, which Vela's Performance strategy aims at.
"""

from __future__ import annotations

from pathlib import Path

from ..fsio import write_text_atomic
from .npu_config import MemoryTiming, NpuConfig

SYSTEM_CONFIG = "edgekd_system"
MEMORY_MODE = "edgekd_shared_sram"


def _memory_lines(prefix: str, m: MemoryTiming) -> list[str]:
    lines = [f"{prefix}_clock_scale={m.clock_scale:g}", f"{prefix}_burst_length={m.burst_length}",
             f"{prefix}_read_latency={m.read_latency}", f"{prefix}_write_latency={m.write_latency}"]
    if m.max_reads is not None:
        lines.append(f"{prefix}_max_reads={m.max_reads}")
    if m.max_writes is not None:
        lines.append(f"{prefix}_max_writes={m.max_writes}")
    return lines


def vela_ini_text(npu: NpuConfig, arena_kib: float, title: str = "") -> str:
    """The ini text; ``arena_kib`` is the SRAM Vela may plan the tensor arena (and cache) into."""
    if not arena_kib > 0:
        raise ValueError(f"arena_kib must be positive, got {arena_kib}")
    lines = [f"; Vela configuration written by edgekd{' for ' + title if title else ''}",
             f"; timings: {npu.timing_source or 'see the target profile'}", "",
             f"[System_Config.{SYSTEM_CONFIG}]", f"core_clock={npu.clock_hz:.6g}", "axi0_port=Sram",
             "axi1_port=OffChipFlash", *_memory_lines("Sram", npu.sram), *_memory_lines("OffChipFlash", npu.flash),
             "", f"[Memory_Mode.{MEMORY_MODE}]", "const_mem_area=Axi1", "arena_mem_area=Axi0", "cache_mem_area=Axi0",
             f"arena_cache_size={int(arena_kib * 1024)}", ""]
    return "\n".join(lines)


def write_vela_ini(npu: NpuConfig, arena_kib: float, path: str | Path, title: str = "") -> Path:
    """Write :func:`vela_ini_text` to ``path`` atomically; returns the path."""
    return write_text_atomic(path, vela_ini_text(npu, arena_kib, title))
