"""Every board measurement teaches the estimator: the model's emulated counts for the board's core are stored
with the measured latency in the local calibration store, which ``edgekd calibrate`` refits from."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..emu.local_calibration import LocalRow, add
from ..records import BoardMeasurement

if TYPE_CHECKING:
    from ..emu.count_store import Counts


def count_model(model: str | Path, core: str, cache_dir: str | Path | None = None) -> "Counts":
    """The model's counts on ``core`` (from the count store, or emulated now: about a minute for a 224 px model)."""
    from ..backends.arm import random_inputs
    from ..emu.count_store import counted

    path = Path(model)
    return counted([(path, random_inputs(path, 1), None)], core, threads=1, cache_dir=cache_dir)[0]


def board_clock(m: BoardMeasurement, fallback_ghz: float) -> float:
    clock = m.board.get("max_clock_ghz")
    return float(clock) if isinstance(clock, (int, float)) and clock > 0 else float(fallback_ghz)


def remember(m: BoardMeasurement, counts: "Counts", clock_ghz: float,
             cache_dir: str | Path | None = None) -> LocalRow:
    """Store ``m`` with ``counts`` as a calibration row (latency: the measured mean, as the published rows)."""
    row = LocalRow(m.device, counts.core, float(clock_ghz), m.runtime, Path(m.model_path).name, m.model_sha256,
                   m.precision, m.threads, m.mean_ms, m.p90_ms, counts.kernels, counts.instructions,
                   counts.dram_bytes, counts.llc_kb)
    add(row, cache_dir)
    return row
