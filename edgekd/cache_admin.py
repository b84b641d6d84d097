"""``edgekd cache list|prune``: what the cache folder holds, and freeing it.

Each area is a folder of entries (files or folders) that edgekd can make again, at a cost: trained students,
exported and quantized models, teachers, teacher outputs, decoded images, emulated counts, the emulation environment. Prune removes entries
not used (modified) for ``--older-than`` days; an entry another build is making (its lock held) is left
alone. The local calibration store (board measurements) is never pruned: it cannot be made again.
"""

from __future__ import annotations

import fcntl
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

AREAS = {  # folder -> what it holds (all can be rebuilt)
    "students": "trained students shared between builds",
    "artifacts": "ONNX, int8 and TFLite models of those students, shared between builds",
    "teachers": "the built-in default teachers",
    "teacher-logits": "teacher outputs per data set",
    "images": "decoded image folders",
    "arm-counts": "emulated instruction and memory counts",
    "arm": "the emulated aarch64 environment (edgekd emu setup rebuilds it)",
}
KEPT = {"calibration": "board measurements and the refit (never pruned)"}


@dataclass(frozen=True)
class Area:
    name: str
    what: str
    entries: int
    bytes: int
    newest_days: float | None  # age of the most recently used entry


def _size(p: Path) -> int:
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.is_dir() else []


def list_areas(cache: Path) -> list[Area]:
    now = time.time()
    out = []
    for name, what in {**AREAS, **KEPT}.items():
        entries = _entries(cache / name)
        ages = [(now - p.stat().st_mtime) / 86400 for p in entries]
        out.append(Area(name, what, len(entries), sum(_size(p) for p in entries), min(ages) if ages else None))
    return out


def _busy(folder: Path, entry: Path) -> bool:
    lock = folder / f"{entry.name}.lock"
    if not lock.is_file():
        return False
    with open(lock, "a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    return False


def prune(cache: Path, older_than_days: float, areas: tuple[str, ...]) -> tuple[int, int]:
    """Remove entries of ``areas`` unused for ``older_than_days``; (entries removed, bytes freed)."""
    cutoff = time.time() - older_than_days * 86400
    removed = freed = 0
    for name in areas:
        folder = cache / name
        for entry in _entries(folder):
            if entry.stat().st_mtime > cutoff or _busy(folder, entry):
                continue
            size = _size(entry)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            (folder / f"{entry.name}.lock").unlink(missing_ok=True)
            removed, freed = removed + 1, freed + size
    return removed, freed
