"""Resumable build stages: each stage's outputs are keyed by a hash of everything that determines them.

A stage writes its files atomically (temporary name, then rename) and, last, a stamp
``<dir>/.stages/<stage>.json`` holding its key, the sha256 of each output and its record. On a re-run a stage
whose stamp has the same key and whose outputs still hash the same is not run again: its record is read back.
A build killed at any point (even ``kill -9``) therefore leaves either a complete stage with its stamp, or files
without a stamp that the re-run simply overwrites — never a stage that looks done but is not. ``fresh=True``
ignores every stamp.

Keys include the versions of edgekd and the tools that produce artifacts (see :func:`tool_versions`), so
upgrading a converter re-runs the stages it affects.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

from .cache import content_key
from .fsio import sha256_file, write_json_atomic

T = TypeVar("T")
STAMP_FORMAT = 1


def tool_versions() -> dict[str, str]:
    """Versions of edgekd and of every package whose output a stage stores (read from metadata: no imports)."""
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    out = {"edgekd": __version__}
    for dist in ("torch", "onnx", "onnxruntime", "onnxsim", "onnxslim", "ai-edge-litert", "litert-torch",
                 "tensorflow-cpu", "onnx2tf", "ethos-u-vela", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


@dataclass
class StageCache:
    fresh: bool = False  # ignore every stamp (--fresh)
    versions: dict[str, str] = field(default_factory=tool_versions)
    ran: list[str] = field(default_factory=list)  # "candidate/stage" that did work in this build
    reused: list[str] = field(default_factory=list)  # ... that were read back from an earlier build
    shared: list[str] = field(default_factory=list)  # ... copied from the shared store (``shared_store``)

    def key(self, *parts: Any) -> str:
        return content_key(STAMP_FORMAT, self.versions, *parts)

    def run(self, stage: str, where: Path, key: str, outputs: list[Path], work: Callable[[], T],
            encode: Callable[[T], Any], decode: Callable[[Any], T]) -> T:
        """Return the stage's record: read back when ``where`` holds a valid stamp for ``key``, else run ``work``
        (which must write ``outputs``, each atomically) and stamp it."""
        stamp = where / ".stages" / f"{stage}.json"
        label = f"{where.name}/{stage}"
        if not self.fresh:
            record = _valid(stamp, key, where)
            if record is not None:
                self.reused.append(label)
                return decode(record)
        t0 = time.perf_counter()
        result = work()
        missing = [str(p) for p in outputs if not Path(p).is_file()]
        if missing:
            raise RuntimeError(f"stage {label} did not write {missing}")  # a bug in edgekd, not bad input
        write_json_atomic(stamp, {"format": STAMP_FORMAT, "stage": stage, "key": key,
                                  "seconds": round(time.perf_counter() - t0, 3),
                                  "outputs": {str(Path(p).relative_to(where)): sha256_file(p) for p in outputs},
                                  "record": encode(result)})
        if label not in self.shared:  # copied from the shared store is not "ran"
            self.ran.append(label)
        return result

    def has(self, stage: str, where: Path, key: str) -> bool:
        """Whether ``run`` would read the stage back (nothing recorded)."""
        return not self.fresh and _valid(where / ".stages" / f"{stage}.json", key, where) is not None

    def lookup(self, stage: str, where: Path, key: str) -> Any:
        """A stage's stored record without running anything (None when absent, stale, or ``fresh``)."""
        if self.fresh:
            return None
        record = _valid(where / ".stages" / f"{stage}.json", key, where)
        if record is not None:
            self.reused.append(f"{where.name}/{stage}")
        return record

    def summary(self) -> dict[str, Any]:
        return {"fresh": self.fresh, "ran": list(self.ran), "reused": list(self.reused),
                "shared": list(self.shared)}


def _valid(stamp: Path, key: str, where: Path) -> Any:
    """The stored record when ``stamp`` matches ``key`` and every output still hashes the same; else None."""
    try:
        data = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != key or data.get("format") != STAMP_FORMAT:
        return None
    for rel, digest in (data.get("outputs") or {}).items():
        path = where / rel
        if not path.is_file() or sha256_file(path) != digest:
            return None
    return data.get("record")
