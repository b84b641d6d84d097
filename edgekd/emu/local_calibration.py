"""The local calibration store: every board measurement edgekd makes, with the model's emulated counts, and the
refit ``edgekd calibrate`` makes from the shipped rows plus these.

``<cache>/calibration/measurements.jsonl`` holds one JSON object per measurement (appended whole, one line per
write); ``<cache>/calibration/calibration.json`` is the refit, which :func:`edgekd.emu.estimator.load_calibration`
uses instead of the shipped fit once it exists (its estimates say so).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..cache import default_cache_dir
from ..fsio import ensure_dir


@dataclass(frozen=True)
class LocalRow:
    """One board measurement as a calibration row (the same fields as a shipped one)."""

    device: str
    core: str
    clock_ghz: float
    runtime: str
    model: str  # the model file's name
    model_sha256: str
    precision: str
    threads: int
    latency_ms: float  # the measured mean of the warm inferences (the published rows are means too)
    p90_ms: float
    kernels: str
    instructions: int
    dram_bytes: int
    llc_kb: int
    source: str = "local board measurement"

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def folder(cache_dir: str | Path | None = None) -> Path:
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "calibration"


def measurements_file(cache_dir: str | Path | None = None) -> Path:
    return folder(cache_dir) / "measurements.jsonl"


def refit_file(cache_dir: str | Path | None = None) -> Path:
    return folder(cache_dir) / "calibration.json"


def add(row: LocalRow, cache_dir: str | Path | None = None) -> Path:
    """Append ``row`` (one write of one line: concurrent writers do not interleave within it)."""
    path = measurements_file(cache_dir)
    ensure_dir(path.parent)
    line = (json.dumps(row.as_dict(), sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def load(cache_dir: str | Path | None = None) -> list[LocalRow]:
    """Every stored measurement; a line that cannot be read (a crash mid-write) is skipped."""
    path = measurements_file(cache_dir)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(LocalRow(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return rows
