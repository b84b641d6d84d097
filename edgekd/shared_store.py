"""Artifacts shared between builds: made once, whatever the target or run directory.

A build's target-independent stages — the distilled student, its ONNX export, its int8 QDQ model, its TFLite fp32
and int8 models — depend on the data, the teacher, the spec, the distillation config and the tool versions (the
stage's key), never on the target. Each is kept under ``<cache>/<area>/<key>/`` (its files plus ``record.json``):
``students`` for trained students, ``artifacts`` for exports and quantizations. A build for another target, or into
another run directory, copies the entry instead of making it again.

Two builds (or two ``--jobs`` workers) at once are safe: the first to need a key holds ``<key>.lock`` (``flock``)
while it makes and publishes it; the other waits, then copies what was published. An entry is a folder renamed into
place whole, so a crash never leaves half of one; a worker killed while making it leaves nothing there.
Paths inside records (and inside JSON files of the entry) are rewritten to the run directory they are copied into.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from .fsio import atomic_path, ensure_dir, sha256_file

T = TypeVar("T")
STUDENTS, ARTIFACTS = "students", "artifacts"
RECORD = "record.json"
_HERE = "@ENTRY@"  # stands for the folder the files were made in, inside a stored record


def area_dir(cache_dir: str | Path, area: str) -> Path:
    return Path(cache_dir) / area


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    ensure_dir(path.parent)
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def stored(cache_dir: str | Path, area: str, key: str, files: tuple[str, ...]) -> bool:
    entry = area_dir(cache_dir, area) / key
    return all((entry / name).is_file() for name in (*files, RECORD))


def made_once(cache_dir: str | Path, area: str, key: str, where: Path, files: tuple[str, ...],
              make: Callable[[], T], encode: Callable[[T], Any], decode: Callable[[Any], T],
              fresh: bool = False) -> tuple[T, bool]:
    """The stage's record with ``files`` in ``where``: copied from the store when there (``True``), else made by
    ``make`` (which writes them into ``where``) and published (``False``). ``fresh`` (``--fresh``): always made;
    published where the store has no entry yet (an existing one is left: same inputs, same key)."""
    folder = area_dir(cache_dir, area)
    entry = folder / key
    with _locked(folder / f"{key}.lock"):
        if not fresh and stored(cache_dir, area, key, files):
            return decode(_copy_out(entry, where, files)), True
        result = make()
        _publish(where, folder, key, files, encode(result))
        return result, False


def _relocate(obj: Any, old: str, new: str) -> Any:
    if isinstance(obj, str):
        return new + obj[len(old):] if obj == old or obj.startswith(old + "/") else obj
    if isinstance(obj, dict):
        return {k: _relocate(v, old, new) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_relocate(v, old, new) for v in obj]
    return obj


def _copy_out(entry: Path, where: Path, files: tuple[str, ...]) -> Any:
    ensure_dir(where)
    stored_record = json.loads((entry / RECORD).read_text())
    for name in files:
        with atomic_path(where / name) as tmp:
            if name.endswith(".json"):  # a record beside the artifact: its paths point into this run
                tmp.write_text(json.dumps(_relocate(json.loads((entry / name).read_text()), _HERE, str(where)),
                                          indent=2))
            else:
                shutil.copyfile(entry / name, tmp)
    for name, digest in stored_record["sha256"].items():
        if sha256_file(where / name) != digest:
            raise OSError(f"the stored entry {entry} does not match its record ({name})")
    os.utime(entry)  # used now: `edgekd cache prune` removes what has not been used for a while
    return _relocate(stored_record["record"], _HERE, str(where))


def _publish(where: Path, folder: Path, key: str, files: tuple[str, ...], record: Any) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{key}-", dir=ensure_dir(folder)))
    try:
        here = str(where)
        for name in files:
            if name.endswith(".json"):
                (tmp / name).write_text(json.dumps(_relocate(json.loads((where / name).read_text()), here, _HERE),
                                                   indent=2))
            else:
                shutil.copyfile(where / name, tmp / name)
        digests = {n: sha256_file(where / n) for n in files if not n.endswith(".json")}
        (tmp / RECORD).write_text(json.dumps({"record": _relocate(record, here, _HERE), "sha256": digests}))
        os.rename(tmp, folder / key)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # published by another process meanwhile, or no space: keep going
