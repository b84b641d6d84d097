"""Training-step times per candidate architecture, measured once per machine and remembered.

The search's ``--time-budget`` decides which candidates are trained from each one's estimated training time. A step
timed afresh in every build follows the machine's load (another job, a busy CI runner), so two builds of the same
inputs on the same machine could train different candidates and choose a different student. The step time is a
fact about the machine, like the emulator install, so it is measured the first time a machine meets an
architecture and read back afterwards: the same inputs on the same machine give the same plan, fresh or not.

The store is one JSON file in the cache folder (``step-times.json``), keyed by the machine (CPU model, logical
CPUs, torch version and threads) and the candidate (its spec and the batch size). ``--fresh`` redoes a build's
stages but keeps it; delete the file (or ``--retime``) to measure again, e.g. after a measurement on a loaded machine.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

from .bench.measure import cpu_model

FILE_NAME = "step-times.json"
FORMAT = 1


def machine_id(torch_threads: int) -> dict[str, Any]:
    """What makes one machine's step times differ from another's."""
    import torch

    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "machine": platform.machine(),
            "torch": torch.__version__.split("+")[0], "threads": torch_threads}


class StepTimes:
    """Remembered step times in ``cache_dir/step-times.json``; ``retime`` measures again and overwrites."""

    def __init__(self, cache_dir: Path | None, retime: bool = False):
        self.path = None if cache_dir is None else Path(cache_dir) / FILE_NAME
        self.retime = retime
        self.entries = self._read()
        self.measured: list[str] = []  # names measured in this build
        self.reused: list[str] = []  # names read back

    def _read(self) -> dict[str, Any]:
        if self.path is None or not self.path.is_file():
            return {}
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}  # a damaged store only costs a re-measurement
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("entries"), dict):
            return {}
        return {k: v for k, v in doc["entries"].items()
                if isinstance(v, dict) and isinstance(v.get("step_s"), (int, float)) and v["step_s"] > 0}

    def get(self, name: str, key: str, measure: Callable[[], float]) -> float:
        """The step time under ``key``: read back, or measured with ``measure()`` and stored."""
        hit = None if self.retime else self.entries.get(key)
        if hit is not None:
            self.reused.append(name)
            return float(hit["step_s"])
        step = float(measure())
        self.entries[key] = {"step_s": step, "name": name, "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        self.measured.append(name)
        return step

    def save(self) -> None:
        if self.path is None or not self.measured:
            return
        from .fsio import write_json_atomic

        current = self._read()  # another build may have added entries meanwhile: keep them
        current.update({k: v for k, v in self.entries.items()})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"format": FORMAT, "entries": current})
        except OSError:
            pass  # a read-only cache only costs re-measuring next time
